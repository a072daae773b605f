"""Which examples a step takes: shared by the tasks and `vlrl sft`."""

from __future__ import annotations


class PromptSampler:
    """A seeded, epoch-by-epoch shuffled order; position is derived from the step (resumable)."""

    def __init__(self, n: int, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle

    def batch(self, step: int, size: int) -> list[int]:
        import random

        out = []
        for k in range(step * size, (step + 1) * size):
            epoch, pos = divmod(k, self.n)
            order = list(range(self.n))
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(order[pos])
        return out
