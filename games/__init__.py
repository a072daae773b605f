"""Who-is-the-Spy visual self-play (Vision-Zero): image pairs, the game, its rewards and schedule.

Never imports the trainer: the game talks to models only through `vlrl.rollout.base`.
"""

from games.engine import Game, Player, Turn, game_plan, new_game, play_games
from games.pairs import ImagePair, PairsReport, load_pairs
from games.parsing import NO_CLUE, Clue, Vote, parse_clue, parse_vote
from games.play import SpyBatch, SpyGames
from games.rewards import (
    GameScore,
    RoleBaselines,
    clue_rewards,
    decision_reward,
    group_normalise,
    score_game,
    votes_received,
)
from games.schedule import PhaseScheduler
from games.settings import SpySettings

__all__ = [
    "NO_CLUE",
    "Clue",
    "Game",
    "GameScore",
    "ImagePair",
    "PairsReport",
    "PhaseScheduler",
    "Player",
    "RoleBaselines",
    "SpyBatch",
    "SpySettings",
    "SpyGames",
    "Turn",
    "Vote",
    "clue_rewards",
    "decision_reward",
    "game_plan",
    "group_normalise",
    "load_pairs",
    "new_game",
    "parse_clue",
    "parse_vote",
    "play_games",
    "score_game",
    "votes_received",
]
