"""Rewards -> advantages for the GRPO family (docs/reference.md §2.1-2.2, parity target TRL GRPOTrainer).

Layout convention used everywhere in `vlrl.algo`: a batch of B completions is made of B / G
contiguous groups, each group holding the G completions sampled for one prompt
(rows [0, G) are prompt 0, rows [G, 2G) prompt 1, ...).

Vision-Zero's decision rewards (docs/reference.md §7.6: +1 correct, -0.5 N/A, -1 wrong/invalid,
normalised (r - mean) / (std + eps) over the votes of one decision prompt) are
`group_advantages(vote_rewards, G=votes_per_prompt, scale="group")`.

Task-provided advantages (e.g. Vision-Zero's role-advantage estimation A_k = r_k - b_role)
need no special support: build the [B] tensor yourself and pass it as `advantages` to
`vlrl.algo.losses.per_token_loss` instead of calling `group_advantages`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Scale = Literal["group", "batch", "none"]
SCALES = ("group", "batch", "none")


def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    """[B] -> [B/G, G], with the errors a caller can act on."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B], got shape {tuple(rewards.shape)}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"batch size {rewards.numel()} is not a multiple of group_size {group_size}: "
            "groups must be contiguous blocks of G completions of one prompt"
        )
    return rewards.view(-1, group_size)


def group_advantages(
    rewards: Tensor, group_size: int, scale: Scale = "group", eps: float = 1e-4, batch_std: float | None = None
) -> Tensor:
    """A_i = (r_i - mean_g) / (std + eps), as TRL GRPOTrainer computes it.

    rewards: [B] total reward per completion (rewards.CompositeReward's weighted sum).
    scale:
      "group": std = std_g, the Bessel-corrected (unbiased) std of the completion's own group;
      "batch": std = Bessel-corrected std of all B rewards (pass the global batch so every
               rank sees the same number, as TRL gathers rewards before normalising), or
               `batch_std` when given: the std of the global batch computed across ranks;
      "none":  A_i = r_i - mean_g (Dr. GRPO: no std division).
    Returns [B] float advantages; rows of a zero-variance group get exactly 0.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    grouped = _grouped(rewards, group_size).float()  # [B/G, G]
    if scale == "group" and group_size < 2:
        raise ValueError("scale='group' needs group_size >= 2 (the std of one sample is undefined)")
    if scale == "batch" and rewards.numel() < 2 and batch_std is None:
        raise ValueError("scale='batch' needs at least 2 rewards")

    mean_g = grouped.mean(dim=1, keepdim=True)  # [B/G, 1]
    centred = grouped - mean_g  # [B/G, G]
    if scale == "group":
        std = grouped.std(dim=1, keepdim=True)  # [B/G, 1], unbiased (N - 1), like torch/TRL
    elif scale == "batch":
        std = grouped.std() if batch_std is None else torch.tensor(batch_std)  # scalar, unbiased over the batch
    else:
        return centred.reshape(-1)
    return (centred / (std + eps)).reshape(-1)  # [B]


def zero_variance_groups(rewards: Tensor, group_size: int, tol: float = 1e-6) -> Tensor:
    """BoolTensor[B/G]: True where every reward of the group is equal (within tol).

    Such groups have zero advantage under every scale, hence no policy gradient
    (only the KL term): DAPO's dynamic sampling drops them.
    """
    grouped = _grouped(rewards, group_size)  # [B/G, G]
    spread = grouped.max(dim=1).values - grouped.min(dim=1).values  # [B/G]
    return spread <= tol


def advantage_stats(advantages: Tensor, rewards: Tensor, group_size: int) -> dict[str, float]:
    """Logging numbers for one (global) batch, as plain floats.

    reward/std is the std of all rewards; reward/group_std_mean is the mean of per-group
    stds (what TRL logs as `reward_std`).
    """
    grouped = _grouped(rewards, group_size).float()  # [B/G, G]
    a = advantages.detach().float()
    r = rewards.detach().float()
    group_std = grouped.std(dim=1) if group_size > 1 else torch.zeros(grouped.shape[0])
    return {
        "advantages/mean": a.mean().item(),
        "advantages/std": a.std().item() if a.numel() > 1 else 0.0,
        "advantages/min": a.min().item(),
        "advantages/max": a.max().item(),
        "reward/mean": r.mean().item(),
        "reward/std": r.std().item() if r.numel() > 1 else 0.0,
        "reward/group_std_mean": group_std.mean().item(),
        "frac_zero_variance_groups": zero_variance_groups(rewards, group_size).float().mean().item(),
    }
