"""A reward plugin for tests: flat (no signal) on rank 0, varied elsewhere. Under dynamic
sampling rank 0 is short of informative groups every round while the other ranks are not:
the case where ranks would run different numbers of rollout rounds."""

import os

from rewards import RewardOutput, register


@register("test_rank")
class RankReward:
    def __call__(self, batch):
        if os.environ.get("RANK", "0") == "0":
            return [RewardOutput(0.5) for _ in batch]
        return [RewardOutput((i % 3) / 2.0) for i, _ in enumerate(batch)]
