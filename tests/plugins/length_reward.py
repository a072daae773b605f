"""A reward plugin for tests: random text can earn it (longer completions score more), so
even an untrained tiny model gets advantages and real gradients."""

from rewards import RewardOutput, register


@register("test_length")
class LengthReward:
    def __call__(self, batch):
        return [RewardOutput(min(1.0, len(item.completion) / 300.0)) for item in batch]
