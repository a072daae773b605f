"""GRPO-family policy loss (docs/reference.md §2.3-2.4, parity target TRL GRPOTrainer). Pure torch.

Notation: B sequences (completions) in a micro-batch, T completion tokens (padded),
l[i, t] the per-token loss, M[i, t] in {0, 1} the completion mask (1 = real token).

Per token (`per_token_loss`):
    ratio = exp(logp - logp_old)
    l     = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)
            + beta * (exp(ref - logp) - (ref - logp) - 1)            # k3 estimator of KL(pi || ref)

Aggregation of one micro-batch (`aggregate_loss`, TRL's formulas verbatim):
    grpo    : mean_i ( sum_t l M / max(sum_t M, 1) )
    bnpo    : sum l M / max(sum M, 1)                                  # over the micro-batch
    dr_grpo : sum l M / (B * max_completion_length)
    dapo    : sum l M / N_tok                                          # N_tok: see below

What each loss type means over the WHOLE global batch
(all ranks x all gradient-accumulation micro-steps; N_seq / N_tok are its sequence /
active-token counts, `BatchCounts`):
    grpo    : (1 / N_seq) * sum_i ( sum_t l M / max(sum_t M, 1) )  — every sequence weighs the same
    bnpo    : TRL semantics, kept: the mean over the k * W micro-batches of each micro-batch's
              token mean. It depends on how the batch was cut; the cut-independent
              "token mean over the global batch" is exactly `dapo`, so use loss_type="dapo"
              when you want global BNPO.
    dr_grpo : sum_all l M / (N_seq * max_completion_length)
    dapo    : sum_all l M / N_tok                                      — every token weighs the same

Getting those with gradient accumulation and data parallelism (`micro_batch_loss`):
the engine (DeepSpeed by default) runs k micro-steps on each of W ranks, divides each
micro-batch loss by k, sums the gradients over its micro-steps and averages them over ranks:
    grad_applied = (1 / (k W)) * sum_{rank r, step m} grad L_{r,m}
so L_{r,m} must be k * W * (the part of the global objective that lives in micro-batch (r, m)).
That gives, relative to `aggregate_loss` of the micro-batch (n = sequences in it):
    grpo, dr_grpo : scale = k * W * n / N_seq      (1 when every micro-batch has N_seq / (k W) rows)
    bnpo          : scale = 1                       (the engine's averaging *is* TRL's bnpo)
    dapo          : scale = k * W                   (aggregate_loss already divides by global N_tok)
With `engine_scales_by_accumulation=False` (an engine that does not divide by k, e.g. TRL's
own loop that calls DeepSpeed with scale_wrt_gas=False) the factor k is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def _check_loss_type(loss_type: str) -> None:
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


# ---------------------------------------------------------------------------------------------
# per-token loss
# ---------------------------------------------------------------------------------------------


def per_token_loss(
    logp: Tensor,
    old_logp: Tensor | None,
    advantages: Tensor,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
) -> tuple[Tensor, dict[str, Tensor | None]]:
    """Clipped-surrogate + k3-KL loss per completion token.

    logp, old_logp, ref_logp: [B, T] log-probs of the sampled completion tokens under the
        current policy (with grad), the sampling policy, and the frozen reference.
        old_logp=None means on-policy (one optimisation step per generation): old = logp.detach(),
        so ratio == 1 but its gradient is still grad logp, as in TRL.
    advantages: [B] (one per sequence, broadcast over tokens) or [B, T].
    eps_low / eps_high: clip range [1 - eps_low, 1 + eps_high]; DAPO clip-higher uses eps_high=0.28.

    Returns (loss_tokens [B, T], info) where info holds detached [B, T] tensors:
        ratio; clipped_low / clipped_high: tokens where the clipped branch is the active min,
        i.e. the gradient is cut (ratio < 1 - eps_low with A < 0, ratio > 1 + eps_high with A > 0;
        TRL's definitions); kl: k3 per token, or None when ref_logp is None.
    Padding positions are not masked here; `aggregate_loss` does that.
    """
    if old_logp is None:
        old_logp = logp.detach()
    if logp.shape != old_logp.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and old_logp {tuple(old_logp.shape)} differ in shape")
    if advantages.dim() == 1:
        adv = advantages.unsqueeze(1)  # [B, 1], same advantage for every token of a sequence
    elif advantages.shape == logp.shape:
        adv = advantages  # [B, T]
    else:
        raise ValueError(
            f"advantages must be [B] or [B, T] for logp {tuple(logp.shape)}, got {tuple(advantages.shape)}"
        )
    if adv.shape[0] != logp.shape[0]:
        raise ValueError(f"advantages has {adv.shape[0]} rows, logp has {logp.shape[0]}")

    ratio = torch.exp(logp - old_logp)  # [B, T]  pi / pi_old
    clipped_ratio = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)  # [B, T]
    loss = -torch.min(ratio * adv, clipped_ratio * adv)  # [B, T]  pessimistic PPO bound

    kl = None
    if ref_logp is not None:
        log_ref_ratio = ref_logp - logp  # [B, T]  log(ref / pi)
        kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # [B, T]  k3: unbiased, always >= 0
    if beta != 0.0:
        if kl is None:
            raise ValueError("beta != 0 needs ref_logp")
        loss = loss + beta * kl

    info = {
        "ratio": ratio.detach(),
        "clipped_low": ((ratio < 1 - eps_low) & (adv < 0)).detach(),
        "clipped_high": ((ratio > 1 + eps_high) & (adv > 0)).detach(),
        "kl": None if kl is None else kl.detach(),
    }
    return loss, info


# ---------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------


def aggregate_loss(
    loss_tokens: Tensor,
    mask: Tensor,
    loss_type: LossType,
    *,
    max_completion_length: int | None = None,
    num_items_in_global_batch: int | float | Tensor | None = None,
) -> Tensor:
    """Reduce [B, T] per-token losses of ONE micro-batch to a scalar (module docstring table).

    mask: [B, T] completion mask (bool or 0/1).
    max_completion_length: required for dr_grpo (the generation limit, not this batch's T).
    num_items_in_global_batch: required for dapo: active tokens of the whole global batch,
        all ranks and all accumulation steps (`count_global_batch(...).active_tokens`).
    This is the micro-batch closed form; to train on a split global batch use `micro_batch_loss`.
    """
    _check_loss_type(loss_type)
    if mask.shape != loss_tokens.shape:
        raise ValueError(f"mask {tuple(mask.shape)} and loss_tokens {tuple(loss_tokens.shape)} differ in shape")
    m = mask.to(loss_tokens.dtype)  # [B, T]
    masked = loss_tokens * m  # [B, T]

    if loss_type == "grpo":
        per_seq = masked.sum(dim=1) / m.sum(dim=1).clamp(min=1.0)  # [B]  token mean per sequence
        return per_seq.mean()
    if loss_type == "bnpo":
        return masked.sum() / m.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length")
        if loss_tokens.shape[1] > max_completion_length:
            raise ValueError(
                f"completion length {loss_tokens.shape[1]} exceeds max_completion_length {max_completion_length}"
            )
        return masked.sum() / (loss_tokens.shape[0] * max_completion_length)
    # dapo
    if num_items_in_global_batch is None:
        raise ValueError("loss_type='dapo' needs num_items_in_global_batch (active tokens of the whole global batch)")
    n_tok = torch.as_tensor(num_items_in_global_batch, dtype=loss_tokens.dtype, device=loss_tokens.device)
    return masked.sum() / n_tok.clamp(min=1.0)


@dataclass(frozen=True)
class BatchCounts:
    """Sizes of the whole global batch (all ranks, all accumulation micro-steps)."""

    num_sequences: int
    active_tokens: int


def count_global_batch(masks: Iterable[Tensor], group=None) -> BatchCounts:
    """Global counts from this rank's micro-batch masks ([B_m, T_m] each).

    Sums over the masks given, then all-reduces (SUM) over ranks when torch.distributed is
    initialised, so call it on every rank with that rank's masks of the coming optimizer step,
    before the first micro-step. Without torch.distributed it just sums what it is given.
    """
    masks = list(masks)
    if not masks:
        raise ValueError("count_global_batch needs at least one mask")
    device = masks[0].device
    counts = torch.zeros(2, dtype=torch.float64, device=device)  # [num_sequences, active_tokens]
    for m in masks:
        counts[0] += m.shape[0]
        counts[1] += m.to(torch.float64).sum()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(counts, op=torch.distributed.ReduceOp.SUM, group=group)
    return BatchCounts(num_sequences=int(counts[0].item()), active_tokens=int(counts[1].item()))


def micro_batch_loss_scale(
    loss_type: LossType,
    *,
    num_micro_steps: int,
    world_size: int,
    micro_num_sequences: int,
    global_num_sequences: int,
    engine_scales_by_accumulation: bool = True,
) -> float:
    """Factor s such that s * aggregate_loss(micro-batch) gives the global objective.

    Derivation in the module docstring: the engine applies (1 / (k W)) * sum of micro-batch
    gradients, so each micro-batch loss must carry k * W times its share of the global
    objective (k = num_micro_steps per rank, W = world_size). Pass
    engine_scales_by_accumulation=False when the engine does NOT divide by k itself.
        grpo, dr_grpo : k W n / N_seq
        bnpo          : 1        (TRL semantics: mean of micro-batch token means)
        dapo          : k W      (with aggregate_loss's num_items_in_global_batch = global N_tok)
    """
    _check_loss_type(loss_type)
    if num_micro_steps < 1 or world_size < 1:
        raise ValueError(f"num_micro_steps and world_size must be >= 1, got {num_micro_steps}, {world_size}")
    if not 0 < micro_num_sequences <= global_num_sequences:
        raise ValueError(
            f"need 0 < micro_num_sequences ({micro_num_sequences}) <= global_num_sequences ({global_num_sequences})"
        )
    k = num_micro_steps if engine_scales_by_accumulation else 1
    if loss_type in ("grpo", "dr_grpo"):
        return k * world_size * micro_num_sequences / global_num_sequences
    if loss_type == "bnpo":
        # The engine's own 1/k and rank averaging already produce TRL's mean of micro-batch
        # means; only an engine that does not divide by k needs the 1/k here.
        return 1.0 if engine_scales_by_accumulation else 1.0 / num_micro_steps
    return float(k * world_size)  # dapo


def micro_batch_loss(
    loss_tokens: Tensor,
    mask: Tensor,
    loss_type: LossType,
    *,
    counts: BatchCounts,
    num_micro_steps: int,
    world_size: int,
    max_completion_length: int | None = None,
    engine_scales_by_accumulation: bool = True,
) -> Tensor:
    """The scalar to hand to the engine's backward for one micro-batch.

    = micro_batch_loss_scale(...) * aggregate_loss(micro-batch), so that after the engine's
    1/k, the sum over micro-steps and the mean over ranks the update equals the gradient of
    the global objective (module docstring) for the batch described by `counts`.
    """
    scale = micro_batch_loss_scale(
        loss_type,
        num_micro_steps=num_micro_steps,
        world_size=world_size,
        micro_num_sequences=loss_tokens.shape[0],
        global_num_sequences=counts.num_sequences,
        engine_scales_by_accumulation=engine_scales_by_accumulation,
    )
    loss = aggregate_loss(
        loss_tokens,
        mask,
        loss_type,
        max_completion_length=max_completion_length,
        num_items_in_global_batch=counts.active_tokens,
    )
    return scale * loss


def loss_metrics(info: dict[str, Tensor | None], mask: Tensor, entropy: Tensor | None = None) -> dict[str, float]:
    """Means over active tokens of this micro-batch (average them across ranks/steps yourself).

    clip/low, clip/high, clip/total: fraction of active tokens whose gradient is cut by the
    lower / upper clip (TRL's clip_ratio/low_mean, high_mean, region_mean).
    """
    m = mask.to(torch.float32)  # [B, T]
    n = m.sum().clamp(min=1.0)

    def masked_mean(x: Tensor) -> float:
        return ((x.to(torch.float32) * m).sum() / n).item()

    low, high = info["clipped_low"], info["clipped_high"]
    out = {
        "clip/low": masked_mean(low),
        "clip/high": masked_mean(high),
        "clip/total": masked_mean(low | high),
        "ratio/mean": masked_mean(info["ratio"]),
    }
    if info.get("kl") is not None:
        out["kl"] = masked_mean(info["kl"])
    if entropy is not None:
        out["entropy"] = masked_mean(entropy.detach())
    return out


def entropy_from_logits(logits: Tensor, chunk_size: int = 128) -> Tensor:
    """Entropy of the softmax over the last dim: [..., V] -> [...] (float32).

    H = -sum_v p_v log p_v with log p = x - logsumexp(x), evaluated on chunk_size rows at a
    time so the float32 [rows, V] temporaries never cover the whole [B, T, V] logits.
    Differentiable (usable for an entropy bonus).
    """
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)  # [B*T, V]
    out = []
    for chunk in flat.split(chunk_size, dim=0):
        chunk = chunk.float()  # [c, V]
        logp = chunk - torch.logsumexp(chunk, dim=-1, keepdim=True)  # [c, V]
        out.append(-(logp.exp() * logp).sum(dim=-1))  # [c]
    if not out:
        return logits.new_zeros(logits.shape[:-1], dtype=torch.float32)
    return torch.cat(out).reshape(logits.shape[:-1])  # [B, T]


def selective_log_softmax(logits: Tensor, ids: Tensor) -> Tensor:
    """log_softmax(logits)[..., ids] without materialising the [B, T, V] log-softmax.

    logits: [B, T, V]; ids: [B, T] -> [B, T] in logits' dtype.
    float32/64: gather the chosen logit, subtract a per-row logsumexp (one [T, V] temporary
    at a time). bf16/fp16: x - logsumexp(x) loses too much precision there, so do a per-row
    log_softmax and gather, as TRL does.
    """
    if logits.dtype in (torch.float32, torch.float64):
        chosen = torch.gather(logits, dim=-1, index=ids.unsqueeze(-1)).squeeze(-1)  # [B, T]
        lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])  # [B, T]
        return chosen - lse
    rows = []
    for row_logits, row_ids in zip(logits, ids):  # [T, V], [T]
        row_logp = F.log_softmax(row_logits, dim=-1)
        rows.append(row_logp.gather(dim=-1, index=row_ids.unsqueeze(-1)).squeeze(-1))
    return torch.stack(rows)  # [B, T]
