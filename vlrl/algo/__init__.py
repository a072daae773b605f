"""GRPO-family algorithm pieces, pure torch (no model code): advantages, losses, sampling.

The formulas are written out, one equation per line, in `vlrl.algo.advantages` and
`vlrl.algo.losses`, which also documents what each loss type means over a global batch
split across gradient-accumulation steps and ranks.
"""

from vlrl.algo.advantages import (
    SCALES,
    advantage_stats,
    group_advantages,
    zero_variance_groups,
)
from vlrl.algo.losses import (
    LOSS_TYPES,
    BatchCounts,
    aggregate_loss,
    count_global_batch,
    entropy_from_logits,
    loss_metrics,
    micro_batch_loss,
    micro_batch_loss_scale,
    per_token_loss,
    selective_log_softmax,
)
from vlrl.algo.sampling import (
    overlong_mask,
    soft_overlong_penalty,
)

__all__ = [
    "SCALES",
    "LOSS_TYPES",
    "BatchCounts",
    "advantage_stats",
    "aggregate_loss",
    "count_global_batch",
    "entropy_from_logits",
    "group_advantages",
    "loss_metrics",
    "micro_batch_loss",
    "micro_batch_loss_scale",
    "overlong_mask",
    "per_token_loss",
    "selective_log_softmax",
    "soft_overlong_penalty",
    "zero_variance_groups",
]
