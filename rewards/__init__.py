"""Reward functions for chart-to-code RL, registered by name (rewards.base) and built and
combined by name (rewards.composite)."""

from rewards.base import REGISTRY, Reward, RewardInput, RewardOutput, register
from rewards.chartmimic import PRF, low_level_metrics
from rewards.composite import CompositeReward, build_reward, load_plugins  # registers the built-in rewards

__all__ = [
    "REGISTRY",
    "CompositeReward",
    "PRF",
    "Reward",
    "RewardInput",
    "RewardOutput",
    "build_reward",
    "load_plugins",
    "low_level_metrics",
    "register",
]
