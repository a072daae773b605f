"""The spy game as a training task: one call plays a step's games and returns scored samples.

Per step, on each rank: play `games` games (clue turns batched across games, then every
decision prompt in one generate call), score them, keep the state shared by all ranks
identical (RAE baselines, SPO EMAs) with one all-reduce, and hand back every sampled prompt
with its completions, advantages and whether each gets gradient this step.

Game g of the step on rank r has the global counter step * games * world + r * games + i; its
image pair and spy seat are pure functions of (seed, counter) (`games.engine.game_plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from games.engine import (
    CIVILIAN,
    CLUE,
    SPY,
    Game,
    Turn,
    game_plan,
    new_game,
    play_games,
)
from games.pairs import pairs_fingerprint
from games.rewards import (
    RoleBaselines,
    decision_reward,
    format_bonus,
    group_normalise,
    score_game,
)
from games.schedule import CLUE as CLUE_PHASE
from games.schedule import DECISION, PhaseScheduler
from games.settings import SpySettings
from vlrl.options import UserError
from vlrl.rollout.base import Completion, Request, SamplingParams

ReduceSum = Callable[[list[float]], list[float]]


@dataclass
class SpyBatch:
    requests: list[Request]  # every prompt that was sampled (clue turns, then decision prompts)
    completions: list[list[Completion]]  # per request, its samples (1 per clue turn, G per decision prompt)
    advantages: list[list[float]]  # per request, per sample
    trainable: list[list[bool]]  # per request, per sample: in a phase that gets gradient this step
    phase: str  # the phase trained this step: "decision" or "clue"
    metrics: dict[str, float] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    transcripts: list[Game] = field(default_factory=list)  # one per game; .to_dict() is JSON-ready
    kinds: list[str] = field(default_factory=list)  # per request: "clue" or "vote"
    game_of: list[int] = field(default_factory=list)  # per request: its game's index in transcripts
    turns: list[list[Turn]] = field(default_factory=list)  # per request, per sample: its transcript turn


# Step totals summed over ranks, in this order (metrics are ratios of them).
_SUMS = (
    "votes",
    "correct",
    "abstain",
    "invalid_votes",
    "vote_tokens",
    "clues",
    "invalid_clues",
    "clue_tokens",
    "clue_words",
    "games",
    "caught",
    "spy_reward",
    "civilian_reward",
    "decision_reward",
)


def _identity(values: list[float]) -> list[float]:
    return list(values)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


class SpyGames:
    def __init__(self, pairs: Sequence[Any], settings: SpySettings, seed: int) -> None:
        if not pairs:
            raise UserError("the spy game needs at least one image pair (<base>_original.png / <base>_modified.png)")
        self.pairs = list(pairs)
        self.settings = settings
        self.seed = seed
        self.scheduler = PhaseScheduler(settings)
        self.baselines = RoleBaselines(settings.rae_alpha)

    # ------------------------------------------------------------ set-up

    def setup_game(self, counter: int, events: list[str]) -> Game:
        """The game with this global counter; a pair whose images fail to load is skipped
        (named in events) for the next one in the shuffled order."""
        index, spy = game_plan(len(self.pairs), self.settings.players, self.seed, counter)
        for attempt in range(len(self.pairs)):
            pair = self.pairs[(index + attempt) % len(self.pairs)]
            try:
                return new_game(counter, pair, spy, self.settings)
            except (OSError, ValueError) as exc:
                events.append(f"pair {getattr(pair, 'base', pair)} skipped: {exc}")
        raise UserError(f"none of the {len(self.pairs)} image pairs could be loaded")

    # ------------------------------------------------------------ one step

    def play_step(
        self,
        engine: Any,
        params: SamplingParams,
        step: int,
        games: int,
        *,
        rank: int = 0,
        world: int = 1,
        reduce_sum: ReduceSum | None = None,
    ) -> SpyBatch:
        if games < 1:
            raise ValueError(f"games={games}: a step plays at least one game per rank")
        reduce_sum = reduce_sum or _identity
        s = self.settings
        phase = self.scheduler.phase
        train_clue = self.scheduler.trains(CLUE_PHASE)
        train_vote = self.scheduler.trains(DECISION)

        events: list[str] = []
        first = step * games * world + rank * games
        played = [self.setup_game(first + i, events) for i in range(games)]
        sampled = play_games(engine, played, params)
        for g in played:
            g.drop_images()  # the requests keep what training needs
        scores = [score_game(g) for g in played]

        # One all-reduce: each rank writes its games' role rewards into its own slots of a
        # zero vector of global length, plus its step totals.
        n_global = games * world
        slots = [0.0] * (2 * n_global)
        for i, sc in enumerate(scores):
            j = rank * games + i
            slots[2 * j], slots[2 * j + 1] = sc.spy_reward, sc.civilian_reward
        local = self._totals(played, scores)
        reduced = reduce_sum(slots + [local[k] for k in _SUMS])
        if len(reduced) != len(slots) + len(_SUMS):
            raise RuntimeError(f"reduce_sum returned {len(reduced)} values for {len(slots) + len(_SUMS)}")
        totals = dict(zip(_SUMS, reduced[2 * n_global :]))

        # RAE: update game by game in global order; each game uses the baselines right after
        # its own update (games.rewards).
        after = [self.baselines.update(reduced[2 * j], reduced[2 * j + 1]) for j in range(n_global)]
        mine = after[rank * games : (rank + 1) * games]
        for g, sc, b in zip(played, scores, mine):
            g.outcome["baselines"] = dict(b)
            g.outcome["clue_advantages"] = [sc.clue[p.seat - 1] - b[p.role] for p in g.players]

        requests, completions, advantages, trainable, kinds, game_of, turns = [], [], [], [], [], [], []
        for smp in sampled:
            g = played[smp.game]
            if smp.kind == CLUE:
                (turn,) = smp.turns
                adv = [g.outcome["clue_advantages"][smp.player - 1] + format_bonus(turn.valid, s)]
                train = [train_clue]
            else:
                raw = [decision_reward(t.parsed, g.spy_seat, s) + format_bonus(t.valid, s) for t in smp.turns]
                adv = group_normalise(raw, s.decision_eps)
                train = [train_vote] * len(raw)
            requests.append(smp.request)
            completions.append(smp.completions)
            advantages.append(adv)
            trainable.append(train)
            kinds.append(smp.kind)
            game_of.append(smp.game)
            turns.append(smp.turns)

        accuracy = _ratio(totals["correct"], totals["votes"])
        na_rate = _ratio(totals["abstain"], totals["votes"])
        switches_before = self.scheduler.switches
        events += self.scheduler.update(step, accuracy, na_rate)
        b = self.baselines.b
        metrics = {
            "vote_accuracy": accuracy,
            "na_rate": na_rate,
            "invalid_vote_rate": _ratio(totals["invalid_votes"], totals["votes"]),
            "invalid_clue_rate": _ratio(totals["invalid_clues"], totals["clues"]),
            "spy_caught_rate": _ratio(totals["caught"], totals["games"]),
            "clue_tokens_mean": _ratio(totals["clue_tokens"], totals["clues"]),
            "clue_words_mean": _ratio(totals["clue_words"], totals["clues"] - totals["invalid_clues"]),
            "vote_tokens_mean": _ratio(totals["vote_tokens"], totals["votes"]),
            "reward_spy": _ratio(totals["spy_reward"], totals["games"]),
            "reward_civilian": _ratio(totals["civilian_reward"], totals["games"]),
            "decision_reward_mean": _ratio(totals["decision_reward"], totals["votes"]),
            "baseline_spy": b[SPY],
            "baseline_civilian": b[CIVILIAN],
            "acc_ema": self.scheduler.acc_ema,
            "na_ema": self.scheduler.na_ema,
            "phase": 1.0 if phase == CLUE_PHASE else 0.0,
            "switched": float(self.scheduler.switches != switches_before),
            "games": totals["games"],
        }
        return SpyBatch(
            requests, completions, advantages, trainable, phase, metrics, events, played, kinds, game_of, turns
        )

    @staticmethod
    def _totals(played: list[Game], scores: list[Any]) -> dict[str, float]:
        t = dict.fromkeys(_SUMS, 0.0)
        for g, sc in zip(played, scores):
            for turn in g.vote_turns():
                t["votes"] += 1
                t["correct"] += turn.parsed == g.spy_seat
                t["abstain"] += turn.parsed == "N/A"
                t["invalid_votes"] += not turn.valid
                t["vote_tokens"] += turn.tokens
            for turn in g.clue_turns():
                t["clues"] += 1
                t["invalid_clues"] += not turn.valid
                t["clue_tokens"] += turn.tokens
                t["clue_words"] += len(turn.parsed.split()) if turn.valid else 0
            t["games"] += 1
            t["caught"] += sc.caught
            t["spy_reward"] += sc.spy_reward
            t["civilian_reward"] += sc.civilian_reward
            t["decision_reward"] += sum(sc.decision)
        return t

    # ------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict(),
            "baselines": self.baselines.state_dict(),
            "pairs": pairs_fingerprint(self.pairs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("pairs")
        if saved is not None and saved != pairs_fingerprint(self.pairs):
            # game counters map to pairs by position: another list would silently replay
            # some pairs and skip others from here on
            raise UserError(
                f"the checkpoint was trained on another set of image pairs ({saved}, now "
                f"{pairs_fingerprint(self.pairs)}: count:hash of the usable pair names); "
                f"restore data.train or start a new out="
            )
        self.scheduler.load_state_dict(state["scheduler"])
        self.baselines.load_state_dict(state["baselines"])
