"""DAPO extras (docs/reference.md §2.5): overlong filtering and the soft overlong penalty.
(Dynamic sampling's drop-and-refill lives where the rollouts are made, in the task.)
"""

from __future__ import annotations

import torch
from torch import Tensor

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
