"""`vlrl train task=spy` end to end on the tiny model: games -> samples -> GRPO steps."""

import itertools
import json

import pytest

from vlrl.config import load_config
from vlrl.options import UserError


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from vlrl.cli import main

    out = tmp_path_factory.mktemp("pairs")
    assert (
        main(["data", "pairs", "kind=scenes", "n=3", f"out={out}", "seed=0", "workers=1", "width=160", "height=112"])
        == 0
    )
    return out


def spy(pairs, out, *extra):
    return load_config(["task=spy", "model=tiny", f"data.train={pairs}", f"out={out}", *extra])


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_spy_training_steps_train_only_the_active_phase_and_resume(pairs, tmp_path, capsys, monkeypatch):
    import games.play
    from vlrl.trainer import train

    # A random tiny model never casts a valid vote, so every decision reward is -1 and every
    # advantage 0; score votes by a stand-in that varies within a group to see gradients flow.
    counter = itertools.count()
    monkeypatch.setattr(games.play, "decision_reward", lambda parsed, spy, settings: float(next(counter) % 3))

    # tiny preset: 2 games per step, 3 civilians + 1 spy, 1 clue round, 4 votes per decision prompt
    train(spy(pairs, tmp_path, "trainer.steps=2", "trainer.save_every=1", "trainer.log_samples_every=2"))
    stage = tmp_path / "stage1"
    metrics = rows(stage / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    first = metrics[0]
    for key in (
        "spy/vote_accuracy",
        "spy/na_rate",
        "spy/spy_caught_rate",
        "spy/acc_ema",
        "reward/spy",
        "reward/civilian",
        "reward/decision",
        "kl",
        "grad_norm",
        "time/generate",
        "time/train",
    ):
        assert key in first, key
    assert first["spy/phase"] == 0.0  # Iterative-SPO starts in the decision phase ...
    assert first["samples/kept"] == 2 * 3 * 4  # ... where only the votes get gradient, not the 2 x 4 clues
    assert first["grad_norm"] > 0
    # the transcripts and a readable page for the reported step
    games = rows(stage / "samples" / "step-000002.jsonl")
    assert len(games) == 2 and all(len(g["turns"]) == 4 + 3 * 4 for g in games)
    assert "the spy is player" in (stage / "samples" / "step-000002.html").read_text()
    # the schedule's state lives in the checkpoint and a longer run picks it up
    latest = json.loads((stage / "checkpoints" / "latest.json").read_text())
    assert latest["task"]["baselines"]["games"] == 4 and latest["task"]["scheduler"]["steps_in_phase"] == 2
    train(spy(pairs, tmp_path, "trainer.steps=3", "trainer.save_every=1"))
    assert "resuming stage 1 from step 2" in capsys.readouterr().err
    assert [m["step"] for m in rows(stage / "metrics.jsonl")] == [1, 2, 3]
    latest = json.loads((stage / "checkpoints" / "latest.json").read_text())
    assert latest["task"]["baselines"]["games"] == 6 and latest["task"]["scheduler"]["steps_in_phase"] == 3


def test_released_schedule_trains_both_phases(pairs, tmp_path):
    from vlrl.trainer import train

    train(spy(pairs, tmp_path, "trainer.steps=1", "spy.schedule=alternate_both", "spy.decision=observer"))
    first = rows(tmp_path / "stage1" / "metrics.jsonl")[0]
    assert first["samples/kept"] == 2 * 4 + 2 * 1 * 4  # every clue and every observer vote


def test_bad_spy_settings_and_data_are_named(pairs, tmp_path):
    from vlrl.trainer import build_task

    with pytest.raises(UserError, match="civilians"):
        build_task(spy(pairs, tmp_path, "spy.civilians=1"))
    with pytest.raises(UserError, match="vlrl data pairs"):
        build_task(spy(tmp_path / "nowhere", tmp_path))


def test_games_per_step_must_split_evenly_over_ranks(pairs, tmp_path, monkeypatch):
    from vlrl import distributed as dist_utils
    from vlrl.trainer import build_task

    monkeypatch.setattr(dist_utils, "world_size", lambda: 3)
    with pytest.raises(UserError, match="games_per_step=2 is not a multiple of the 3 ranks"):
        build_task(spy(pairs, tmp_path))
    monkeypatch.setattr(dist_utils, "world_size", lambda: 2)
    assert build_task(spy(pairs, tmp_path)).games_per_rank == 1
