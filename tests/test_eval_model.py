"""`vlrl eval model=...`: generate, resume, shard, merge, judge, then score as `predictions=` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vlrl.options import UserError
from vlrl.rollout.base import Completion

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "chartmimic_samples"
CHARTS = ("bar_1", "line_1", "pie_1")


@pytest.fixture
def chartmimic(tmp_path) -> Path:
    folder = tmp_path / "chartmimic"
    folder.mkdir()
    for name in CHARTS:
        for suffix in (".py", ".png"):
            shutil.copy(SAMPLES / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


class ScriptedEngine:
    """Answers each chart with its own ground-truth script (so it renders), or a judge reply;
    counts what it was asked and can stop after some batches, as a killed job would."""

    def __init__(self, folder: Path | None = None, *, reply: str | None = None, stop_after: int | None = None):
        from PIL import Image

        self.folder, self.reply, self.stop_after = folder, reply, stop_after
        self.asked: list[str] = []
        self.calls = 0
        self.pixels = {}  # which chart a request shows, by its pixels
        for name in CHARTS if folder is not None else ():
            with Image.open(folder / f"{name}.png") as img:
                self.pixels[img.convert("RGB").tobytes()] = name

    def generate(self, requests, params, *, progress=None):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        out = []
        for request in requests:
            content = request[0]["content"]
            self.asked.append(next(c["text"] for c in content if c["type"] == "text"))
            if self.reply is not None:
                answer = self.reply
            else:
                image = next(c["image"] for c in content if c["type"] == "image")
                name = self.pixels[image.tobytes()]
                answer = "```python\n" + (self.folder / f"{name}.py").read_text() + "\n```"
            out.append([Completion(answer, [1], [0.0], "stop")])
        return out

    def sleep(self):
        pass


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def options(**kw):
    from vlrl.evaluation.chart_eval import EvalOptions

    return EvalOptions(**{"benchmark": "chartmimic", "workers": 2, **kw})


def test_chartmimic_asks_with_its_own_instruction_and_the_original_size():
    from PIL import Image

    from vlrl.evaluation.generate import CHARTMIMIC_DIRECT_MIMIC, benchmark_messages

    image = Image.new("RGB", (20, 10))
    (message,) = benchmark_messages("chartmimic", image, (7.0, 5.0))
    text, picture = message["content"]
    assert text["type"] == "text" and picture == {"type": "image", "image": image}  # instruction first
    assert "use figsize=(7.0, 5.0) to set the image size" in text["text"]
    assert text["text"] == CHARTMIMIC_DIRECT_MIMIC.format(width=7.0, height=5.0)
    (message,) = benchmark_messages("reachqa", image, (8.0, 6.0))
    assert message["content"][0]["type"] == "image" and "figsize=(8, 6)" in message["content"][1]["text"]
    (message,) = benchmark_messages("jsonl", image, None, "Draw it at {width}x{height}.")
    assert message["content"][1]["text"] == "Draw it at 6.4x4.8."


def test_the_tiny_model_generates_and_scores_offline(chartmimic, tmp_path):
    """The whole path on the real tiny model: greedy answers written as predictions, then
    items, summary and the generation settings; a second run regenerates nothing."""
    from vlrl.cli import main

    out = tmp_path / "out"
    args = ["eval", "model=tiny", "benchmark=chartmimic", f"data_dir={chartmimic}", f"out={out}"]
    args += ["rollout.max_new_tokens=8", "batch_size=2", "workers=2"]
    assert main(args) == 0
    predictions = rows(out / "predictions.jsonl")
    assert sorted(p["file"] for p in predictions) == sorted(CHARTS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and summary["exec_rate"] == 0.0  # 8 random tokens are no script
    assert summary["generation"]["temperature"] == 0.0 and summary["generation"]["max_new_tokens"] == 8
    assert len(rows(out / "items.jsonl")) == 3
    assert main(args) == 0  # resumed: nothing left to ask
    assert rows(out / "predictions.jsonl") == predictions


def test_a_killed_run_continues_without_asking_twice(chartmimic, tmp_path):
    from vlrl.evaluation.chart_eval import run

    out = tmp_path / "out"
    killed = ScriptedEngine(chartmimic, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        run(options(model="tiny", data_dir=str(chartmimic), out=str(out), batch_size=2), engine=killed)
    assert len(rows(out / "predictions.jsonl")) == 2
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"file": "pie_1", "resp')  # torn by the kill
    rest = ScriptedEngine(chartmimic)
    assert run(options(model="tiny", data_dir=str(chartmimic), out=str(out), batch_size=2), engine=rest) == 0
    assert len(rest.asked) == 1  # only the chart not yet answered
    files = [p["file"] for p in rows(out / "predictions.jsonl")]
    assert sorted(files) == sorted(CHARTS) and len(files) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exec_rate"] == 100.0 and summary["low_level"] > 95  # its own code, re-rendered


def test_shards_answer_disjoint_charts_and_merge_into_one_score(chartmimic, tmp_path):
    from vlrl.evaluation.chart_eval import run

    out = tmp_path / "out"
    common = dict(model="tiny", data_dir=str(chartmimic), out=str(out), num_shards=2)
    first = ScriptedEngine(chartmimic)
    assert run(options(**common, shard=0), engine=first) == 0
    assert not (out / "summary.json").exists()  # a shard only answers
    with pytest.raises(UserError, match=r"cannot merge yet: shard 1 \(1 of 1 charts unanswered\)"):
        run(options(**common))
    second = ScriptedEngine(chartmimic)
    assert run(options(**common, shard=1), engine=second) == 0
    assert len(first.asked) == 2 and len(second.asked) == 1
    assert run(options(**common)) == 0  # merge and score: no model is loaded
    assert sorted(p["file"] for p in rows(out / "predictions.jsonl")) == sorted(CHARTS)
    assert json.loads((out / "summary.json").read_text())["exec_rate"] == 100.0


def test_a_local_judge_adds_high_level_and_overall(chartmimic, tmp_path):
    from vlrl.evaluation.chart_eval import run

    out = tmp_path / "out"
    preds = tmp_path / "preds.jsonl"
    good = "```python\n" + (chartmimic / "bar_1.py").read_text() + "\n```"
    preds.write_text(
        json.dumps({"file": "bar_1", "response": good}) + "\n" + json.dumps({"file": "line_1", "response": "no code"})
    )
    judge = ScriptedEngine(reply="Chart Types: 20 ...\nScore: 70")
    opts = options(predictions=str(preds), data_dir=str(chartmimic), out=str(out), judge_model="tiny")
    assert run(opts, judge_engine=judge) == 0
    assert len(judge.asked) == 1  # only the answer that rendered is judged
    assert [r["file"] for r in rows(out / "judge.jsonl")] == ["bar_1"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["high_level"] == pytest.approx(70 / 3)  # judged 70 once, 0 twice, over n = 3
    assert summary["overall"] == pytest.approx((summary["low_level"] + summary["high_level"]) / 2)


def test_the_tiny_model_can_judge(chartmimic, tmp_path):
    """judge_model=tiny builds a real engine that sees both images; its random reply has no
    score, which counts 0."""
    from vlrl.evaluation.chart_eval import run

    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        json.dumps({"file": "bar_1", "response": "```python\n" + (chartmimic / "bar_1.py").read_text() + "```"})
    )
    out = tmp_path / "out"
    opts = options(predictions=str(preds), data_dir=str(chartmimic), out=str(out), judge_model="tiny")
    assert run(opts) == 0
    assert len(rows(out / "judge.jsonl")) == 1
    assert json.loads((out / "summary.json").read_text())["high_level"] == 0.0


def test_our_own_held_out_set_runs_the_same_way(tmp_path):
    from vlrl.datasets.corpus import SynthOptions
    from vlrl.datasets.corpus import run as synth
    from vlrl.evaluation.chart_eval import run

    synth(SynthOptions(n=2, out=str(tmp_path / "held_out"), seed=3))
    engine = ScriptedEngine(reply="```python\nimport matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\n```")
    out = tmp_path / "out"
    opts = options(benchmark="jsonl", model="tiny", data_dir=str(tmp_path / "held_out"), out=str(out))
    assert run(opts, engine=engine) == 0
    assert len(engine.asked) == 2 and "Use figsize=" in engine.asked[0]  # the training prompt
    assert json.loads((out / "summary.json").read_text())["exec_rate"] == 100.0


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give predictions=FILE to score, or model=PATH"),
        (["predictions=p.jsonl", "model=tiny"], "predictions= and model= exclude each other"),
        (["predictions=p.jsonl", "shard=0", "num_shards=2"], "shard= needs model="),
        (["model=tiny", "shard=2", "num_shards=2"], "shard=2 num_shards=2: need 0 <= shard < num_shards"),
        (["model=tiny", "trainer.lr=1"], "trainer.lr: only model.* and rollout.* keys"),
        (["model=tiny", "rollout.tempreature=0"], "unknown config key 'rollout.tempreature'"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(chartmimic, tmp_path, capsys, args, message):
    from vlrl.cli import main

    code = main(["eval", "benchmark=chartmimic", f"data_dir={chartmimic}", f"out={tmp_path / 'o'}", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_training_evaluates_on_the_benchmark_with_its_own_numbers(chartmimic, tmp_path):
    """data.eval=<ChartMimic folder>: the task asks with ChartMimic's instruction and logs
    eval/chartmimic/* equal to what `vlrl eval predictions=` gives for the same answers."""
    from vlrl.config import load_config
    from vlrl.evaluation.chart_eval import run
    from vlrl.profiling import PhaseTimer
    from vlrl.trainer import build_task, train

    synth = tmp_path / "train_charts"
    from vlrl.cli import main

    assert main(["data", "synth", "n=2", f"out={synth}", "seed=0", "families=bar", "workers=2"]) == 0
    common = ["model=tiny", f"data.train={synth}", f"data.eval={chartmimic}", "trainer.eval_every=1"]
    common += [f"out={tmp_path / 'run'}"]
    common += ["rollout.n=2", "data.prompts_per_step=2", "rollout.max_new_tokens=8", "trainer.steps=1"]
    cfg = load_config([*common, "trainer.tensorboard=false"])
    task = build_task(cfg)
    try:
        engine = ScriptedEngine(chartmimic)
        metrics = task.evaluate(0, engine, PhaseTimer())
    finally:
        task.close()
    assert all("figsize=(" in t and t.startswith("You are an expert Python developer") for t in engine.asked)
    assert metrics["eval/chartmimic/n"] == 3 and metrics["eval/chartmimic/exec_rate"] == 100.0

    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"file": n, "response": "```python\n" + (chartmimic / f"{n}.py").read_text() + "\n```"}) + "\n"
            for n in CHARTS
        )
    )
    assert run(options(predictions=str(preds), data_dir=str(chartmimic), out=str(tmp_path / "scored"))) == 0
    summary = json.loads((tmp_path / "scored" / "summary.json").read_text())
    for key in ("exec_rate", "low_level", "text", "layout", "type", "color"):
        assert metrics[f"eval/chartmimic/{key}"] == pytest.approx(summary[key])

    final = train(cfg)  # and in a run, with the tiny model's answers
    (row,) = rows(tmp_path / "run" / "stage1" / "metrics.jsonl")
    assert row["eval/chartmimic/n"] == 3 and row["eval/chartmimic/low_level"] == 0.0 and "eval/reward" in row

    # from the run's final weights to the benchmark's score, with nothing else to write
    args = ["eval", f"model={final}", "benchmark=chartmimic", f"data_dir={chartmimic}", f"out={tmp_path / 'ev'}"]
    assert main([*args, "rollout.max_new_tokens=8", "model.max_pixels=12544", "workers=2"]) == 0
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["n"] == 3 and summary["generation"]["model"] == str(final)


def test_held_out_layouts_are_recognised(chartmimic, tmp_path):
    from vlrl.tasks.chart_benchmark_eval import benchmark_kind, load_eval_examples

    reachqa = tmp_path / "reachqa"
    (reachqa / "code").mkdir(parents=True)
    (reachqa / "images").mkdir()
    for i, name in enumerate(("bar_1", "line_1"), start=1):
        (reachqa / "code" / f"{i:05d}.py").write_text((chartmimic / f"{name}.py").read_text())
    shutil.copy(chartmimic / "bar_1.png", reachqa / "images" / "00001.png")
    (reachqa / "plot_info.jsonl").write_text(
        json.dumps({"id": "00001", "image": "images/00001.png", "major_chart_type": "bar"})
        + "\n"
        + json.dumps({"id": "00002", "image": "images/00002.png", "major_chart_type": "line"})
        + "\n"
    )
    assert benchmark_kind(str(chartmimic)) == "chartmimic" and benchmark_kind(str(reachqa)) == "reachqa"
    report = load_eval_examples(str(reachqa))
    assert [ex.id for ex in report.examples] == ["00001"] and report.examples[0].meta["chart_type"] == "bar"
    assert report.skipped == ["00002: no image in the release"]
    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "index.jsonl").write_text("")
    assert benchmark_kind(str(synth)) == "jsonl"


def test_vllm_generates_the_answers_where_it_runs(chartmimic, tmp_path):
    """rollout.engine=vllm on a saved checkpoint (runs wherever vLLM and a GPU exist)."""
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    from vlrl.cli import main
    from vlrl.models.loading import load_model_and_processor

    model, processor = load_model_and_processor("tiny")
    model.save_pretrained(tmp_path / "tiny")
    processor.save_pretrained(tmp_path / "tiny")
    args = ["eval", f"model={tmp_path / 'tiny'}", "benchmark=chartmimic", f"data_dir={chartmimic}"]
    args += [f"out={tmp_path / 'out'}", "rollout.engine=vllm", "rollout.max_new_tokens=8"]
    assert main(args) == 0
    assert len(rows(tmp_path / "out" / "predictions.jsonl")) == 3
