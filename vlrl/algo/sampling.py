"""DAPO extras (docs/reference.md §2.5): dynamic sampling with drop-and-refill, overlong filtering and
the soft overlong penalty. Same layout as `vlrl.algo.advantages`: B / G contiguous groups.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from vlrl.algo.advantages import _grouped, zero_variance_groups

# ---------------------------------------------------------------------------------------------
# dynamic sampling
# ---------------------------------------------------------------------------------------------


def filter_groups(
    rewards: Tensor,
    group_size: int,
    *,
    tol: float = 1e-6,
    drop_zero_variance: bool = True,
    band: tuple[float, float] | None = None,
    band_scores: Tensor | None = None,
) -> Tensor:
    """Indices (LongTensor, ascending) of the groups worth training on.

    drop_zero_variance: drop groups whose rewards are all equal within tol (DAPO dynamic
        sampling): their advantages are all 0, they only dilute the batch.
    band=(low, high): also keep only groups whose mean score lies strictly inside (low, high),
        e.g. (0.1, 0.9) for MSRL's "filter groups whose mean accuracy is outside (0.1, 0.9)".
        band_scores [B] is the per-completion score the band applies to (e.g. a 0/1 accuracy
        or the execution reward); default: rewards.
    """
    n_groups = _grouped(rewards, group_size).shape[0]  # shape errors first
    keep = torch.ones(n_groups, dtype=torch.bool, device=rewards.device)  # [B/G]
    if drop_zero_variance:
        keep &= ~zero_variance_groups(rewards, group_size, tol)
    if band is not None:
        low, high = band
        scores = rewards if band_scores is None else band_scores
        if scores.shape != rewards.shape:
            raise ValueError(f"band_scores {tuple(scores.shape)} must match rewards {tuple(rewards.shape)}")
        mean = _grouped(scores, group_size).float().mean(dim=1)  # [B/G]
        keep &= (mean > low) & (mean < high)
    return keep.nonzero().squeeze(1)


def group_rows(group_indices: Tensor, group_size: int) -> Tensor:
    """Group indices [K] -> row indices [K * G] of their completions, in the same order."""
    offsets = torch.arange(group_size, device=group_indices.device)  # [G]
    return (group_indices.unsqueeze(1) * group_size + offsets).reshape(-1)


def _take(value: Any, rows: Tensor) -> Any:
    if isinstance(value, Tensor):
        return value[rows.to(value.device)]
    return [value[i] for i in rows.tolist()]


def _cat(parts: list[Any], pad_value: float | int) -> Any:
    """Concatenate along rows; tensors whose dim-1 lengths differ between rounds are
    right-padded with pad_value first (completion lengths change from round to round)."""
    if not isinstance(parts[0], Tensor):
        return [x for part in parts for x in part]
    if parts[0].dim() >= 2:
        width = max(p.shape[1] for p in parts)
        parts = [F.pad(p, (0, 0) * (p.dim() - 2) + (0, width - p.shape[1]), value=pad_value) for p in parts]
    return torch.cat(parts, dim=0)


class GroupBuffer:
    """Accumulate kept groups over generation rounds until `target_groups` are collected.

    DAPO's "drop and refill": generate, drop uninformative groups (`filter_groups`), generate
    again, ... until the training batch is full, but never more than `max_rounds` rounds (a
    dataset where the policy already solves everything would loop forever).

        buf = GroupBuffer(target_groups=16, group_size=8, max_rounds=4)
        while not buf.ready:
            samples, rewards = generate_and_score()         # rows: groups of G completions
            buf.add(samples, rewards)
        samples, rewards = buf.pop()                      # <= 16 groups, in arrival order
        log(buf.last_stats)

    samples: dict of per-row fields, each a Tensor with first dim B or a list of length B.
    Tensors with a second dim may change length between rounds; they are right-padded on
    concatenation with pad_values[name] (default 0: fine for ids with a 0 pad and for masks).
    Extra groups beyond the target in the last round are discarded (counted in stats).
    If max_rounds runs out first, `pop` returns the groups it has (maybe none); check
    last_stats["buffer/groups_returned"].
    """

    def __init__(
        self,
        target_groups: int,
        group_size: int,
        max_rounds: int,
        *,
        tol: float = 1e-6,
        drop_zero_variance: bool = True,
        band: tuple[float, float] | None = None,
        pad_values: Mapping[str, float | int] | None = None,
    ) -> None:
        if target_groups < 1 or group_size < 1 or max_rounds < 1:
            raise ValueError(
                f"target_groups, group_size, max_rounds must be >= 1, got {target_groups}, {group_size}, {max_rounds}"
            )
        self.target_groups = target_groups
        self.group_size = group_size
        self.max_rounds = max_rounds
        self.tol = tol
        self.drop_zero_variance = drop_zero_variance
        self.band = band
        self.pad_values = dict(pad_values or {})
        self.last_stats: dict[str, float] = {}  # counts of the last popped batch
        self._reset()

    def _reset(self) -> None:
        self._samples: list[dict[str, Any]] = []
        self._rewards: list[Tensor] = []
        self.rounds = 0
        self.groups_seen = 0
        self.groups_kept = 0

    @property
    def full(self) -> bool:
        return self.groups_kept >= self.target_groups

    @property
    def ready(self) -> bool:
        """True when the batch is full or no more rounds are allowed."""
        return self.full or self.rounds >= self.max_rounds

    def add(self, samples: Mapping[str, Any], rewards: Tensor, band_scores: Tensor | None = None) -> int:
        """Filter one round of generations and keep the informative groups; returns how many."""
        if self.ready:
            raise RuntimeError(
                f"GroupBuffer is ready ({self.groups_kept}/{self.target_groups} groups after "
                f"{self.rounds}/{self.max_rounds} rounds): pop() before adding more"
            )
        n_rows = rewards.numel()
        for name, value in samples.items():
            if len(value) != n_rows:
                raise ValueError(f"sample field {name!r} has {len(value)} rows, rewards has {n_rows}")
        kept = filter_groups(
            rewards,
            self.group_size,
            tol=self.tol,
            drop_zero_variance=self.drop_zero_variance,
            band=self.band,
            band_scores=band_scores,
        )
        self.rounds += 1
        self.groups_seen += n_rows // self.group_size
        self.groups_kept += kept.numel()
        # Appended even when empty, so pop() still knows every field (and its trailing shape).
        rows = group_rows(kept, self.group_size)
        self._samples.append({name: _take(value, rows) for name, value in samples.items()})
        self._rewards.append(rewards[rows.to(rewards.device)])
        return kept.numel()

    def pop(self) -> tuple[dict[str, Any], Tensor]:
        """(samples, rewards) of at most target_groups groups; the buffer starts over after."""
        if not self.ready:
            raise RuntimeError(
                f"GroupBuffer not ready: {self.groups_kept}/{self.target_groups} groups, {self.rounds}/{self.max_rounds} rounds"
            )
        n_rows = min(self.groups_kept, self.target_groups) * self.group_size
        names = self._samples[0].keys()
        samples = {n: _cat([s[n] for s in self._samples], self.pad_values.get(n, 0))[:n_rows] for n in names}
        rewards = torch.cat(self._rewards)[:n_rows]
        self.last_stats = self._stats(returned=n_rows // self.group_size)
        self._reset()
        return samples, rewards

    def stats(self) -> dict[str, float]:
        """Counts of the batch being filled (pop() stores the final ones in last_stats)."""
        return self._stats(returned=0)

    def _stats(self, returned: int) -> dict[str, float]:
        seen, kept = self.groups_seen, self.groups_kept
        return {
            "buffer/rounds": float(self.rounds),
            "buffer/groups_seen": float(seen),
            "buffer/groups_kept": float(kept),
            "buffer/frac_dropped": (seen - kept) / seen if seen else 0.0,
            "buffer/groups_returned": float(returned),
            "buffer/groups_surplus": float(max(kept - self.target_groups, 0)),
        }


# ---------------------------------------------------------------------------------------------
# overlong handling
# ---------------------------------------------------------------------------------------------


def overlong_mask(lengths: Tensor, max_len: int, eos_found: Tensor | None = None) -> Tensor:
    """BoolTensor[B]: False for truncated completions (DAPO overlong filtering).

    Multiply it into the completion mask (mask * keep[:, None]) so a truncated completion
    contributes no gradient (its reward judged an unfinished answer). A completion is truncated
    when it hit max_len; pass eos_found [B] to decide by "no EOS generated" instead (TRL's
    mask_truncated_completions), which also keeps a completion whose EOS is the max_len-th token.
    """
    if eos_found is not None:
        return eos_found.to(torch.bool)
    return lengths < max_len


def soft_overlong_penalty(lengths: Tensor, max_len: int, cache: int, factor: float = 1.0) -> Tensor:
    """DAPO's soft overlong punishment, a reward term in [-factor, 0], float32 [B]:

        0                                 if len <= max_len - cache
        (max_len - cache - len) / cache   if max_len - cache < len <= max_len
        -1                                if len > max_len
    (times factor), added to the task reward.
    """
    if not 0 < cache <= max_len:
        raise ValueError(f"need 0 < cache <= max_len, got cache={cache}, max_len={max_len}")
    expected = max_len - cache
    penalty = (expected - lengths.float()) / cache  # [B]  linear ramp to -1 at max_len
    return factor * penalty.clamp(min=-1.0, max=0.0)
