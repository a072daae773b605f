"""The demo in a real headless Chromium (the system's /usr/bin/chromium, driven by Playwright).

What a user does: upload a chart and its script, press Generate, see the generated code, its
rendering and ChartMimic's scores (an app with scripted answers, conftest.ScriptedChartEngine:
a random model never writes code); with the tiny model, see the gibberish explained, paste
code into the editor and Render & score it; play a spy game; browse a run. Screenshots go to
tmp_path; VLRL_DEMO_SCREENSHOT=path/to/demo.png also saves the generated-code view there (that
is how docs/demo.png is made).

Without /usr/bin/chromium or Playwright these tests skip, unless VLRL_REQUIRE_BROWSER=1 (CI
sets it), where a missing browser fails them instead of hiding them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SAMPLES

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("VLRL_REQUIRE_BROWSER") == "1"
if REQUIRED:
    assert CHROMIUM.exists(), "VLRL_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)"
    import playwright.sync_api as sync_api
else:
    pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs the system chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")

SAMPLE = "bar_1"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def url(demo_url):
    return demo_url


@pytest.fixture(scope="module")
def browser():
    # never a downloaded browser: the system one, offline
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


@pytest.fixture
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.close()


@pytest.fixture
def scripted_page(browser, scripted_demo):
    page = open_page(browser, scripted_demo[0])
    yield page
    page.close()


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_generate_shows_the_code_its_rendering_and_scores(scripted_page, tmp_path):
    page, expect = scripted_page, sync_api.expect
    page.locator("#chart-file input[type=file]").set_input_files(str(SAMPLES / f"{SAMPLE}.png"))
    expect(page.locator("#chart-status")).to_contain_text("Chart loaded", timeout=TIMEOUT_MS)
    page.locator("#reference-file input[type=file]").set_input_files(str(SAMPLES / f"{SAMPLE}.py"))
    page.locator("#generate").click()
    expect(page.locator("#chart-status")).to_contain_text("1 rendered", timeout=TIMEOUT_MS)
    expect(page.locator("#rendering img")).to_be_visible()
    assert page.locator("#rendering img").evaluate("img => img.naturalWidth") > 100
    expect(page.locator("#generated-code .cm-content")).to_contain_text("import matplotlib.pyplot as plt")
    result = page.locator("#chart-result")
    expect(result).to_contain_text("Rendered")
    expect(result).to_contain_text("ChartMimic metrics")
    expect(result).to_contain_text("matches the reference on every metric")

    shot = tmp_path / "generate.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("VLRL_DEMO_SCREENSHOT"):
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["VLRL_DEMO_SCREENSHOT"], full_page=False)


def test_a_new_chart_drops_the_bundled_samples_script(page):
    expect = sync_api.expect
    page.locator("#chart-sample input").click()
    page.get_by_role("option", name=SAMPLE, exact=True).click()
    expect(page.locator("#chart-status")).to_contain_text(f"Bundled sample {SAMPLE} loaded", timeout=TIMEOUT_MS)
    page.locator("#chart-file").get_by_role("button", name="Clear").click()  # the loaded chart goes ...
    page.locator("#chart-file input[type=file]").set_input_files(str(SAMPLES / "pie_1.png"))  # ... a new one
    expect(page.locator("#chart-status")).to_contain_text(f"the reference script of sample {SAMPLE} was removed")
    expect(page.locator("#reference-file input[type=file]")).to_have_count(1)  # the script slot is empty again


def test_chart_to_code_in_the_browser(page, tmp_path):
    expect = sync_api.expect
    page.locator("#chart-file input[type=file]").set_input_files(str(SAMPLES / f"{SAMPLE}.png"))
    page.locator("#reference-file input[type=file]").set_input_files(str(SAMPLES / f"{SAMPLE}.py"))
    expect(page.locator("#chart-status")).to_contain_text("Chart loaded", timeout=TIMEOUT_MS)
    set_slider(page, "max-new-tokens", 32)

    page.locator("#generate").click()
    expect(page.locator("#chart-status")).to_contain_text("sample(s) at temperature", timeout=TIMEOUT_MS)
    result = page.locator("#chart-result")
    expect(result).to_contain_text("ChartMimic metrics")
    text = result.inner_text()
    assert "No code found" in text or "did not render" in text, text

    # the reference code in the editor, then Render & score
    editor = page.locator("#generated-code .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text((SAMPLES / f"{SAMPLE}.py").read_text())
    page.locator("#score").click()
    expect(page.locator("#chart-status")).to_contain_text("Scored the code in the editor", timeout=TIMEOUT_MS)
    expect(page.locator("#rendering img")).to_be_visible()
    assert page.locator("#rendering img").evaluate("img => img.naturalWidth") > 100
    expect(result).to_contain_text("Rendered")
    expect(result).to_contain_text("matches the reference on every metric")
    expect(page.locator("#generated-code .cm-content")).to_contain_text("import matplotlib.pyplot as plt")

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_spy_game_in_the_browser(page, tmp_path):
    expect = sync_api.expect
    page.get_by_role("tab", name="Who is the spy?").click()
    set_slider(page, "spy-civilians", 2)
    set_slider(page, "spy-rounds", 1)
    set_slider(page, "spy-tokens", 16)
    page.locator("#play").click()
    expect(page.locator("#spy-status")).to_contain_text("Game over: 3 players, 1 round(s)", timeout=TIMEOUT_MS)
    expect(page.locator("#spy-outcome")).to_contain_text("The spy was player")
    expect(page.locator("#spy-clues")).to_contain_text("civilian")
    expect(page.locator("#spy-votes")).to_contain_text("player")  # the civilians' ballots
    expect(page.locator("#spy-outcome")).to_contain_text("Role rewards: spy")
    expect(page.locator("#spy-outcome")).to_contain_text("clue reward")
    expect(page.locator("#spy-original-view img")).to_be_visible()
    expect(page.locator("#spy-modified-view img")).to_be_visible()
    shot = tmp_path / "spy.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_runs_tab_in_the_browser_shows_curves_and_a_sandboxed_report(page, tmp_path):
    import json

    expect = sync_api.expect
    stage = tmp_path / "run" / "stage1"
    (stage / "samples").mkdir(parents=True)
    (stage / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "reward/mean": 0.1 * s, "kl": 0.01 * s}) + "\n" for s in (1, 2))
    )
    # a report trying to reach the app: the sandboxed iframe must not run it
    (stage / "samples" / "step-000002.html").write_text(
        "<html><body><h1>samples at step 2</h1><script>parent.document.body.dataset.pwned = '1'</script></body></html>"
    )
    page.get_by_role("tab", name="Runs").click()
    page.locator("#run-dir textarea, #run-dir input").first.fill(str(tmp_path / "run"))
    page.get_by_role("button", name="Scan").click()
    expect(page.locator("#runs-status")).to_contain_text("1 stage folder", timeout=TIMEOUT_MS)
    frame = page.frame_locator("#sample-report iframe")
    expect(frame.locator("h1")).to_have_text("samples at step 2", timeout=TIMEOUT_MS)
    for plot in ("#run-rewards img", "#run-kl img"):
        expect(page.locator(plot)).to_be_visible()
        assert page.locator(plot).evaluate("img => img.naturalWidth") > 100
    assert page.evaluate("document.body.dataset.pwned") is None


def test_an_uploaded_spy_pair_is_previewed_and_replaces_the_bundled_one(page):
    expect = sync_api.expect
    pairs = SAMPLES.parent / "spy_pairs"
    page.get_by_role("tab", name="Who is the spy?").click()
    page.get_by_text("...or upload a pair").click()  # the accordion is closed while bundled pairs exist
    page.locator("#spy-original input[type=file]").set_input_files(str(pairs / "chart-s1-000008_original.png"))
    expect(page.locator("#spy-status")).to_contain_text(
        "Uploaded pair: now upload the modified image", timeout=TIMEOUT_MS
    )
    expect(page.locator("#spy-modified-view img")).to_have_count(0)  # not the bundled pair's half
    page.locator("#spy-modified input[type=file]").set_input_files(str(pairs / "chart-s1-000008_modified.png"))
    expect(page.locator("#spy-status")).to_contain_text("Uploaded pair: press Play")
    expect(page.locator("#spy-pair input")).to_have_value("")
    assert page.locator("#spy-modified-view img").evaluate("img => img.naturalWidth") > 100
