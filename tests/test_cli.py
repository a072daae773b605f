"""The vlrl command line end to end: render, eval, options and their errors."""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
from conftest import PARITY, ROOT, SAMPLES

from vlrl.cli import main
from vlrl.options import OptionError, option, parse_options


def vlrl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vlrl.cli", *args], capture_output=True, text=True, cwd=cwd or ROOT)


@dataclass
class Opts:
    n: int = option(help="how many")
    rate: float = option(0.5, help="a rate")
    flag: bool = option(False, help="a flag")
    names: list[str] = option([], help="names")


def test_options_parse_types_and_lists():
    o = parse_options(Opts, ["n=3", "rate=0.1", "flag=true", "names=a,b"])
    assert (o.n, o.rate, o.flag, o.names) == (3, 0.1, True, ["a", "b"])


def test_unknown_option_names_the_closest_keys():
    with pytest.raises(OptionError, match="unknown option 'rat'; did you mean rate"):
        parse_options(Opts, ["n=1", "rat=2"])
    with pytest.raises(OptionError, match="n=x: expected int"):
        parse_options(Opts, ["n=x"])
    with pytest.raises(OptionError, match="missing required option: n=..."):
        parse_options(Opts, [])


def test_help_lists_every_option_with_default():
    out = vlrl("render", "--help").stdout
    for key in ("paths=", "out=", "workers=0", "timeout=20.0", "dpi=100.0"):
        assert key in out
    assert "eval" in vlrl("--help").stdout


def test_help_into_a_closed_pipe_is_quiet():
    """`vlrl train --help | head -1`: the reader leaves early, vlrl exits 0 without a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vlrl.cli", "train", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    proc.stdout.close()  # before vlrl has written anything: every write hits a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err, err


def test_bad_input_gets_one_clear_line(tmp_path):
    r = vlrl("render", str(tmp_path / "missing.py"), f"out={tmp_path}/o")
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = vlrl("render", str(tmp_path / "empty"), f"out={tmp_path}/o")
    assert "holds no .py scripts" in r.stderr
    r = vlrl("render", str(tmp_path), "outt=x")
    assert "unknown option 'outt'; did you mean out" in r.stderr
    r = vlrl("trian")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_render_command_writes_images_traces_and_results(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("bar_1", "pie_1"):
        shutil.copy(SAMPLES / f"{name}.py", src)
    (src / "broken.py").write_text("import matplotlib.pyplot as plt\nplt.plot(undefined)\n")
    (src / "latin1.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    out = tmp_path / "out"
    assert main([str(src), f"out={out}", "workers=2"]) == 2  # positional paths need the command name
    assert main(["render", str(src), f"out={out}", "workers=2"]) == 0
    rows = {r["name"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert rows["bar_1"]["ok"] and rows["pie_1"]["ok"]
    assert rows["broken"]["error_kind"] == "runtime" and "NameError" in rows["broken"]["error"]
    assert rows["latin1"]["error_kind"] == "syntax" and "not UTF-8" in rows["latin1"]["error"]
    assert (out / "bar_1.png").stat().st_size > 1000
    assert json.loads((out / "bar_1.json").read_text())["types"] == {"bar": 5}
    # resuming renders nothing twice, and says so
    capsys.readouterr()
    assert main(["render", str(src), f"out={out}"]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    assert "all 4 charts were already rendered" in capsys.readouterr().out

    # a run in which nothing renders is a failure for whoever called it
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.py").write_text("raise SystemExit(3)\n")
    assert main(["render", str(bad), f"out={tmp_path / 'bad_out'}", "workers=1"]) == 1


def test_eval_chartmimic_end_to_end_with_bad_input(tmp_path):
    preds = tmp_path / "preds.jsonl"
    rows = (PARITY / "predictions_seed0.jsonl").read_text().splitlines()
    extra = [
        "{not json",
        json.dumps({"file": "nonexistent_9.py", "response": "```python\nx=1\n```"}),
        rows[0],  # duplicate
        json.dumps({"file": "pie_1.py", "response": None}),
    ]
    # drop pie_1's real prediction so the null response is the only one for it
    kept = [r for r in rows if json.loads(r)["file"] != "pie_1.py"]
    preds.write_text("\n".join(kept + extra) + "\n")
    out = tmp_path / "eval"
    cache = tmp_path / "cache"
    assert (
        main(
            [
                "eval",
                "benchmark=chartmimic",
                f"data_dir={SAMPLES}",
                f"predictions={preds}",
                f"out={out}",
                f"cache_dir={cache}",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 30
    assert set(summary) >= {"n", "exec_rate", "text", "layout", "type", "color", "low_level", "per_chart_type"}
    problems = summary["input_problems"]
    assert problems["malformed_lines"] == [
        "line 30: not valid JSON (Expecting property name enclosed in double quotes)"
    ]
    assert problems["unknown_files"] == ["nonexistent_9.py"]
    assert problems["duplicates"] == ["3d_1.py"]
    assert problems["missing_response"] == ["pie_1.py"]
    assert summary["per_chart_type"]["bar"]["n"] == 4
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == 30 and all({"text", "layout", "type", "color", "exec"} <= set(i) for i in items)
    md = (out / "summary.md").read_text()
    assert "| model | Exec | Low | High |" in md and "| preds |" in md
    # resumable: a second run scores nothing new and gives the same summary
    assert (
        main(
            [
                "eval",
                "benchmark=chartmimic",
                f"data_dir={SAMPLES}",
                f"predictions={preds}",
                f"out={out}",
                f"cache_dir={cache}",
            ]
        )
        == 0
    )
    assert len((out / "items.jsonl").read_text().splitlines()) == 30
    again = json.loads((out / "summary.json").read_text())
    assert again["low_level"] == pytest.approx(summary["low_level"])


def test_eval_with_judge_responses_reports_high_level(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"file": "bar_1.py", "response": "```python\n" + (SAMPLES / "bar_1.py").read_text() + "```"}) + "\n"
    )
    judge = tmp_path / "j.jsonl"
    judge.write_text(json.dumps({"file": "bar_1.py", "response": "All good. Score: 90"}) + "\n")
    out = tmp_path / "e"
    assert (
        main(
            [
                "eval",
                "benchmark=chartmimic",
                f"data_dir={SAMPLES}",
                f"predictions={preds}",
                f"out={out}",
                f"judge_responses={judge}",
                "only_predicted=true",
                f"cache_dir={tmp_path / 'c'}",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["n"] == 1 and s["low_level"] == pytest.approx(100) and s["high_level"] == 90 and s["overall"] == 95


def test_eval_reachqa_renders_missing_reference_images(tmp_path, capsys):
    data = tmp_path / "reachqa"
    (data / "code").mkdir(parents=True)
    shutil.copy(SAMPLES / "line_1.py", data / "code" / "00001.py")
    (data / "code" / "00002.py").write_text("import matplotlib.pyplot as plt\nplt.plot(oops)\nplt.show()\n")
    (data / "plot_info.jsonl").write_text(
        json.dumps(
            {
                "id": "00001",
                "code": "code/00001.py",
                "image": "images/00001.png",
                "level": "easy",
                "major_chart_type": "line",
                "minor_chart_type": "line",
            }
        )
        + "\n"
    )
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"file": "00001.py", "response": "```python\n" + (SAMPLES / "line_1.py").read_text() + "```"}) + "\n"
    )
    out = tmp_path / "e"
    assert (
        main(
            [
                "eval",
                "benchmark=reachqa",
                f"data_dir={data}",
                f"predictions={preds}",
                f"out={out}",
                f"cache_dir={tmp_path / 'c'}",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    # The failed reference is named and counted as the benchmark counts it: in n, scoring 0.
    assert s["n"] == 2 and s["reference_failed"] == 1 and s["input_problems"]["reference_failed"] == ["00002"]
    assert s["low_level"] == pytest.approx(50)
    assert "failed to render" in capsys.readouterr().err and "00002" in s["input_problems"]["reference_failed"]
    assert (out / "reference_images" / "00001.png").exists()


def test_data_synth_writes_a_resumable_corpus(tmp_path):
    out = tmp_path / "corpus"
    assert main(["data", "synth", "n=18", f"out={out}", "seed=7", "workers=2"]) == 0
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert len(rows) == 18 and len({r["family"] for r in rows}) == 17  # every family appears
    for r in rows[:3]:
        assert (out / r["image"]).stat().st_size > 1000
        assert r["code"].startswith("import") and r["metadata"]["family"] == r["family"]
    # same seed, same corpus; a re-run resumes and writes nothing twice
    first_codes = [r["code"] for r in rows]
    (out / "index.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:10]) + "\n" + json.dumps(rows[10])[:40])
    assert main(["data", "synth", "n=18", f"out={out}", "seed=7", "workers=2"]) == 0
    again = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["code"] for r in again] == first_codes
    assert json.loads((out / "summary.json").read_text())["charts"] == 18
    r = vlrl("data", "synth", "n=5", f"out={out}", "families=bar,sankey")
    assert r.returncode == 2 and "unknown chart family sankey" in r.stderr
