"""The Gradio demo through its HTTP API (gradio_client), on the tiny model.

One app for the module: the tiny model, a real sandboxed render pool, launched in-process
on a free port. Each tab's endpoints are called as a remote user would, bad input included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402 - only once gradio_client is known to be there

SAMPLE = "bar_1"
TOKENS = 32


@pytest.fixture(scope="module")
def app(demo_url):
    return Client(demo_url, verbose=False)


def generate(client, chart, reference=None, *, n=1, seed=0, temperature=1.0):
    return client.predict(
        handle_file(str(chart)),
        handle_file(str(reference)) if reference else None,
        temperature,
        TOKENS,
        n,
        True,
        seed,
        api_name="/generate",
    )


def score(client, chart, code, reference=None):
    return client.predict(
        handle_file(str(chart)), handle_file(str(reference)) if reference else None, code, api_name="/score"
    )


# outputs of /generate and /score, in order
STATUS, CHART, RENDERING, CODE, DOWNLOAD, RESULT, RAW, TABLE, PICK = range(9)


def test_generate_with_the_tiny_model_on_a_bundled_sample(app):
    png, py = app.predict(SAMPLE, api_name="/load_sample")[:2]
    assert Path(png).name == f"{SAMPLE}.png" and Path(py).read_text() == (SAMPLES / f"{SAMPLE}.py").read_text()

    out = generate(app, png, py, n=2, seed=3)
    assert out[STATUS].startswith("2 sample(s) at temperature 1 (seed 3)"), out[STATUS]
    table = out[TABLE]["data"]
    assert [row[0] for row in table] == [1, 2]
    assert all(0 < row[1] <= TOKENS and row[2] in ("stop", "length limit") for row in table), table
    assert out[CHART] is not None  # the uploaded chart, as the model saw it
    # A random model writes gibberish: the page says so in words, and still scores it.
    assert "No code found" in out[RESULT] or "did not render" in out[RESULT], out[RESULT]
    assert "ChartMimic metrics" in out[RESULT] and "SSIM" in out[RESULT]
    assert out[RAW]
    # the fixed seed makes it repeatable
    again = generate(app, png, py, n=2, seed=3)
    assert again[RAW] == out[RAW] and again[TABLE] == out[TABLE]
    other = generate(app, png, py, n=1, seed=4)
    assert other[RAW] != out[RAW]


def test_reference_code_scored_against_itself_is_perfect(app):
    code = (SAMPLES / f"{SAMPLE}.py").read_text()
    out = score(app, SAMPLES / f"{SAMPLE}.png", code, SAMPLES / f"{SAMPLE}.py")
    assert out[STATUS] == "Scored the code in the editor."
    assert "**Rendered**" in out[RESULT]
    assert "| yes | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in out[RESULT], out[RESULT]
    assert "matches the reference on every metric" in out[RESULT]
    assert out[RENDERING] is not None and Path(out[RENDERING]).stat().st_size > 1000
    assert Path(out[DOWNLOAD]).read_text().strip() == out[CODE].strip() == code.strip()
    ssim = out[TABLE]["data"][0][4]
    assert 0.5 < ssim <= 1.0  # the same chart drawn at another resolution


def test_scoring_without_a_reference_gives_only_the_visual_similarity(app):
    code = (SAMPLES / f"{SAMPLE}.py").read_text()
    out = score(app, SAMPLES / f"{SAMPLE}.png", code)
    assert "SSIM" in out[RESULT] and "Upload the reference script" in out[RESULT]
    assert out[TABLE]["data"][0][-1] is None  # no ChartMimic column value


def test_broken_code_is_explained_in_plain_words(app, tmp_path):
    out = score(
        app,
        SAMPLES / f"{SAMPLE}.png",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n1 / 0\n",
        SAMPLES / f"{SAMPLE}.py",
    )
    assert "did not render" in out[RESULT] and "raised an error" in out[RESULT] and "ZeroDivisionError" in out[RESULT]
    assert out[RENDERING] is None
    assert "| no |" in out[RESULT]
    assert "did not produce a chart" in out[RESULT]  # the critique

    broken_reference = tmp_path / "broken.py"
    broken_reference.write_text("import matplotlib.pyplot as plt\nraise ValueError('no data')\n")
    out = score(app, SAMPLES / f"{SAMPLE}.png", (SAMPLES / f"{SAMPLE}.py").read_text(), broken_reference)
    assert "**Rendered**" in out[RESULT] and "SSIM" in out[RESULT]
    assert "the reference script does not render" in out[RESULT] and "no data" in out[RESULT], out[RESULT]


def test_bad_uploads_get_a_message_and_the_app_keeps_serving(app, tmp_path):
    from PIL import Image

    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image")
    out = generate(app, not_image)
    assert "not an image this demo can read" in out[STATUS] and "notes.png" in out[STATUS]
    assert "/tmp" not in out[STATUS] and "gradio" not in out[STATUS].lower()  # no server paths shown

    bomb = tmp_path / "bomb.png"  # 10000 x 10000 pixels, a few kB: refused from its header
    Image.new("1", (10_000, 10_000)).save(bomb)
    out = generate(app, bomb)
    assert "too large" in out[STATUS] and "bomb.png" in out[STATUS]

    binary = tmp_path / "ref.py"
    binary.write_bytes(b"\xff\xfe\x00binary")
    out = generate(app, SAMPLES / f"{SAMPLE}.png", binary)
    assert "not UTF-8" in out[STATUS]

    out = score(app, SAMPLES / f"{SAMPLE}.png", "   ")
    assert "code box is empty" in out[STATUS]

    out = app.predict(None, None, 1.0, TOKENS, 1, True, 0, api_name="/generate")
    assert "Upload a chart image first" in out[STATUS]

    pdf = tmp_path / "report.pdf"  # any extension reaches the demo's own check, not a bare toast
    pdf.write_bytes(b"%PDF-1.4 not a chart")
    out = generate(app, pdf)
    assert "not an image this demo can read" in out[STATUS] and "report.pdf" in out[STATUS]

    huge = tmp_path / "huge.png"  # over the upload limit: the server refuses it before the disk
    huge.write_bytes(b"\0" * (26 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)too large|exceeds|413|maximum"):
        generate(app, huge)

    # still serving
    out = score(app, SAMPLES / f"{SAMPLE}.png", (SAMPLES / f"{SAMPLE}.py").read_text())
    assert "**Rendered**" in out[RESULT]


def test_large_cmyk_and_transparent_images_are_converted(app, tmp_path):
    chart = Image_open(SAMPLES / f"{SAMPLE}.png")
    code = (SAMPLES / f"{SAMPLE}.py").read_text()
    big = tmp_path / "big.png"
    chart.resize((chart.width * 4, chart.height * 4)).save(big)  # > MAX_SIDE on the long side
    cmyk = tmp_path / "cmyk.jpg"
    chart.convert("CMYK").save(cmyk)
    alpha = tmp_path / "alpha.png"
    rgba = chart.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(alpha)
    from app.uploads import MAX_SIDE

    for path in (big, cmyk, alpha):
        out = score(app, path, code)
        assert "**Rendered**" in out[RESULT], (path.name, out[STATUS])
        shown = Image_open(out[CHART])
        assert shown.mode == "RGB" and max(shown.size) <= MAX_SIDE, path.name
        assert out[TABLE]["data"][0][4] > 0.3, path.name  # still recognisably the same chart


def Image_open(path):
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.copy()


def test_spy_game_on_a_bundled_pair(app):
    status, original, modified, outcome, clues, votes, transcript = app.predict(
        "scene-s0-000000", None, None, 2, 1, "civilians_vote", 1, 16, 1.0, 0, 0, api_name="/play_spy"
    )
    assert status.startswith("Game over: 3 players, 1 round(s)"), status
    assert status.endswith("Played on pair **scene-s0-000000**.")
    assert "Role rewards: spy" in outcome and "| player | role | votes received | clue reward |" in outcome
    assert original and modified
    assert [row[:2] for row in clues["data"]] == [[1, 1], [1, 2], [1, 3]]  # round 1, seats in order
    game = json.loads(Path(transcript).read_text())
    spy = game["spy"]
    assert f"The spy was **player {spy}**" in outcome and "What differs" in outcome
    assert len(votes["data"]) == 2  # the two civilians vote, the spy does not
    assert {row[0] for row in votes["data"]} == {
        f"player {p['seat']}" for p in game["players"] if p["role"] == "civilian"
    }
    assert abs(sum(game["clue_rewards"])) < 1e-9  # zero-sum clue rewards
    assert len(game["decision_rewards"]) == 2
    # the same seed plays the same game
    again = app.predict("scene-s0-000000", None, None, 2, 1, "civilians_vote", 1, 16, 1.0, 0, 0, api_name="/play_spy")
    assert again[4] == clues


def test_spy_game_on_an_uploaded_pair_and_bad_pairs(app, tmp_path):
    from PIL import Image

    pairs = SAMPLES.parent / "spy_pairs"
    original, modified = pairs / "chart-s1-000008_original.png", pairs / "chart-s1-000008_modified.png"
    out = app.predict(
        "",
        handle_file(str(original)),
        handle_file(str(modified)),
        2,
        1,
        "observer",
        2,
        8,
        1.0,
        1,
        2,
        api_name="/play_spy",
    )
    assert out[0].startswith("Game over"), out[0]
    assert "Played on the uploaded pair (chart-s1-000008_original.png / chart-s1-000008_modified.png)" in out[0]
    assert "The spy was **player 2**" in out[3]
    assert [row[:2] for row in out[5]["data"]] == [["observer", 1], ["observer", 2]]  # one observer, G = 2

    small = tmp_path / "small.png"
    Image.new("RGB", (20, 20), "white").save(small)
    out = app.predict(
        "", handle_file(str(original)), handle_file(str(small)), 2, 1, "observer", 1, 8, 1.0, 0, 0, api_name="/play_spy"
    )
    assert "differ in size" in out[0]
    out = app.predict("", handle_file(str(original)), None, 2, 1, "observer", 1, 8, 1.0, 0, 0, api_name="/play_spy")
    assert "Upload both images" in out[0]
    out = app.predict("scene-s0-000000", None, None, 2, 1, "observer", 1, 8, 1.0, 0, 7, api_name="/play_spy")
    assert "spy's seat must be" in out[0]


def write_fake_run(root: Path) -> Path:
    stage = root / "chart2code" / "stage1"
    (stage / "samples").mkdir(parents=True)
    rows = [
        {"step": s, "reward/mean": 0.1 * s, "reward/exec": 0.05 * s, "kl": 0.01 * s, "entropy": 2.0}
        for s in range(1, 4)
    ]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = "<html><body><h1>step 3 \"quoted\" & more</h1><script>alert('x')</script></body></html>"
    (stage / "samples" / "step-000003.html").write_text(page)
    (stage / "samples" / "step-000001.html").write_text("<html><body>old</body></html>")
    return stage


def test_runs_tab_shows_curves_and_the_latest_sample_report(app, tmp_path):
    write_fake_run(tmp_path)
    stage, status, rewards_png, kl_png, last, report = app.predict(str(tmp_path), api_name="/scan_runs")
    assert stage["choices"] == [["chart2code/stage1", "chart2code/stage1"]] and stage["value"] == "chart2code/stage1"
    assert "1 stage folder" in status and "showing" in status
    assert last["data"][0] == ["step", 3] and "step-000003.html" in report  # a scan shows the newest stage
    status, rewards_png, kl_png, last, report = app.predict(str(tmp_path), "chart2code/stage1", api_name="/show_run")
    assert Path(rewards_png).stat().st_size > 1000 and Path(kl_png).stat().st_size > 1000
    assert last["data"][0] == ["step", 3] and ["reward/mean", 0.3] in [r[:2] for r in last["data"]]
    assert "step-000003.html" in report and "old" not in report
    # the report is shown in a sandboxed iframe, its markup escaped into srcdoc
    assert '<iframe sandbox=""' in report
    assert "<script>" not in report and "&lt;script&gt;" in report and "&quot;quoted&quot;" in report


def test_a_scan_redraws_even_when_the_stage_keeps_its_name(app, tmp_path):
    first, second = write_fake_run(tmp_path / "a"), write_fake_run(tmp_path / "b")
    (second / "metrics.jsonl").write_text(json.dumps({"step": 9, "reward/mean": 0.9}) + "\n")
    assert app.predict(str(tmp_path / "a"), api_name="/scan_runs")[4]["data"][0] == ["step", 3]
    out = app.predict(str(tmp_path / "b"), api_name="/scan_runs")  # same stage name, another run
    assert out[0]["value"] == "chart2code/stage1" and out[4]["data"][0] == ["step", 9]
    with (first / "metrics.jsonl").open("a") as f:  # a live run logs another step: rescan shows it
        f.write(json.dumps({"step": 4, "reward/mean": 0.4}) + "\n")
    assert app.predict(str(tmp_path / "a"), api_name="/scan_runs")[4]["data"][0] == ["step", 4]


def test_runs_tab_explains_missing_runs(app, tmp_path):
    stage, status, rewards_png, kl_png, last, report = app.predict(str(tmp_path / "nowhere"), api_name="/scan_runs")
    assert "No run folder" in status
    assert rewards_png is None and kl_png is None and not last["data"] and not report  # nothing stale
    (tmp_path / "empty").mkdir()
    status = app.predict(str(tmp_path / "empty"), api_name="/scan_runs")[1]
    assert "holds no metrics.jsonl" in status
    stage = write_fake_run(tmp_path / "run")
    (stage / "metrics.jsonl").write_text("")
    status, *_ = app.predict(str(tmp_path / "run"), "chart2code/stage1", api_name="/show_run")
    assert "holds no steps yet" in status
    (stage / "metrics.jsonl").write_text('{"reward/mean": 0.5}\n{"note": "x"}\n')  # rows without a step
    status, *_ = app.predict(str(tmp_path / "run"), "chart2code/stage1", api_name="/show_run")
    assert 'none of its 2 rows has a numeric "step"' in status


def test_scratch_space_keeps_only_the_newest_folders(tmp_path):
    from app.services import DemoServices, SamplingDefaults

    services = DemoServices(
        engine=None,
        pool=None,
        visual_reward=None,
        chart_reward=None,
        model_name="x",
        defaults=SamplingDefaults(1.0, 8, 0),
        workdir=tmp_path,
        scratch_keep=3,
    )
    folders = []
    for i in range(5):
        folders.append(services.scratch(f"s{i}-"))
        (folders[-1] / "out.png").write_bytes(b"png")
    assert [f.exists() for f in folders] == [False, False, True, True, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in folders[2:])


def test_demo_command_help_and_a_bad_model_path(capsys):
    from vlrl.cli import main

    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "model=" in text and "port=" in text and "clip_checkpoint=" in text
    assert main(["demo", "model=/no/such/checkpoint"]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- scripted answers
# A random model never writes code; ScriptedChartEngine (conftest) answers with known text so
# the page's handling of real code, prose and broken code is checked end to end.


@pytest.fixture(scope="module")
def scripted(scripted_demo):
    url, engine = scripted_demo
    return Client(url, verbose=False), engine


def test_generated_code_is_shown_rendered_scored_and_downloadable(scripted):
    from conftest import SCRIPTED_SAMPLE

    client, engine = scripted
    calls = engine.progress_calls
    chart, script = SAMPLES / f"{SCRIPTED_SAMPLE}.png", SAMPLES / f"{SCRIPTED_SAMPLE}.py"
    out = generate(client, chart, script, n=3, seed=0)
    assert engine.progress_calls > calls  # the engine's decoding steps reached the progress bar
    assert out[STATUS].startswith("3 sample(s) at temperature 1 (seed 0): 1 rendered. Showing sample 1 (the best")
    assert [row[3] for row in out[TABLE]["data"]] == ["rendered", "no code", "runtime"]
    assert out[CODE].strip() == script.read_text().strip()
    assert Path(out[DOWNLOAD]).read_text().strip() == script.read_text().strip()
    assert out[RENDERING] is not None and Path(out[RENDERING]).stat().st_size > 1000
    assert "**Rendered**" in out[RESULT] and "| yes | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in out[RESULT]
    assert out[TABLE]["data"][0][-1] == 100.0 and out[TABLE]["data"][1][-1] == 0.0


def test_an_answer_without_code_is_explained(scripted):
    client, _ = scripted
    out = generate(client, SAMPLES / "bar_1.png", n=1, seed=1)
    assert "**No code found** in the model's answer" in out[RESULT]
    assert out[RENDERING] is None and out[DOWNLOAD] is None and out[CODE] == ""
    assert "would rather not write code" in out[RAW]


def test_a_pasted_fenced_answer_is_scored_as_its_code(app):
    code = (SAMPLES / f"{SAMPLE}.py").read_text()
    out = score(
        app, SAMPLES / f"{SAMPLE}.png", f"Sure! Here it is:\n```python\n{code}\n```\nEnjoy.", SAMPLES / f"{SAMPLE}.py"
    )
    assert "**Rendered**" in out[RESULT] and "| yes | 100.0 |" in out[RESULT], out[RESULT]
    assert out[CODE].strip() == code.strip()
