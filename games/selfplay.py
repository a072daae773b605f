"""`vlrl selfplay`: play Who-is-the-Spy games with a model and keep every turn as data.

    vlrl selfplay model=PATH|tiny pairs=DIR games=N out=DIR [shard=I num_shards=K] [seed=S] [game settings ...]

Game ids are global indices 0..N-1; shard I plays the ids with id % K == I, so shards are
disjoint and together complete. Game id g's image pair and spy seat are pure functions of
(seed, g) (`games.engine.game_plan`), whatever the shard or batch.

Layout of OUT (one file set per shard; K = 1 drops the suffix):
    games[-I-of-K].jsonl     one record per game: id, pair, players with roles and images,
                             every turn (prompt, completion, parsed value, tokens), votes
                             received, clue rewards, decision rewards
    summary[-I-of-K].json    spy caught rate, vote accuracy, N/A rate, invalid outputs, mean
                             clue length, mean reward per role, ...
    config.json              the settings the games were played with, and which pairs (checked
                             on resume and by sibling shards)
    games[-I-of-K].jsonl.lock  held while a job writes the shard: a second job on it is refused

Records are appended and fsync'd game by game. A killed job resumes: the file is read
leniently (a torn last line is dropped, a corrupt line is counted), finished ids are
skipped, so every game is written exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from games.engine import CIVILIAN, CLUE, SPY, Game, game_plan, new_game, play_games
from games.rewards import score_game
from games.settings import SpySettings
from vlrl.data_order import shard_suffix
from vlrl.jsonl import JsonlWriter, iter_jsonl_lenient, write_json_atomic
from vlrl.options import OptionError, UserError, option
from vlrl.rollout.base import RolloutEngine, SamplingParams


@dataclass(kw_only=True)
class SelfPlayOptions(SpySettings):
    model: str = option("tiny", help="local checkpoint directory, or tiny / tiny-qwen2_5_vl")
    pairs: str = option(help="folder of <base>_original.png / <base>_modified.png pairs (vlrl data pairs)")
    games: int = option(minimum=1, help="games in the whole job (ids 0..games-1, across all shards)")
    out: str = option(help="output folder")
    shard: int = option(0, help="this job plays the ids with id % num_shards == shard")
    num_shards: int = option(1, help="number of disjoint shards the ids are split into")
    seed: int = option(
        0, help="each game's pair and spy seat follow from (seed, game id); sampling from the seed and the batch"
    )
    batch_games: int = option(8, minimum=1, help="games played together (each turn is one generate call over them)")
    temperature: float = option(1.0, help="sampling temperature")
    top_p: float = option(1.0, help="nucleus sampling")
    engine: Literal["hf", "vllm"] = option(
        "hf", help="hf = transformers generate; vllm = vLLM (GPU, checkpoint paths only)"
    )
    device: str = option("auto", help="auto = cuda when available, else cpu (engine=hf)")
    dtype: Literal["auto", "float32", "bfloat16"] = option("auto", help="auto = bfloat16 on GPU, float32 on CPU")
    min_pixels: int = option(3136, help="smallest image area after the processor's resize (pixels)")
    max_pixels: int = option(401408, help="largest image area after the processor's resize (pixels)")
    prompts: bool = option(True, help="write each turn's prompt text into the records (false: smaller files)")

    @classmethod
    def preset_values(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults for options the command line leaves out: with a tiny model, the spy task's
        own tiny preset (short turns, few votes: what `vlrl train task=spy` plays) and the
        tiny model's image sizes, so a first `vlrl selfplay model=tiny` takes about a minute."""
        if not str(given.get("model", "tiny")).startswith("tiny"):
            return {}
        from vlrl.config import load_config

        cfg = load_config(["task=spy", "model=tiny"])  # the presets as `vlrl train task=spy` applies them
        return {**dataclasses.asdict(cfg.spy), "min_pixels": cfg.model.min_pixels, "max_pixels": cfg.model.max_pixels}

    def validate(self) -> None:
        super().validate()
        if self.num_shards < 1 or not 0 <= self.shard < self.num_shards:
            raise OptionError(f"shard={self.shard} num_shards={self.num_shards}: need 0 <= shard < num_shards")

    def settings(self) -> SpySettings:
        return SpySettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SpySettings)})


# Options that do not change what a game is: a resumed or sibling job may differ in them.
# num_shards is not free: files are named per K, so a second K would replay every id.
_FREE = {"games", "out", "shard", "batch_games", "engine", "device", "dtype", "prompts", "games_per_step"}


def shard_ids(games: int, shard: int, num_shards: int) -> list[int]:
    return [g for g in range(games) if g % num_shards == shard]


def read_done(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """Finished games by id (first record wins) and the number of unreadable lines."""
    done: dict[int, dict[str, Any]] = {}
    bad = 0
    if not path.exists():
        return done, bad
    for _, row, problem in iter_jsonl_lenient(path):
        if problem is not None or not isinstance(row.get("game_id"), int):
            bad += 1
            continue
        done.setdefault(row["game_id"], row)
    return done, bad


@contextlib.contextmanager
def shard_lock(games_path: Path):
    """Exclusive hold on one shard's output while a job writes it: a second job on the same
    shard would repair the first one's half-written line away and play its games again."""
    import fcntl

    lock_path = games_path.with_name(games_path.name + ".lock")
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{games_path}: another selfplay job is writing this shard; wait for it "
                f"or give this one another shard= or out="
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _check_config(out: Path, opts: SelfPlayOptions, pairs_fingerprint: str) -> None:
    """Games in OUT must all come from the same settings and the same list of pairs (game
    ids map to pairs by position), whichever shard or run wrote them."""
    import json
    import os

    mine = {k: v for k, v in dataclasses.asdict(opts).items() if k not in _FREE}
    mine["pairs_fingerprint"] = pairs_fingerprint
    path = out / "config.json"
    if not path.exists():
        # created exclusively: of two shards starting at once on a fresh out=, one writes the
        # settings and the other is checked against them
        tmp = out / f"config.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(mine, indent=1), encoding="utf-8")
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        theirs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); remove it or use another out=") from None
    differ = sorted(k for k in mine if k in theirs and theirs[k] != mine[k])
    if "pairs_fingerprint" in differ:
        raise UserError(
            f"{out} holds games played on another set of pairs "
            f"({theirs['pairs_fingerprint']}, now {pairs_fingerprint}: count:hash of the "
            f"usable pair names); {opts.pairs} changed since, or some pairs became "
            f"unreadable. Restore it or use another out="
        )
    if differ:
        pairs = ", ".join(f"{k}={theirs[k]} (now {mine[k]})" for k in differ)
        raise UserError(f"{out} holds games played with {pairs}; use the same settings or another out=")
    missing = [k for k in mine if k not in theirs]  # written by an older vlrl: record them from now on
    if missing:
        write_json_atomic(path, {**theirs, **{k: mine[k] for k in missing}})


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate figures over game records."""
    n = caught = votes = correct = abstain = invalid_votes = 0
    clues = invalid_clues = clue_tokens = clue_words = 0
    spy_reward = civ_reward = decision = 0.0
    for r in records:
        n += 1
        caught += bool(r.get("spy_caught"))
        spy = r["spy"]
        for t in r["turns"]:
            if t["kind"] == CLUE:
                clues += 1
                clue_tokens += t["tokens"]
                if t["valid"]:
                    clue_words += len(str(t["parsed"]).split())
                else:
                    invalid_clues += 1
            else:
                votes += 1
                correct += t["parsed"] == spy
                abstain += t["parsed"] == "N/A"
                invalid_votes += not t["valid"]
        roles = r.get("role_rewards", {})
        spy_reward += roles.get(SPY, 0.0)
        civ_reward += roles.get(CIVILIAN, 0.0)
        decision += sum(r.get("decision_rewards", []))

    def ratio(a: float, b: float) -> float:
        return round(a / b, 6) if b else 0.0

    return {
        "games": n,
        "spy_caught_rate": ratio(caught, n),
        "vote_accuracy": ratio(correct, votes),
        "na_rate": ratio(abstain, votes),
        "invalid_vote_rate": ratio(invalid_votes, votes),
        "invalid_votes": invalid_votes,
        "invalid_clue_rate": ratio(invalid_clues, clues),
        "invalid_clues": invalid_clues,
        "clue_tokens_mean": ratio(clue_tokens, clues),
        "clue_words_mean": ratio(clue_words, clues - invalid_clues),
        "reward_spy_mean": ratio(spy_reward, n),
        "reward_civilian_mean": ratio(civ_reward, n),
        "decision_reward_mean": ratio(decision, votes),
    }


def game_record(game: Game, seed: int, prompts: bool) -> dict[str, Any]:
    row = game.to_dict()
    row["seed"] = seed
    if not prompts:
        for t in row["turns"]:
            t["prompt"] = None
    return row


def load_engine(opts: SelfPlayOptions) -> RolloutEngine:
    """The players' engine, built as training builds one (vlrl.rollout.build), from the
    model and rollout settings these options carry; vLLM gets most of the GPU (no trainer
    shares it) and one image per prompt."""
    from vlrl.config import ModelConfig, RolloutConfig
    from vlrl.rollout.build import build_rollout_engine

    model = ModelConfig(path=opts.model, dtype=opts.dtype, min_pixels=opts.min_pixels, max_pixels=opts.max_pixels)
    rollout = RolloutConfig(
        engine=opts.engine,
        temperature=opts.temperature,
        top_p=opts.top_p,
        vllm_gpu_memory_utilization=0.85,
        vllm_sleep=False,
    )
    return build_rollout_engine(
        model,
        rollout,
        seed=opts.seed,
        device=opts.device,
        max_batch_requests=max(16, opts.batch_games),
        max_images_per_prompt=1,
    )


def run(opts: SelfPlayOptions, *, engine: Any = None) -> int:
    """The job; `engine` replaces the model named by opts (tests pass scripted players)."""
    from games.pairs import load_pairs

    settings = opts.settings()
    report = load_pairs(opts.pairs)
    if not report.pairs:
        raise UserError(f"{opts.pairs}: no usable image pairs ({report.summary()})")
    if report.skipped:
        print(f"pairs: {report.summary()}", file=sys.stderr)

    out = Path(opts.out)
    suffix = shard_suffix(opts.shard, opts.num_shards)
    games_path, summary_path = out / f"games{suffix}.jsonl", out / f"summary{suffix}.json"
    # Everything that can be refused is checked before the first byte is written, so a
    # failed start never leaves a folder that refuses the next, corrected, command.
    if (out / "config.json").exists():
        _check_config(out, opts, report.fingerprint())
    done, _ = read_done(games_path)
    if engine is None and any(g not in done for g in shard_ids(opts.games, opts.shard, opts.num_shards)):
        engine = load_engine(opts)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, opts, report.fingerprint())

    with shard_lock(games_path):
        return _play_shard(opts, engine, settings, report, games_path, summary_path, suffix)


def _play_shard(
    opts: SelfPlayOptions,
    engine: Any,
    settings: SpySettings,
    report: Any,
    games_path: Path,
    summary_path: Path,
    suffix: str,
) -> int:
    from tqdm import tqdm

    ids = shard_ids(opts.games, opts.shard, opts.num_shards)
    writer = JsonlWriter(games_path)  # drops a torn last line left by a killed run
    done, corrupt = read_done(games_path)
    todo = [g for g in ids if g not in done]
    if done or corrupt:
        print(
            f"resuming: {len(done)} games already written, {len(todo)} to go"
            + (f"; {corrupt} unreadable lines ignored" if corrupt else ""),
            file=sys.stderr,
        )

    skipped: list[str] = []
    written = 0
    try:
        bar = tqdm(
            total=len(ids),
            initial=len(ids) - len(todo),
            desc=f"selfplay{suffix}",
            unit="game",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.1f}/{total} games [{elapsed}<{remaining}]",
            mininterval=0,  # a turn is seconds of decoding: show every one
        )
        for start in range(0, len(todo), opts.batch_games):
            batch: list[Game] = []
            for gid in todo[start : start + opts.batch_games]:
                index, spy = game_plan(len(report.pairs), settings.players, opts.seed, gid)
                pair = report.pairs[index]
                try:
                    batch.append(new_game(gid, pair, spy, settings))
                except (OSError, ValueError) as exc:
                    skipped.append(f"game {gid}: pair {pair.base}: {exc}")
                    bar.update(1)
            params = SamplingParams(
                temperature=opts.temperature,
                top_p=opts.top_p,
                seed=opts.seed * 1_000_003 + (batch[0].game_id if batch else 0),
            )
            # the bar moves each turn (a generate call over the batch), in fractions of a game
            turns = settings.rounds * settings.players + 1
            start_n = bar.n

            def one_turn(size: int = len(batch)) -> None:
                bar.update(size / turns)

            play_games(engine, batch, params, on_turn=one_turn)
            for game in batch:
                game.drop_images()
                score_game(game)
                writer.write(game_record(game, opts.seed, opts.prompts))
                written += 1
            bar.update(start_n + len(batch) - bar.n)  # whole games again, whatever the rounding
        bar.close()
    finally:
        writer.close()

    records, corrupt = read_done(games_path)
    mine = [records[g] for g in ids if g in records]
    summary = {
        **summarise(mine),
        "shard": opts.shard,
        "num_shards": opts.num_shards,
        "ids": len(ids),
        "written_this_run": written,
        "skipped": len(skipped),
        "skipped_games": skipped[:50],
        "unreadable_lines": corrupt,
        "pairs": len(report.pairs),
        "pairs_skipped": len(report.skipped),
        "skipped_pairs": report.skipped[:50],
        "options": dataclasses.asdict(opts),
    }
    write_json_atomic(summary_path, summary)
    print(
        f"{summary['games']} of {len(ids)} games in {games_path}: spy caught {summary['spy_caught_rate']:.1%}, "
        f"vote accuracy {summary['vote_accuracy']:.1%}, N/A {summary['na_rate']:.1%}, invalid votes "
        f"{summary['invalid_votes']}, invalid clues {summary['invalid_clues']}, clue length "
        f"{summary['clue_tokens_mean']:.1f} tokens, mean reward spy {summary['reward_spy_mean']:+.3f} / civilian "
        f"{summary['reward_civilian_mean']:+.3f}"
        + (f"; {len(skipped)} games skipped (unreadable pairs)" if skipped else "")
    )
    return 0
