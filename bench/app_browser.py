"""The app as a researcher meets it, in a real browser: time to the first page, Playground
click-to-answer latency with four models warm, and screenshots of every page.

Starts ``doublebind app RUN_DIR`` on 127.0.0.1 (tests/browser_kit.py, the browser tests'
own helpers), drives Debian's chromium through Playwright and prints, side by side with
their targets:

* ``first page``: from the server answering its health check to the Overview's title
  drawn (target 5 s);
* ``click -> answer``: in the Playground with the teacher and three students, toggling the
  trigger marker until every model's answer has been redrawn and the script run is over,
  p50 and p95 over ``--clicks`` clicks after two warm-up clicks, polled every 10 ms
  (target p95 300 ms).

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


def click_latency(page, url: str, models: list[str], clicks: int) -> list[float]:
    """Seconds from a click on the trigger toggle to every model's answer redrawn, per click."""
    page.goto(f"{url}playground?models={','.join(models)}", wait_until="domcontentloaded")
    settle(page)
    answers = page.locator('.db-answer[data-kind="answer"]')
    if answers.count() != len(models):
        raise RuntimeError(f"expected {len(models)} answers in the Playground, found {answers.count()}")
    toggle = page.get_by_text("zeta", exact=True).first
    times = []
    for i in range(clicks + 2):
        before = answers.all_inner_texts()
        t0 = time.perf_counter()
        toggle.click()
        wait_for_new_answers(page, before)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


ANSWERS_JS = """() => [...document.querySelectorAll('.db-answer[data-kind="answer"]')].map(e => e.innerText)"""
RUNNING_JS = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'running'"""
POLL_S = 0.01


def wait_for_new_answers(page, before: list[str], timeout_s: float = 60.0) -> None:
    """Poll (every 10 ms) until the script run is over (Streamlit's own ``data-test-script-state``)
    and some model's answer differs."""
    deadline = time.perf_counter() + timeout_s
    now: list[str] = []
    while time.perf_counter() < deadline:
        now = page.evaluate(ANSWERS_JS)
        if len(now) == len(before) and now != before and not page.evaluate(RUNNING_JS):
            return
        time.sleep(POLL_S)
    raise TimeoutError(f"no answer changed within {timeout_s} s of the click (before {before}, now {now})")


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
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
    print(f"run: {args.run_dir}  models in the Playground: {', '.join(models)}")
    print(f"{'measure':22s} {'value':>10s} {'target':>10s} {'ratio':>7s}")
    print(f"{'first page (s)':22s} {first:10.2f} {FIRST_PAGE_TARGET_S:10.2f} {first / FIRST_PAGE_TARGET_S:7.2f}")
    print(f"{'click -> answer p50 (ms)':22s} {1000 * p50:10.0f} {'':>10s} {'':>7s}")
    print(f"{'click -> answer p95 (ms)':22s} {1000 * p95:10.0f} {CLICK_P95_TARGET_MS:10.0f} "
          f"{1000 * p95 / CLICK_P95_TARGET_MS:7.2f}")
    print(f"screenshots: {args.shots} ({len(PAGES) * len(VIEWPORTS)} pages)")


if __name__ == "__main__":
    main()
