"""The first run a user makes: starter charts, the warm start, and the line that says what the
run showed. The bare `vlrl train` itself (minutes) is `slow`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlrl.cli import main
from vlrl.config import load_config
from vlrl.datasets.starter import STARTER_FAMILIES, starter_charts
from vlrl.metrics_log import reward_trend

ROOT = Path(__file__).resolve().parent.parent


def test_starter_charts_are_deterministic_short_and_cover_every_family():
    from transformers import AutoTokenizer

    from vlrl.models.tiny import tiny_tokenizer_dir

    a, b = starter_charts(50, seed=3), starter_charts(50, seed=3)
    assert [c.to_code() for c in a] == [c.to_code() for c in b]
    assert [c.to_code() for c in a] != [c.to_code() for c in starter_charts(50, seed=4)]
    assert {c.family for c in a[:5]} == set(STARTER_FAMILIES)
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    lengths = [len(tokenizer(c.to_code()).input_ids) for c in a]
    assert max(lengths) <= 64, max(lengths)  # what a 2M-parameter model learns in a minute of SFT
    assert [c.family for c in starter_charts(4, 0, ["pie", "line"])] == ["pie", "line", "pie", "line"]
    with pytest.raises(ValueError, match="unknown starter family radar"):
        starter_charts(2, 0, ["radar"])


def test_starter_corpus_renders_what_its_code_says(tmp_path):
    from renderers import RenderPool

    out = tmp_path / "starter"
    assert main(["data", "synth", "style=starter", "n=10", f"out={out}", "seed=5", "workers=2"]) == 0
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and {r["family"] for r in rows} == set(STARTER_FAMILIES)
    assert all(r["id"].startswith("starter-s5-") and (out / r["image"]).exists() for r in rows)
    calls = {"bar": "bar", "barh": "barh", "line": "plot", "scatter": "scatter", "pie": "pie"}
    with RenderPool(workers=2, timeout=20) as pool:
        results = pool.render_many([r["code"] for r in rows])
    for row, result in zip(rows, results):
        assert result.ok, (row["code"], result.error)
        assert f"plt.{calls[row['family']]}(" in row["code"]
        assert row["metadata"]["title"] in json.dumps(result.trace)  # the title it drew
    # a starter family name is refused for the realistic style, and the reverse
    assert main(["data", "synth", "style=starter", "n=2", f"out={tmp_path / 'x'}", "families=radar"]) == 2
    assert main(["data", "synth", "n=2", f"out={tmp_path / 'y'}", "families=scatter,bogus"]) == 2


def _metrics(path: Path, rewards: list[float], exec_rates: list[float] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "metrics.jsonl").open("w") as fh:
        for i, r in enumerate(rewards):
            row = {"step": i + 1, "reward/mean": r}
            if exec_rates is not None:
                row["exec_rate"] = exec_rates[i]
            fh.write(json.dumps(row) + "\n")
    return path / "metrics.jsonl"


def test_the_trend_line_compares_the_first_and_last_steps(tmp_path):
    # 12 steps: the first 4 and the last 4 are compared
    rising = _metrics(tmp_path / "a", [0.1, 0.1, 0.2, 0.2] + [0.3] * 4 + [0.4] * 4, [0.0, 0.25, 0.25, 0.5] + [1.0] * 8)
    line = reward_trend(rising)
    assert "rose, 0.150 (steps 1-4) -> 0.400 (steps 9-12)" in line and "exec rate 25% -> 100%" in line
    assert str(tmp_path / "a" / "rewards.png") in line
    assert "fell, 0.500 (step 1) -> 0.100 (step 3)" in reward_trend(_metrics(tmp_path / "b", [0.5, 0.3, 0.1]))
    flat_zero = reward_trend(_metrics(tmp_path / "c", [0.0] * 6))
    assert "stayed flat" in flat_zero and "model=tiny-learn" in flat_zero  # why, and what to do
    flat_high = reward_trend(_metrics(tmp_path / "d", [0.5, 0.51, 0.5, 0.49, 0.5, 0.5]))
    assert "stayed flat" in flat_high and "tiny-learn" not in flat_high
    assert "too few" in reward_trend(_metrics(tmp_path / "e", [0.3]))


def test_a_warm_start_runs_sft_once_before_stage_1(tmp_path, capsys):
    from vlrl.trainer import needs_warm_start, train

    corpus = tmp_path / "charts"
    assert main(["data", "synth", "style=starter", "n=4", f"out={corpus}", "seed=0", "workers=2"]) == 0
    args = ["model=tiny", f"data.train={corpus}", f"out={tmp_path / 'run'}", "sft.warm_start=true"]
    args += ["sft.epochs=1", "sft.batch_size=2", "rollout.n=2", "data.prompts_per_step=2"]
    args += ["rollout.max_new_tokens=8", "trainer.steps=1", "trainer.tensorboard=false"]
    cfg = load_config(args)
    assert needs_warm_start(cfg)
    assert not needs_warm_start(load_config([*args, "init_from=/some/weights"]))
    assert not needs_warm_start(load_config([*args, "stage=2"]))
    train(cfg)
    err = capsys.readouterr().err
    assert "warm start:" in err and "stage 1 starts from the SFT weights" in err
    sft_metrics = tmp_path / "run" / "sft" / "metrics.jsonl"
    assert len(sft_metrics.read_text().splitlines()) == 2  # 4 charts, batches of 2
    assert (tmp_path / "run" / "stage1" / "final" / "config.json").exists()
    assert not needs_warm_start(cfg)  # its weights exist now: a second run starts RL from them
    shutil.rmtree(tmp_path / "run" / "sft" / "final")
    assert not needs_warm_start(cfg)  # stage 1 resumes from its own checkpoint
    assert needs_warm_start(load_config([*args, "trainer.resume=never"]))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_bare_train_in_a_fresh_folder_shows_a_rising_reward(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run(
        [sys.executable, "-m", "vlrl.cli", "train"],
        cwd=tmp_path,  # the default folders (runs/starter, runs/chart2code) are relative
        env={**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},  # as the README's figures
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "what this run shows: the mean reward rose" in done.stdout, done.stdout[-2000:]
    assert (tmp_path / "runs" / "chart2code" / "stage1" / "rewards.png").exists()
    rows = [json.loads(line) for line in (tmp_path / "runs/chart2code/stage1/metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[-1]["exec_rate"] > rows[0]["exec_rate"]
