"""`vlrl selfplay`: one record per game, disjoint complete shards, resume without duplicates."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from test_spy_game import (
    ScriptedEngine,
    copying_spy_clue,
    oracle_clue,
    oracle_vote,
    random_vote,
)

from games.selfplay import SelfPlayOptions, read_done, run, shard_ids
from vlrl.cli import main
from vlrl.options import OptionError, UserError, parse_options

COLOURS = [(220, 40, 40), (40, 40, 220), (40, 180, 40), (230, 200, 40)]


@pytest.fixture
def pairs_dir(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 24), COLOURS[i]).save(folder / f"scene{i}_original.png")
        Image.new("RGB", (32, 24), COLOURS[i + 1]).save(folder / f"scene{i}_modified.png")
    (folder / "lonely_original.png").write_bytes(b"no partner, skipped by load_pairs")
    return folder


def options(pairs_dir, out, **kw):
    args = {
        "pairs": str(pairs_dir),
        "out": str(out),
        "games": 10,
        "civilians": 3,
        "rounds": 2,
        "decision_samples": 2,
        "batch_games": 3,
        "seed": 4,
        **kw,
    }
    return SelfPlayOptions(**args)


def ids_in(path):
    return [json.loads(line)["game_id"] for line in path.read_text().splitlines()]


def test_records_hold_every_turn_and_the_summary(pairs_dir, tmp_path):
    out = tmp_path / "out"
    assert run(options(pairs_dir, out), engine=ScriptedEngine(oracle_clue, oracle_vote)) == 0
    assert ids_in(out / "games.jsonl") == list(range(10))
    rows = [json.loads(line) for line in (out / "games.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["pair"].startswith("scene") and row["seed"] == 4
        assert [p["role"] for p in row["players"]].count("spy") == 1
        assert row["players"][row["spy"] - 1]["image"] == "modified"
        kinds = [t["kind"] for t in row["turns"]]
        assert kinds.count("clue") == 4 * 2 and kinds.count("vote") == 3 * 2
        assert sum(row["clue_rewards"]) == pytest.approx(0.0, abs=1e-12)
        assert row["spy_caught"] and row["votes_received"][row["spy"] - 1] == 3.0
        assert all(r == 1.0 for r in row["decision_rewards"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["games"] == 10 and summary["spy_caught_rate"] == 1.0 and summary["vote_accuracy"] == 1.0
    assert summary["na_rate"] == 0.0 and summary["invalid_votes"] == 0 and summary["reward_spy_mean"] < 0
    assert summary["clue_words_mean"] == 4.0  # "My picture is red."
    assert json.loads((out / "config.json").read_text())["civilians"] == 3


def test_shards_are_disjoint_and_complete(pairs_dir, tmp_path):
    whole = tmp_path / "whole"
    run(options(pairs_dir, whole), engine=ScriptedEngine(copying_spy_clue, random_vote))
    sharded = tmp_path / "sharded"
    for shard in range(3):
        run(
            options(pairs_dir, sharded, shard=shard, num_shards=3), engine=ScriptedEngine(copying_spy_clue, random_vote)
        )
    parts = [ids_in(sharded / f"games-{i}-of-3.jsonl") for i in range(3)]
    assert parts == [shard_ids(10, i, 3) for i in range(3)]
    assert sorted(g for part in parts for g in part) == ids_in(whole / "games.jsonl") == list(range(10))
    # a game is the same game whichever shard plays it: same pair, same spy
    plan = {r["game_id"]: (r["pair"], r["spy"]) for r in read_done(whole / "games.jsonl")[0].values()}
    for i in range(3):
        for gid, r in read_done(sharded / f"games-{i}-of-3.jsonl")[0].items():
            assert (r["pair"], r["spy"]) == plan[gid]
    assert json.loads((sharded / "summary-1-of-3.json").read_text())["games"] == 3


def test_a_killed_job_resumes_without_duplicates_or_losses(pairs_dir, tmp_path):
    out = tmp_path / "out"
    # killed during the third batch: 2 batches of 3 games are on disk
    with pytest.raises(KeyboardInterrupt):
        run(options(pairs_dir, out), engine=ScriptedEngine(fail_after=2 * 9 + 4))
    assert ids_in(out / "games.jsonl") == list(range(6))
    # ... and a torn last line, as if killed in the middle of a write
    with (out / "games.jsonl").open("a") as f:
        f.write('{"game_id": 6, "pair": "scene0", "tur')
    engine = ScriptedEngine()
    run(options(pairs_dir, out), engine=engine)
    assert ids_in(out / "games.jsonl") == list(range(10))
    assert sum(r for r, n, _ in engine.calls if n == 1) == 4 * 4 * 2  # only 4 games were played again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["games"] == 10 and summary["written_this_run"] == 4 and summary["unreadable_lines"] == 0
    # nothing left to do: a rerun writes nothing and never loads a model
    run(options(pairs_dir, out, games=10), engine=None)
    assert ids_in(out / "games.jsonl") == list(range(10))


def test_a_corrupt_middle_line_is_counted_and_its_game_replayed(pairs_dir, tmp_path):
    out = tmp_path / "out"
    run(options(pairs_dir, out, games=4), engine=ScriptedEngine())
    lines = (out / "games.jsonl").read_text().splitlines()
    lines[1] = "garbage"
    (out / "games.jsonl").write_text("\n".join(lines) + "\n")
    run(options(pairs_dir, out, games=4), engine=ScriptedEngine())
    done, bad = read_done(out / "games.jsonl")
    assert sorted(done) == [0, 1, 2, 3] and bad == 1
    assert json.loads((out / "summary.json").read_text())["unreadable_lines"] == 1


def test_resume_refuses_other_settings(pairs_dir, tmp_path):
    out = tmp_path / "out"
    run(options(pairs_dir, out, games=2), engine=ScriptedEngine())
    with pytest.raises(UserError, match="civilians=3 \\(now 4\\)"):
        run(options(pairs_dir, out, games=2, civilians=4), engine=ScriptedEngine())
    run(options(pairs_dir, out, games=3, batch_games=1), engine=ScriptedEngine())  # more games is fine
    assert ids_in(out / "games.jsonl") == [0, 1, 2]


def test_resume_refuses_a_changed_pair_folder_or_another_shard_count(pairs_dir, tmp_path):
    out = tmp_path / "out"
    run(options(pairs_dir, out, games=4), engine=ScriptedEngine())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 3 and summary["pairs_skipped"] == 1  # the lonely half
    assert summary["skipped_pairs"][0].startswith("lonely")
    # a new pair shifts which pair every remaining game id gets: refused, not mixed in
    Image.new("RGB", (32, 24), COLOURS[0]).save(pairs_dir / "scene9_original.png")
    Image.new("RGB", (32, 24), COLOURS[1]).save(pairs_dir / "scene9_modified.png")
    with pytest.raises(UserError, match="another set of pairs \\(3:.*now 4:"):
        run(options(pairs_dir, out, games=8), engine=ScriptedEngine())
    (pairs_dir / "scene9_original.png").unlink()  # the folder as it was: resuming works again
    run(options(pairs_dir, out, games=8), engine=ScriptedEngine())
    assert ids_in(out / "games.jsonl") == list(range(8))
    # files are named per shard count: a second count would play every id again
    with pytest.raises(UserError, match="num_shards=1 \\(now 2\\)"):
        run(options(pairs_dir, out, games=8, num_shards=2), engine=ScriptedEngine())


def test_a_folder_from_an_older_version_resumes_and_gains_the_new_guards(pairs_dir, tmp_path):
    out = tmp_path / "out"
    run(options(pairs_dir, out, games=2), engine=ScriptedEngine())
    config = json.loads((out / "config.json").read_text())
    old = {k: v for k, v in config.items() if k not in ("pairs_fingerprint", "num_shards")}
    (out / "config.json").write_text(json.dumps(old))  # as the previous version wrote it
    run(options(pairs_dir, out, games=3), engine=ScriptedEngine())  # accepted ...
    assert json.loads((out / "config.json").read_text()) == config  # ... and the new keys recorded
    with pytest.raises(UserError, match="num_shards=1 \\(now 2\\)"):
        run(options(pairs_dir, out, games=3, num_shards=2), engine=ScriptedEngine())


def test_a_second_job_on_the_same_shard_is_refused(pairs_dir, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with (out / "games-0-of-2.jsonl.lock").open("a") as held:  # a job already writing shard 0
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another selfplay job is writing this shard"):
            run(options(pairs_dir, out, games=4, num_shards=2), engine=ScriptedEngine())
        run(options(pairs_dir, out, games=4, shard=1, num_shards=2), engine=ScriptedEngine())  # shard 1 is free
    assert not (out / "games-0-of-2.jsonl").exists() and ids_in(out / "games-1-of-2.jsonl") == [1, 3]
    run(options(pairs_dir, out, games=4, num_shards=2), engine=ScriptedEngine())  # released: shard 0 runs
    assert ids_in(out / "games-0-of-2.jsonl") == [0, 2]


def test_options_are_checked(pairs_dir, tmp_path):
    with pytest.raises(OptionError, match="shard=2 num_shards=2"):
        options(pairs_dir, tmp_path, shard=2, num_shards=2)
    with pytest.raises(OptionError, match="games=0"):
        options(pairs_dir, tmp_path, games=0)
    o = parse_options(SelfPlayOptions, ["pairs=p", "games=3", "out=o", "decision=observer", "civilians=3"])
    assert o.settings().decision == "observer" and o.settings().players == 4
    with pytest.raises(UserError, match="no usable image pairs"):
        run(options(tmp_path, tmp_path / "o"), engine=ScriptedEngine())


def test_cli_plays_with_the_tiny_model(pairs_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "selfplay",
            "model=tiny",
            f"pairs={pairs_dir}",
            "games=2",
            f"out={out}",
            "civilians=2",
            "rounds=1",
            "decision_samples=2",
            "clue_max_new_tokens=6",
            "vote_max_new_tokens=6",
            "max_pixels=12544",
            "device=cpu",
        ]
    )
    assert code == 0
    assert ids_in(out / "games.jsonl") == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["games"] == 2 and summary["invalid_clues"] == 2 * 3  # random text never boxes a clue
    assert "2 of 2 games" in capsys.readouterr().out
    assert main(["selfplay", "--help"]) == 0 and "num_shards=" in capsys.readouterr().out
    assert main(["selfplay", f"pairs={pairs_dir}", "games=2", f"out={out}", "civilans=2"]) == 2
    assert "did you mean civilians" in capsys.readouterr().err


def test_the_tiny_model_plays_with_the_tiny_preset_and_moves_per_turn(pairs_dir, tmp_path, capsys):
    """model=tiny takes the spy task's tiny preset (what `vlrl train task=spy` plays) for
    every option the command line leaves out; a checkpoint keeps the paper's settings."""
    tiny = parse_options(SelfPlayOptions, [f"pairs={pairs_dir}", "games=4", f"out={tmp_path}", "rounds=2"])
    assert (tiny.civilians, tiny.rounds, tiny.decision_samples, tiny.clue_max_new_tokens) == (3, 2, 4, 24)
    assert tiny.max_pixels == 12544  # the tiny model's image size
    full = parse_options(SelfPlayOptions, [f"pairs={pairs_dir}", "games=4", f"out={tmp_path}", "model=/ckpt"])
    assert (full.civilians, full.decision_samples, full.clue_max_new_tokens) == (4, 8, 512)

    turns = []
    engine = ScriptedEngine()
    real = engine.generate

    def counted(requests, params, **kw):
        turns.append(len(requests))
        return real(requests, params, **kw)

    engine.generate = counted
    assert run(options(pairs_dir, tmp_path / "o", games=2, civilians=2, rounds=1), engine=engine) == 0
    err = capsys.readouterr().err
    # 3 clue turns and the votes: the bar shows each, in fractions of the batch's 2 games
    assert len(turns) == 4 and "0.5/2 games" in err and "1.0/2 games" in err and "1.5/2 games" in err


def test_a_failed_start_leaves_nothing_behind(pairs_dir, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["selfplay", f"pairs={pairs_dir}", "games=2", f"out={out}", "clue_max_new_tokens=4"]
    args += ["vote_max_new_tokens=4", "device=cpu"]
    assert main([*args, "model=/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "model path '/no/such/model' does not exist" in err and "Traceback" not in err
    assert not out.exists()  # so the corrected command is not refused
    assert main([*args, "model=tiny"]) == 0
