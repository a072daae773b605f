"""Rewards of the spy game (Vision-Zero, docs/reference.md §7.3-7.6).

Clue stage (zero-sum over the players of a game), v_k = votes player k received, v_c_bar =
the civilians' mean, n_c civilians:

    r_spy = -beta * (v_s - v_c_bar)
    r_cj  = (beta / n_c) * (v_s - v_c_bar) - lam * (v_cj - v_c_bar)

Sum: -beta*d + n_c*(beta/n_c)*d - lam*sum_j(v_cj - v_c_bar) = 0, with d = v_s - v_c_bar.
A decision prompt is sampled G times; each sample is one ballot worth 1/G, so v_k is the
expected number of votes player k gets from the voters (abstentions and invalid votes count
for nobody). A player's reward applies to all of its clue turns.

Role-advantage estimation (RAE): per-role EMA baselines, updated once per game with that
game's role reward (the spy's reward; the civilians' mean), then

    b_role <- alpha * b_role + (1 - alpha) * r_role
    A_k     = r_k - b_role(k)

using the baseline *after* this game's update: the paper states the update and then the
advantage, and the released code does the same.

Decision stage: +1 for a vote for the spy, -0.5 for N/A, -1 for a wrong or invalid vote,
normalised within the G samples of one decision prompt: (r - mean) / (std + eps), std with
Bessel's correction like `vlrl.algo.advantages.group_advantages`.

Optional format shaping (off in the paper): +-format_weight for a well-formed / malformed
answer, added to a clue turn's advantage and to a vote's reward before normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from games.engine import CIVILIAN, SPY, Game
from games.settings import SpySettings


def votes_received(game: Game) -> list[float]:
    """v_k for seats 1..N (index k-1): per decision prompt, the share of its G samples naming k."""
    votes = [0.0] * game.n_players
    groups: dict[int, list[Any]] = {}
    for t in game.vote_turns():
        groups.setdefault(t.player, []).append(t.parsed)
    for ballots in groups.values():
        for parsed in ballots:
            if isinstance(parsed, int) and 1 <= parsed <= game.n_players:
                votes[parsed - 1] += 1.0 / len(ballots)
    return votes


def clue_rewards(votes: Sequence[float], spy_seat: int, beta: float, lam: float) -> list[float]:
    """r_k for seats 1..N from the votes received (zero-sum)."""
    civ = [k for k in range(1, len(votes) + 1) if k != spy_seat]
    n_c = len(civ)
    v_s = votes[spy_seat - 1]
    v_c_bar = sum(votes[k - 1] for k in civ) / n_c
    gap = v_s - v_c_bar
    rewards = [0.0] * len(votes)
    rewards[spy_seat - 1] = -beta * gap
    for k in civ:
        rewards[k - 1] = (beta / n_c) * gap - lam * (votes[k - 1] - v_c_bar)
    return rewards


def decision_reward(parsed: Any, spy_seat: int, settings: SpySettings) -> float:
    """Raw reward of one vote: seat, "N/A", or None (invalid)."""
    if parsed == spy_seat:
        return settings.reward_correct
    if parsed == "N/A":
        return settings.reward_abstain
    return settings.reward_wrong


def format_bonus(valid: bool, settings: SpySettings) -> float:
    if not settings.format_shaping:
        return 0.0
    return settings.format_weight if valid else -settings.format_weight


def group_normalise(rewards: Sequence[float], eps: float) -> list[float]:
    """(r - mean) / (std + eps) over one group, std Bessel-corrected; a group of one gets 0."""
    n = len(rewards)
    if n < 2:
        return [0.0] * n
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    return [(r - mean) / (std + eps) for r in rewards]


def spy_caught(votes: Sequence[float], spy_seat: int) -> bool:
    """The spy drew strictly more votes than every other player."""
    v_s = votes[spy_seat - 1]
    return all(v_s > v for k, v in enumerate(votes, start=1) if k != spy_seat)


@dataclass
class GameScore:
    votes: list[float]  # v_k, seats 1..N
    clue: list[float]  # r_k, seats 1..N
    spy_reward: float
    civilian_reward: float  # the civilians' mean (the RAE update uses it)
    decision: list[float]  # raw reward per vote turn, in game.vote_turns() order
    caught: bool


def score_game(game: Game) -> GameScore:
    """Votes, clue rewards and raw decision rewards of a played game; also stored in
    game.outcome for the transcript."""
    s = game.settings
    spy = game.spy_seat
    votes = votes_received(game)
    clue = clue_rewards(votes, spy, s.beta, s.lam)
    civ = [clue[p.seat - 1] for p in game.players if p.role == CIVILIAN]
    decision = [decision_reward(t.parsed, spy, s) + format_bonus(t.valid, s) for t in game.vote_turns()]
    score = GameScore(votes, clue, clue[spy - 1], sum(civ) / len(civ), decision, spy_caught(votes, spy))
    game.outcome.update(
        {
            "votes_received": votes,
            "spy_caught": score.caught,
            "clue_rewards": clue,
            "role_rewards": {SPY: score.spy_reward, CIVILIAN: score.civilian_reward},
            "decision_rewards": decision,
        }
    )
    return score


class RoleBaselines:
    """RAE's per-role EMA baselines b_spy, b_civ (start 0)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.b = {SPY: 0.0, CIVILIAN: 0.0}
        self.games = 0

    def update(self, spy_reward: float, civilian_reward: float) -> dict[str, float]:
        """One game's update; returns the baselines after it (what that game's advantages use)."""
        a = self.alpha
        self.b[SPY] = a * self.b[SPY] + (1 - a) * spy_reward
        self.b[CIVILIAN] = a * self.b[CIVILIAN] + (1 - a) * civilian_reward
        self.games += 1
        return dict(self.b)

    def state_dict(self) -> dict[str, Any]:
        return {"spy": self.b[SPY], "civilian": self.b[CIVILIAN], "games": self.games}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.b = {SPY: float(state["spy"]), CIVILIAN: float(state["civilian"])}
        self.games = int(state.get("games", 0))


def clue_advantages(score: GameScore, game: Game, baselines: dict[str, float]) -> list[float]:
    """A_k = r_k - b_role(k) for seats 1..N."""
    return [score.clue[p.seat - 1] - baselines[p.role] for p in game.players]
