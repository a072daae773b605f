"""Two ranks (torchrun, gloo, CPU) train exactly like one process on the same global batch."""

import json
import os
import subprocess
import sys

import pytest
from conftest import LENGTH_REWARD_PLUGIN as PLUGIN
from conftest import ROOT

RANK_PLUGIN = ROOT / "tests" / "plugins" / "rank_reward.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from vlrl.cli import main

    out = tmp_path_factory.mktemp("corpus")
    assert main(["data", "synth", "n=8", f"out={out}", "seed=1", "families=bar,line", "workers=2"]) == 0
    return out


def run(args, *, ranks: int):
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m"]
        if ranks > 1
        else [sys.executable, "-m"]
    )
    # A world set up earlier in this pytest process (test_train) left its rendezvous variables
    # in os.environ; each run here must form its own world.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    r = subprocess.run(
        launcher + ["vlrl.cli", "train", *args], capture_output=True, text=True, cwd=ROOT, timeout=600, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


# zero2 also runs the KL term (a reference model, so the loss is not ~0) and batch-scaled
# advantages (the std of the global batch, gathered across ranks)
@pytest.mark.parametrize("zero, extra", [("zero2", ["algo.beta=0.04", "algo.advantage=batch"]), ("zero3", [])])
def test_two_ranks_match_one_process(corpus, tmp_path, zero, extra):
    common = [
        "model=tiny",
        f"data.train={corpus}",
        "rollout.n=2",
        "data.prompts_per_step=4",
        "rollout.chunk_prompts=2",
        "rollout.max_new_tokens=12",
        f"reward.plugins={PLUGIN}",
        "reward.weights={test_length: 1.0}",
        "trainer.steps=2",
        "trainer.lr=0.01",
        "trainer.warmup_ratio=0",
        "trainer.tensorboard=false",
        *extra,
    ]
    run(common + [f"out={tmp_path / 'one'}", "deepspeed=zero0"], ranks=1)
    two = run(common + [f"out={tmp_path / 'two'}", f"deepspeed={zero}"], ranks=2)
    a = weights(tmp_path / "one" / "stage1" / "final")
    b = weights(tmp_path / "two" / "stage1" / "final")

    from vlrl.models.tiny import build_tiny_model

    initial = build_tiny_model("qwen2_vl", seed=0)[0].state_dict()
    moved = max(float((a[k] - initial[k]).abs().max()) for k in a if k in initial)
    assert moved > 0.005  # two Adam steps at lr 0.01 really changed the weights
    # float reductions run in another order across ranks: equal up to a small fraction of the move
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 0.01 * moved, (worst, moved)
    # rank 0 alone writes logs and checkpoints
    lines = (tmp_path / "two" / "stage1" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert two.stdout.count("step=1 ") == 1
    # ... and its metrics describe the whole global batch, not its own shard
    one_rows = [json.loads(x) for x in (tmp_path / "one" / "stage1" / "metrics.jsonl").read_text().splitlines()]
    two_rows = [json.loads(x) for x in lines]
    for r1, r2 in zip(one_rows, two_rows):
        assert r2["samples/kept"] == r1["samples/kept"] == 8
        assert r2["reward/mean"] == pytest.approx(r1["reward/mean"], abs=1e-6)
        assert r2["completion_length/mean"] == pytest.approx(r1["completion_length/mean"])
        assert r2["reward/std"] == pytest.approx(r1["reward/std"], abs=1e-6)  # over the global batch
        assert r2["train_tokens"] == r1["train_tokens"]
        for key in ("loss", "kl", "entropy", "advantages/max"):  # the same objective, not W times it
            if key in r1:
                assert r2[key] == pytest.approx(r1[key], rel=1e-3, abs=1e-6), key
    if extra:
        assert abs(one_rows[-1]["loss"]) > 1e-6 and one_rows[-1]["kl"] > 0  # the checks above had teeth


def test_ranks_run_the_same_rollout_rounds_and_a_rank_that_keeps_nothing_still_trains(corpus, tmp_path):
    """Dynamic sampling under ZeRO-3, where every generate call gathers the weights: rank 0's
    rewards are flat (it never fills its groups), rank 1's vary. Both ranks must run the same
    number of rounds, and rank 0 (nothing kept) must still join every forward and backward."""
    args = [
        "model=tiny",
        f"data.train={corpus}",
        "rollout.n=2",
        "data.prompts_per_step=4",
        "rollout.chunk_prompts=2",
        "rollout.max_new_tokens=8",
        f"reward.plugins={RANK_PLUGIN}",
        "reward.weights={test_rank: 1.0}",
        "algo.dynamic_sampling=true",
        "algo.max_refill_rounds=3",
        "trainer.steps=1",
        "trainer.tensorboard=false",
        f"out={tmp_path / 'two'}",
        "deepspeed=zero3",
    ]
    run(args, ranks=2)
    (row,) = [json.loads(x) for x in (tmp_path / "two" / "stage1" / "metrics.jsonl").read_text().splitlines()]
    assert row["rollout_rounds"] == 3  # rank 1 had its groups after one round, yet ran rank 0's three
    assert row["samples/kept"] == 2 * 2  # rank 1's first two groups; rank 0 kept none
    assert row["grad_norm"] > 0
    # rank 0 trained no token: the token means come from rank 1 alone, and are still logged
    assert row["train_tokens"] > 0 and row["entropy"] > 0 and "clip/total" in row


def test_two_ranks_play_the_spy_game_with_one_shared_schedule(tmp_path):
    """Each rank plays half the games; the RAE baselines and SPO EMAs, updated from every
    rank's games, end where one process playing all the games ends."""
    from vlrl.cli import main

    pairs = tmp_path / "pairs"
    assert main(["data", "pairs", "kind=scenes", "n=2", f"out={pairs}", "workers=1", "width=128", "height=96"]) == 0
    common = [
        "task=spy",
        f"data.train={pairs}",
        "spy.games_per_step=2",
        "spy.decision_samples=2",
        "spy.clue_max_new_tokens=8",
        "spy.vote_max_new_tokens=4",
        "trainer.steps=2",
        "trainer.tensorboard=false",
        "algo.beta=0",
    ]
    run(common + [f"out={tmp_path / 'one'}", "deepspeed=zero0"], ranks=1)
    run(common + [f"out={tmp_path / 'two'}", "deepspeed=zero2"], ranks=2)
    one = json.loads((tmp_path / "one" / "stage1" / "checkpoints" / "latest.json").read_text())["task"]
    two = json.loads((tmp_path / "two" / "stage1" / "checkpoints" / "latest.json").read_text())["task"]
    assert two["baselines"]["games"] == one["baselines"]["games"] == 4
    # a random tiny model casts no valid vote: the outcome is fixed, so the states agree exactly
    assert two == one
    rows = [json.loads(x) for x in (tmp_path / "two" / "stage1" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["spy/games"] == 2
