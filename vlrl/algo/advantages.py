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


def nanstd(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Bessel-corrected std over the values that are not NaN (NaN where fewer than two are),
    as TRL's `nanstd` computes it."""
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    variance = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = torch.sum(~torch.isnan(x), dim=dim, keepdim=True)
    correction = torch.where(count > 1, count / (count - 1), torch.full_like(variance, float("nan")))
    std = torch.sqrt(variance * correction)
    return std if keepdim or dim is None else std.squeeze(dim)


def group_advantages(
    rewards: Tensor, group_size: int, scale: Scale = "group", eps: float = 1e-4, batch_std: float | None = None
) -> Tensor:
    """A_i = (r_i - mean_g) / (std + eps), as TRL GRPOTrainer computes it.

    rewards: [B] total reward per completion (rewards.CompositeReward's weighted sum); NaN
      marks a completion no reward could score, which, as in TRL, is left out of its group's
      mean and std (and the batch std) and gets advantage exactly 0.
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
    if torch.isnan(grouped).any():
        return _advantages_with_unscorable(grouped, scale, eps, batch_std)

    mean_g = grouped.mean(dim=1, keepdim=True)  # [B/G, 1]
    centred = grouped - mean_g  # [B/G, G]
    if scale == "group":
        std = grouped.std(dim=1, keepdim=True)  # [B/G, 1], unbiased (N - 1), like torch/TRL
    elif scale == "batch":
        std = grouped.std() if batch_std is None else torch.tensor(batch_std)  # scalar, unbiased over the batch
    else:
        return centred.reshape(-1)
    return (centred / (std + eps)).reshape(-1)  # [B]


def _advantages_with_unscorable(grouped: Tensor, scale: Scale, eps: float, batch_std: float | None) -> Tensor:
    """group_advantages where some rewards are NaN: TRL's nan-aware statistics."""
    mean_g = torch.nanmean(grouped, dim=1, keepdim=True)  # [B/G, 1], NaN for an all-NaN group
    centred = grouped - mean_g
    if scale == "group":
        advantages = centred / (nanstd(grouped, dim=1, keepdim=True) + eps)
    elif scale == "batch":
        std = nanstd(grouped) if batch_std is None else torch.tensor(batch_std)
        advantages = centred / (std + eps)
    else:
        advantages = centred
    return torch.nan_to_num(advantages, nan=0.0).reshape(-1)  # no signal, no gradient


def zero_variance_groups(rewards: Tensor, group_size: int, tol: float = 1e-6) -> Tensor:
    """BoolTensor[B/G]: True where every reward of the group is equal (within tol), NaN
    (unscorable) rewards left out; a group with nothing scorable counts as equal.

    Such groups have zero advantage under every scale, hence no policy gradient
    (only the KL term): DAPO's dynamic sampling drops them.
    """
    grouped = _grouped(rewards, group_size)  # [B/G, G]
    missing = torch.isnan(grouped)
    high = torch.where(missing, float("-inf"), grouped).max(dim=1).values
    low = torch.where(missing, float("inf"), grouped).min(dim=1).values
    return (high - low <= tol) | missing.all(dim=1)


def advantage_stats(advantages: Tensor, rewards: Tensor, group_size: int) -> dict[str, float]:
    """Logging numbers for one (global) batch, as plain floats.

    reward/std is the std of all rewards; reward/group_std_mean is the mean of per-group
    stds (what TRL logs as `reward_std`). Unscorable (NaN) rewards are left out of the reward
    statistics and counted in reward/unscorable.
    """
    grouped = _grouped(rewards, group_size).float()  # [B/G, G]
    a = advantages.detach().float()
    r = rewards.detach().float()
    scored = r[~torch.isnan(r)]
    group_std = nanstd(grouped, dim=1) if group_size > 1 else torch.zeros(grouped.shape[0])
    group_std = group_std[~torch.isnan(group_std)]
    return {
        "advantages/mean": a.mean().item(),
        "advantages/std": a.std().item() if a.numel() > 1 else 0.0,
        "advantages/min": a.min().item(),
        "advantages/max": a.max().item(),
        "reward/mean": scored.mean().item() if scored.numel() else 0.0,
        "reward/std": scored.std().item() if scored.numel() > 1 else 0.0,
        "reward/group_std_mean": group_std.mean().item() if group_std.numel() else 0.0,
        "reward/unscorable": float(r.numel() - scored.numel()),
        "frac_zero_variance_groups": zero_variance_groups(rewards, group_size).float().mean().item(),
    }
