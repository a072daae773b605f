"""Which examples a step takes (the tasks and `vlrl sft`), and how sharded jobs name their files."""

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


def shard_suffix(shard: int, num_shards: int) -> str:
    """The file-name suffix of shard I of K (`-I-of-K`; none for an unsharded job)."""
    return "" if num_shards == 1 else f"-{shard}-of-{num_shards}"
