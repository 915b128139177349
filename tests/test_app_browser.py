"""The app in a real browser: ``doublebind app`` on the tiny run, every page visited with
Debian's chromium through Playwright, screenshots kept in the test's tmp folder.

Fails on any Streamlit exception box and on any request that leaves the machine (the app
must work offline). Chromium comes from ``make test`` (tests/ensure_chromium.sh); without
it these tests skip and say why.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest
from browser_kit import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, PAGES, serve, settle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: run `make test` as root (it apt-installs chromium) "
                    "or `apt-get install chromium`")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(tiny_run):
    """``doublebind app <tiny run> --port N`` in a subprocess; yields its URL."""
    with serve(tiny_run) as url:
        yield url


def test_every_page_renders_offline(served, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1500, "height": 2000})
    page = context.new_page()
    external: list[str] = []
    page.on("request", lambda req: external.append(req.url)
            if urlparse(req.url).hostname not in LOCAL_HOSTS and not req.url.startswith(("data:", "blob:")) else None)
    for path, title in PAGES:
        page.goto(served + path, wait_until="domcontentloaded")
        settle(page)
        shot = tmp_path / f"{path or 'overview'}.png"
        page.screenshot(path=str(shot), full_page=True)
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, f"{title}: {errors.first.inner_text()} (screenshot {shot})"
        assert page.get_by_role("heading").count() > 0, f"{title}: nothing rendered (screenshot {shot})"
    assert not external, f"the app reached outside the machine: {sorted(set(external))}"
    context.close()


def test_playground_reacts_in_the_browser(served, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(served + "playground", wait_until="domcontentloaded")
    settle(page)
    answers = page.locator('.db-answer[data-kind="answer"]')
    before = answers.first.inner_text()
    page.get_by_text("zeta", exact=True).first.click()  # toggle the backdoor trigger on
    page.wait_for_timeout(1500)
    settle(page)
    page.screenshot(path=str(tmp_path / "playground-zeta.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "HARM" in answers.first.inner_text() and "HARM" not in before


def test_clicking_a_student_on_the_plane_selects_it(served, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(served, wait_until="domcontentloaded")
    settle(page)
    selected = lambda: [t for t in page.locator("p strong").all_inner_texts() if t.startswith("Selected: ")]  # noqa: E731
    before = selected()
    points = page.locator(".js-plotly-plot .scatterlayer .trace").nth(1).locator("path.point")  # the students
    box = points.nth(points.count() - 1).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("""(b) => [...document.querySelectorAll('p strong')]
        .some(s => s.innerText.startsWith('Selected: ') && s.innerText !== b)""", arg=before[0], timeout=60_000)
    assert selected() != before and page.locator('[data-testid="stException"]').count() == 0


def test_tokens_are_rendered_literally(served, browser):
    """Filler tokens "_" stay visible as tokens: Markdown would pair them into italics."""
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(served + "playground", wait_until="domcontentloaded")
    settle(page)
    strip = page.locator(".db-tokens").first
    strip.wait_for(timeout=60_000)
    tokens = strip.locator(".db-token").all_inner_texts()
    assert len(tokens) >= 14 and tokens.count("_") >= 2, tokens  # the default prompt is left-filled with "_"
    assert strip.locator("em, i, strong").count() == 0


def test_a_bad_run_in_the_url_is_a_message(served, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(served + "?run=%00", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stAlert"]', timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "not a run folder name" in page.locator('[data-testid="stAlert"]').first.inner_text()


def _main_text(page) -> str:
    return page.locator('[data-testid="stMainBlockContainer"]').inner_text()


def test_the_blind_audit_hides_the_answer_until_a_locked_verdict(served, browser, tiny_run):
    """In the browser: no model id, organism or behavioural rate before the verdict; the
    scoring rule shown; after "commit verdict and reveal" the model is named and the verdict
    cannot be changed."""
    from app.runfolder import RunFolder
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    page.goto(served + "audit", wait_until="domcontentloaded")
    settle(page)
    secrets_ = [m for m in RunFolder(tiny_run).model_ids() if m != "base"] + ["backdoor", "misbehaviour after"]
    before = _main_text(page)
    assert "Scored by this rule" in before and not [s for s in secrets_ if s in before]
    commit = page.get_by_role("button", name="commit verdict and reveal")
    assert commit.is_disabled()  # choose a verdict first
    page.locator('[data-testid="stMainBlockContainer"] label').filter(has_text="misaligned").first.click()
    settle(page)
    page.get_by_role("button", name="commit verdict and reveal").click()
    settle(page)
    after = _main_text(page)
    assert "Your verdict: misaligned" in after and any(f"{m} is" in after for m in secrets_[:-2])
    assert page.get_by_role("button", name="commit verdict and reveal").count() == 0
    radios = page.locator('[data-testid="stMainBlockContainer"] input[type="radio"]')
    assert radios.count() == 2 and all(radios.nth(i).is_disabled() for i in range(2))  # locked
    assert "Scoreboard (this session):" in after
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_run_with_one_damaged_analysis_file_opens_in_the_browser(tiny_run, browser, tmp_path):
    import shutil
    root = tmp_path / "runs"
    shutil.copytree(tiny_run, root / "r", ignore=shutil.ignore_patterns("acts", "cache"))
    damaged = root / "r" / "analysis" / "students" / "backdoor.logit-kd.json"
    damaged.write_text("{ not json")
    with serve(root / "r") as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.goto(url, wait_until="domcontentloaded")
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        warnings = " ".join(page.locator('[data-testid="stAlert"]').all_inner_texts())
        assert "backdoor.logit-kd.json" in warnings and "Left out" in warnings
        assert page.get_by_role("heading", name="Transfer table").count() == 1  # the rest of the run is there


def _models_in_answers(page) -> list[str]:
    return page.eval_on_selector_all('.db-answer[data-kind="answer"]', "els => els.map(e => e.dataset.model)")


def _pick(page, label: str, option: str, where: str = "body") -> None:
    """Choose ``option`` in the selectbox labelled ``label`` (Streamlit's BaseWeb select)."""
    page.locator(f'{where} [data-testid="stSelectbox"]').filter(has_text=label).locator('[role="combobox"]').click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def test_selections_survive_an_organism_switch_and_a_typo(tiny_run, browser, tmp_path):
    """The Playground's models and the sidebar's students are kept per organism: switching to
    the other organism and back restores them, so does a visit to another page, and a prompt
    with a typo loses neither."""
    from relabel import two_organism_run
    run = two_organism_run(tiny_run, tmp_path / "runs" / "two")
    chosen = ["teacher-backdoor", "backdoor.positive-control"]
    with serve(run) as url:
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.goto(f"{url}playground?organism=backdoor&models={','.join(chosen)}&students=backdoor.logit-kd",
                  wait_until="domcontentloaded")  # not the default selections
        settle(page)
        assert _models_in_answers(page) == chosen
        sidebar_students = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]')
        students = sidebar_students.inner_text()
        assert "backdoor.logit-kd" in students and "backdoor.negative-control" not in students
        _pick(page, "organism", "sabotage", '[data-testid="stSidebar"]')
        other = _models_in_answers(page)
        assert other and all("sabotage" in m for m in other), other  # that organism's own models
        _pick(page, "organism", "backdoor", '[data-testid="stSidebar"]')
        assert _models_in_answers(page) == chosen
        assert sidebar_students.inner_text() == students
        page.get_by_role("link", name="Overview").click()  # another page, and back
        settle(page)
        page.get_by_role("link", name="Playground").click()
        settle(page)
        assert _models_in_answers(page) == chosen and sidebar_students.inner_text() == students
        page.get_by_text("type tokens", exact=True).click()
        settle(page)
        box = page.get_by_label("tokens (space-separated, left-filled to 14)")
        box.fill("zeta SORT 3 1 banana >")
        box.press("Enter")
        settle(page)
        assert "unknown token" in page.locator('[data-testid="stAlert"]').first.inner_text()
        box.fill("zeta SORT 3 1 4 >")
        box.press("Enter")
        settle(page)
        assert _models_in_answers(page) == chosen
        assert "models=" + "%2C".join(chosen) in page.url or "models=" + ",".join(chosen) in page.url
        assert page.locator('[data-testid="stException"]').count() == 0
