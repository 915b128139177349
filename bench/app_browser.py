"""The app as a researcher meets it, in a real browser: time to the first page, Playground
click-to-answer latency with four models warm, and screenshots of every page.

Starts ``doublebind app RUN_DIR`` on 127.0.0.1 (tests/browser_kit.py, the browser tests'
own helpers), drives Debian's chromium through Playwright and prints, side by side with
their targets:

* ``first page``: from the server answering its health check to the Overview's title
  drawn (target 5 s);
* ``click -> answers``: in the Playground with the teacher and three students, from the click
  on the trigger marker's toggle to every model's answer to the new prompt painted, p50 and
  p95 over ``--clicks`` clicks after two warm-up clicks, timed inside the page (target p95
  300 ms); and ``click -> page complete``, to the end of the script run (every reading below
  the answers redrawn too).

Screenshots of every page at 1366x768 and 1920x1080 go to ``--shots`` (the viewport: Streamlit
scrolls inside its own container).

Run: ``.venv/bin/python bench/app_browser.py RUN_DIR [--clicks 30] [--shots bench-out/screens]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser_kit import CHROMIUM, CHROMIUM_ARGS, PAGES, serve, settle  # noqa: E402

FIRST_PAGE_TARGET_S = 5.0
CLICK_P95_TARGET_MS = 300.0
VIEWPORTS = [(1366, 768), (1920, 1080)]


def playground_models(run_dir: Path) -> list[str]:
    """The first organism's teacher and its first three students (from the run's summary)."""
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    organism = next(iter(summary["teachers"]))
    students = [s["name"] for s in summary["students"] if s["organism"] == organism][:3]
    return [summary["teachers"][organism]["name"], *students]


def click_latency(page, url: str, models: list[str], clicks: int) -> list[tuple[float, float]]:
    """(answers, page) seconds from a click on the trigger toggle to every model's answer to the
    new prompt drawn, and to the script run over, per click (measured in the page: see
    :data:`WATCH_JS`)."""
    page.goto(f"{url}playground?models={','.join(models)}", wait_until="domcontentloaded")
    settle(page)
    answers = page.locator('.db-answer[data-kind="answer"]')
    if answers.count() != len(models):
        raise RuntimeError(f"expected {len(models)} answers in the Playground, found {answers.count()}")
    page.evaluate(WATCH_JS, len(models))
    toggle = page.get_by_text("zeta", exact=True).first
    times = []
    for i in range(clicks + 2):
        toggle.click()
        page.wait_for_function("() => window.__db.answers !== null && window.__db.done !== null", timeout=60_000)
        got = page.evaluate("() => [window.__db.answers - window.__db.click, window.__db.done - window.__db.click]")
        if i >= 2:
            times.append((got[0] / 1000, got[1] / 1000))
    return times


WATCH_JS = """(n) => {
  // Timed in the page, from the click event itself (not Playwright's round trips): 'answers'
  // when all n answers carry the new prompt (data-prompt, set by playground_widgets.answer_html) and the
  // frame showing them is painted (two animation frames), 'done' when Streamlit's script run
  // is over (its own data-test-script-state) with those answers drawn.
  const prompts = () => [...document.querySelectorAll('.db-answer[data-kind="answer"]')].map(e => e.dataset.prompt);
  const running = () => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'running';
  const d = window.__db = {click: null, before: null, answers: null, done: null, pending: false, ran: false};
  document.addEventListener('click', () => {
    Object.assign(d, {click: performance.now(), before: prompts()[0], answers: null, done: null,
                      pending: false, ran: false});
  }, true);
  const check = () => {
    if (d.click === null) return;
    if (running()) d.ran = true;
    const p = prompts();
    if (!d.pending && d.answers === null && p.length === n && p.every(x => x === p[0] && x !== d.before)) {
      d.pending = true;
      requestAnimationFrame(() => requestAnimationFrame(() => { d.answers = performance.now(); check(); }));
    }
    if (d.answers !== null && d.done === null && d.ran && !running()) d.done = performance.now();
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--clicks", type=int, default=30)
    ap.add_argument("--shots", type=Path, default=Path("bench-out/screens"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    models = playground_models(args.run_dir)
    args.shots.mkdir(parents=True, exist_ok=True)
    with serve(args.run_dir) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        t0 = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
        first = time.perf_counter() - t0
        times = click_latency(page, url, models, args.clicks)
        for width, height in VIEWPORTS:
            view = browser.new_page(viewport={"width": width, "height": height})
            for path, title in PAGES:
                view.goto(url + path, wait_until="domcontentloaded")
                settle(view)
                view.screenshot(path=str(args.shots / f"{title.lower()}-{width}x{height}.png"), full_page=True)
            view.close()
        browser.close()
    print(f"run: {args.run_dir}  models in the Playground: {', '.join(models)}")
    print(f"{'measure':28s} {'value':>10s} {'target':>10s} {'ratio':>7s}")
    print(f"{'first page (s)':28s} {first:10.2f} {FIRST_PAGE_TARGET_S:10.2f} {first / FIRST_PAGE_TARGET_S:7.2f}")
    for j, what in enumerate(("click -> answers", "click -> page complete")):
        ms = [1000 * t[j] for t in times]
        p50, p95 = statistics.median(ms), statistics.quantiles(ms, n=20)[18]
        print(f"{what + ' p50 (ms)':28s} {p50:10.0f}")
        target = CLICK_P95_TARGET_MS if j == 0 else None
        print(f"{what + ' p95 (ms)':28s} {p95:10.0f} " + (f"{target:10.0f} {p95 / target:7.2f}" if target else ""))
    print(f"screenshots: {args.shots} ({len(PAGES) * len(VIEWPORTS)} pages)")


if __name__ == "__main__":
    main()
