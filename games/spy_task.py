"""Who-is-the-Spy self-play as a training task (Vision-Zero, docs/reference.md §7).

Each step every rank plays its share of `spy.games_per_step` games with the current policy
through the rollout engine (games.SpyGames), and hands the trainer every sampled clue and
vote with its advantage: role-advantage estimates for clues, group-normalised decision
rewards for votes. Iterative-SPO decides which phase trains; the other phase's samples carry
no gradient. The state shared by all ranks (RAE baselines, SPO EMAs) is kept identical with
one all-reduce per step and is saved in checkpoints, so a resumed run continues the schedule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config
from vlrl.options import UserError
from vlrl.profiling import PhaseTimer
from vlrl.rollout.base import RolloutEngine
from vlrl.tasks.base import StepSamples, all_reduce_sum

DEFAULT_PAIRS = "runs/spy_pairs"


def ensure_default_pairs(cfg: Config, n: int = 64) -> None:
    """The spy preset plays CLEVR-like scene pairs, generated on first use."""
    if cfg.data.train != DEFAULT_PAIRS or (Path(DEFAULT_PAIRS) / "index.jsonl").exists():
        return

    def make() -> None:
        from games.pairs import PairsOptions, run

        print(
            f"no image pairs at {DEFAULT_PAIRS}: drawing {n} scene pairs there (seed {cfg.seed}), outside "
            f"out={cfg.out} and shared by every run that keeps the default data.train; data.train=DIR uses yours",
            file=sys.stderr,
        )
        run(PairsOptions(kind="scenes", n=n, out=DEFAULT_PAIRS, seed=cfg.seed))

    dist_utils.on_main_then_wait(make)


class SpyTask:
    def __init__(self, cfg: Config) -> None:
        from games.pairs import load_pairs
        from games.play import SpyGames
        from games.settings import SpySettings

        self.settings: SpySettings = cfg.spy  # checked with the whole config (vlrl.config.check_config)
        self.cfg = cfg
        if cfg.trainer.eval_every:
            raise UserError(
                "trainer.eval_every evaluates chart-to-code on data.eval; the spy game reports "
                "its vote accuracy and N/A rate every step (spy/*), use `vlrl selfplay` for more"
            )
        ensure_default_pairs(cfg)
        if not Path(cfg.data.train).is_dir():
            raise UserError(
                f"data.train={cfg.data.train}: the spy game needs a folder of image pairs "
                f"(<base>_original.png / <base>_modified.png); make one with `vlrl data pairs`"
            )
        report = load_pairs(cfg.data.train)
        if report.skipped:
            print(f"skipped {len(report.skipped)} image pairs, e.g. {report.skipped[0]}", file=sys.stderr)
        self.world, self.rank = dist_utils.world_size(), dist_utils.rank()
        if self.settings.games_per_step % self.world:
            raise UserError(
                f"spy.games_per_step={self.settings.games_per_step} is not a multiple of the "
                f"{self.world} ranks: every rank plays the same number of games"
            )
        self.games_per_rank = self.settings.games_per_step // self.world
        self.game = SpyGames(report.pairs, self.settings, cfg.seed)

    def collect(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> StepSamples:
        from vlrl.rollout.base import SamplingParams

        cfg = self.cfg
        # one seed per (step, rank) call stream; games.play_games derives one per generate call
        params = SamplingParams(
            temperature=cfg.rollout.temperature,
            top_p=cfg.rollout.top_p,
            seed=(cfg.seed * 100_003 + step) * 1_000_003 + self.rank,
        )
        with timer.phase("generate"):  # clue turns and votes, scored as the game goes
            batch = self.game.play_step(
                rollout, params, step, self.games_per_rank, rank=self.rank, world=self.world, reduce_sum=all_reduce_sum
            )
        rollout.sleep()
        completions, request_of, advantages, keep = [], [], [], []
        for r, (group, adv, train) in enumerate(zip(batch.completions, batch.advantages, batch.trainable)):
            completions += group
            request_of += [r] * len(group)
            advantages += adv
            keep += train
        metrics: dict[str, Any] = {f"spy/{k}": v for k, v in batch.metrics.items()}
        metrics["reward/spy"] = batch.metrics["reward_spy"]
        metrics["reward/civilian"] = batch.metrics["reward_civilian"]
        metrics["reward/decision"] = batch.metrics["decision_reward_mean"]
        metrics["reward/mean"] = batch.metrics["decision_reward_mean"]

        def report(directory: Path, report_step: int) -> Path:
            return report_games(directory, report_step, batch)

        return StepSamples(
            completions=completions,
            requests=batch.requests,
            request_of=request_of,
            advantages=torch.tensor(advantages, dtype=torch.float32),
            keep=torch.tensor(keep, dtype=torch.bool),
            metrics=metrics,
            events=batch.events,
            report=report,
            max_completion_length=max(self.settings.clue_max_new_tokens, self.settings.vote_max_new_tokens),
        )

    def evaluate(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> dict[str, float]:
        """No held-out evaluation for the game: its step metrics already measure play."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return self.game.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.game.load_state_dict(state)

    def close(self) -> None:
        pass


def report_games(directory: Path, step: int, batch, games: int = 3) -> Path:
    """The step's transcripts as JSONL, and an HTML page of the first few games: the image
    civilians saw, then every turn with its parsed value and advantage."""
    from vlrl.reports import PromptView, SampleView, write_sample_report

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"step-{step:06d}.jsonl.tmp"
    tmp.write_text("".join(json.dumps(g.to_dict(), default=str) + "\n" for g in batch.transcripts), encoding="utf-8")
    tmp.replace(directory / f"step-{step:06d}.jsonl")

    advantage_of: dict[int, float] = {}
    for turns, adv in zip(batch.turns, batch.advantages):
        for turn, a in zip(turns, adv):
            advantage_of[id(turn)] = a
    views = []
    for game in batch.transcripts[:games]:
        try:
            image = game.pair.load_images()[0]
        except Exception:  # the page is a convenience: a vanished image must not stop training
            image = None
        samples = []
        for t in game.turns:
            who = "observer" if t.player == 0 else f"player {t.player} ({t.role})"
            what = f"clue, round {t.round}" if t.kind == "clue" else f"vote, sample {t.sample}"
            samples.append(
                SampleView(
                    text=t.completion,
                    png=None,
                    error=None,
                    score=float(advantage_of.get(id(t), 0.0)),
                    critique=f"{who}, {what}: parsed {t.parsed!r}",
                )
            )
        title = f"game {game.game_id}: pair {game.pair.base}, the spy is player {game.spy_seat}"
        views.append(PromptView(title, image, samples))
    return write_sample_report(directory, step, views)
