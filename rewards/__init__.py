"""Reward functions for chart-to-code RL, registered by name (see rewards.base)."""

from rewards.base import REGISTRY, CompositeReward, Reward, RewardInput, RewardOutput, build_reward, register
from rewards import chart_rewards, judge, visual  # noqa: F401,E402 - registration side effects
from rewards.chartmimic import PRF, low_level_metrics  # noqa: E402

__all__ = ["REGISTRY", "CompositeReward", "PRF", "Reward", "RewardInput", "RewardOutput", "build_reward",
           "low_level_metrics", "register"]
