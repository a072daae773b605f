"""Where a training step's time goes: named phases timed per step and over the run.

    timer = PhaseTimer(cuda_sync=True)
    with timer.phase("generate"):
        ...
    split = timer.end_step()      # {"generate": 1.2, ...} for this step
    print(timer.table())          # totals, share of the run and mean per step

On a GPU, work is asynchronous: without a synchronisation at each phase boundary the time
of a kernel is billed to whichever later phase waits for it. `cuda_sync=True` (what
`--profile` turns on) makes the split honest at a small cost in throughput.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator


class PhaseTimer:
    def __init__(self, *, cuda_sync: bool = False) -> None:
        self.cuda_sync = cuda_sync
        self.current: dict[str, float] = defaultdict(float)
        self.totals: dict[str, float] = defaultdict(float)
        self.steps = 0

    def _sync(self) -> None:
        if self.cuda_sync:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.current[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self.current[name] += seconds

    def end_step(self, total: float | None = None) -> dict[str, float]:
        """This step's split, counted into the run's. With the step's wall time `total`, the
        time no phase covered (logging, bookkeeping) is its own phase, "other", so the split
        adds up to the step."""
        split = dict(self.current)
        if total is not None:
            split["other"] = max(0.0, total - sum(split.values()))
        for name, seconds in split.items():
            self.totals[name] += seconds
        self.current.clear()
        self.steps += 1
        return split

    def table(self, split: dict[str, float] | None = None) -> str:
        """A plain-text table of one step's split (when given) or the whole run's."""
        data = split if split is not None else self.totals
        total = sum(data.values()) or 1e-12
        steps = 1 if split is not None else max(1, self.steps)
        width = max([len(n) for n in data] + [5])
        lines = [f"{'phase':<{width}}  {'seconds':>9}  {'share':>6}  {'per step':>9}"]
        for name, seconds in sorted(data.items(), key=lambda kv: -kv[1]):
            lines.append(f"{name:<{width}}  {seconds:9.3f}  {100 * seconds / total:5.1f}%  {seconds / steps:9.3f}")
        lines.append(f"{'total':<{width}}  {total:9.3f}  {100.0:5.1f}%  {total / steps:9.3f}")
        return "\n".join(lines)
