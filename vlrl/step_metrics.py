"""One RL step's metrics row: what this rank measured, then merged over ranks so rank 0
logs the whole batch, and the console line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.optimizer_step import OptimiseResult
from vlrl.tasks.base import StepSamples


@dataclass
class MicroBatchStats:
    """What the RL loss measured on one micro-batch, token sums so ranks can be merged."""

    metrics: dict[str, float]  # loss_metrics: token means (clip fractions, ratio, kl, entropy)
    mismatch: float  # sum over tokens of |trainer logprob - engine logprob|
    tokens: float  # completion tokens trained on


def step_metrics(
    step: int, samples: StepSamples, result: OptimiseResult, lr: float, split: dict[str, float]
) -> dict[str, Any]:
    """This rank's row for the step (`gather_metrics` merges the ranks')."""
    lengths = torch.tensor([len(c.token_ids) for c in samples.completions])
    stats: list[MicroBatchStats] = result.details
    # On-policy the clipped objective's value is ~0 (advantages sum to zero per group);
    # the gradient norm is what shows learning.
    row: dict[str, Any] = {"step": step + 1, "loss": result.loss, "lr": lr}
    if result.grad_norm is not None:
        row["grad_norm"] = float(result.grad_norm)
    row.update(samples.metrics)
    row["completion_length/mean"] = float(lengths.float().mean()) if len(lengths) else 0.0
    row["completion_length/max"] = int(lengths.max()) if len(lengths) else 0
    row["samples/kept"] = int(samples.keep.sum())
    if stats:
        tokens = sum(s.tokens for s in stats) or 1.0
        for key in stats[0].metrics:
            row[key] = sum(s.metrics[key] * s.tokens for s in stats) / tokens
        row["logprob_mismatch"] = sum(s.mismatch for s in stats) / tokens  # |trainer - engine| per token
    row["train_tokens"] = int(sum(s.tokens for s in stats))  # 0 on a rank that kept nothing
    # the coarse split the plots show, then every phase as timed
    train_phases = ("encode", "forward", "reference", "backward", "optimizer")
    row["time/train"] = sum(split.get(k, 0.0) for k in train_phases)
    row.update({f"time/{k}": v for k, v in split.items()})
    row.setdefault("time/generate", 0.0)
    row.setdefault("time/score", 0.0)
    row["tokens_per_second"] = float(lengths.sum()) / max(split["step"], 1e-9)
    row["completion_tokens"] = int(lengths.sum())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        row["gpu_memory/peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return row


# How each metric combines across ranks. Counts and throughput add up; token means (from
# loss_metrics, over the tokens each rank trained on) are weighted by those tokens; the
# rest are means over equal-sized shards, so a mean of the ranks' means is exact.
_SUMMED = ("samples/kept", "completion_tokens", "tokens_per_second", "train_tokens", "reward/unscorable")
_TOKEN_MEANS = ("clip/low", "clip/high", "clip/total", "ratio/mean", "kl", "entropy", "logprob_mismatch")


def gather_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """Rank 0's row describes the whole batch: numbers are averaged over ranks, maxima take
    the max, counts and throughput add up, token means are weighted by trained tokens, and
    times take the slowest rank."""
    if dist_utils.world_size() <= 1:
        return row
    rows = dist_utils.all_gather_objects(row)
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for r in rows for k in r):  # rank 0's keys first
        value = next(r[key] for r in rows if key in r)  # rank 0's, when it has one
        if key in _TOKEN_MEANS:  # a rank that trained no token has none of these: weight the others
            have = [r for r in rows if key in r and r.get("train_tokens", 0) > 0]
            if have:
                merged[key] = sum(r[key] * r["train_tokens"] for r in have) / sum(r["train_tokens"] for r in have)
            continue
        values = [
            r[key] for r in rows if key in r and isinstance(r[key], (int, float)) and not isinstance(r[key], bool)
        ]
        if key.startswith("reward_error/") or key == "reward/errors":  # counts, on whichever ranks had them
            merged[key] = type(value)(sum(values))
        elif key in ("step", "lr", "loss") or len(values) != len(rows):
            merged[key] = value
        elif key.endswith("/max") or key.startswith(("time/", "gpu_memory/")):
            merged[key] = max(values)
        elif key.endswith("/min"):
            merged[key] = min(values)
        elif key in _SUMMED:
            merged[key] = type(value)(sum(values))
        else:
            merged[key] = sum(values) / len(values)
    # Each rank's loss carries the factor W that makes DeepSpeed's mean over ranks give the
    # global objective (vlrl.algo.losses), so the objective is the ranks' sum over W.
    merged["loss"] = sum(float(r["loss"]) for r in rows) / len(rows)
    return merged


def format_metrics(row: dict[str, Any]) -> str:
    keys = [
        "step",
        "reward/mean",
        "exec_rate",
        "grad_norm",
        "kl",
        "entropy",
        "clip/total",
        "completion_length/mean",
        "tokens_per_second",
        "time/generate",
        "time/score",
        "time/train",
    ]
    return " ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys if k in row)
