"""One optimizer step over token-budget micro-batches, shared by every recipe (RL and SFT):
the recipe gives the rows and a loss function, this runs forward/backward per micro-batch
and steps the optimizer once at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from vlrl import distributed as dist_utils
from vlrl.policy import Policy
from vlrl.profiling import PhaseTimer
from vlrl.sequences import ModelBatch, PromptVision, Row, collate, micro_batches

# (micro-batch on the device, its rows) -> (scalar loss to back-propagate, what the recipe
# wants to keep from it: metrics). Called once per micro-batch.
LossFunction = Callable[[ModelBatch, list[Row]], tuple[torch.Tensor, Any]]


@dataclass
class OptimiseResult:
    """What one optimizer step did on this rank."""

    loss: float  # the sum of the losses back-propagated (padding micro-batches add 0)
    grad_norm: float | None  # None when nothing was back-propagated
    micro_batches: int  # run on this rank, padding included
    details: list[Any] = field(default_factory=list)  # the loss function's extras, real micro-batches only


def plan_micro_batches(
    rows: Sequence[Row], token_budget: int, filler: Callable[[], Row]
) -> tuple[list[list[Row]], int]:
    """Rows cut into micro-batches, padded to the same count on every rank.

    Every rank runs the same number of forward/backward passes (ZeRO-3 gathers weights in
    each forward, and every rank must reach the gradient reduction): a rank with fewer
    micro-batches repeats one at zero weight, and a rank with none repeats `filler()`.
    Returns the micro-batches and how many of them are real."""
    mbs = micro_batches(rows, token_budget)
    real = len(mbs)
    wanted = real
    if dist_utils.world_size() > 1:
        wanted = int(dist_utils.all_reduce(torch.tensor([real], dtype=torch.long), op="max"))
    if real < wanted:
        mbs = mbs + [mbs[0] if mbs else [filler()]] * (wanted - real)
    return mbs, real


def filler_row(completions: Sequence[Any], vision: Sequence[PromptVision], pad_id: int) -> Row:
    """A zero-weight stand-in micro-batch row for a rank that kept no sample: one token of its
    first completion, with that completion's images (so the same modules, the vision tower
    too, run on every rank), or a text-only pair of pads when it has none at all."""
    if completions:
        c = completions[0]
        return Row(c.prompt_ids, c.token_ids[:1] or [pad_id], vision[0], 0.0, (c.logprobs or [0.0])[:1])
    return Row([pad_id, pad_id], [pad_id], PromptVision(None, None))


def local_grad_norm(module) -> float:
    grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def optimise(
    policy: Policy, mbs: list[list[Row]], real: int, loss_fn: LossFunction, timer: PhaseTimer
) -> OptimiseResult:
    """Forward and backward each micro-batch (those past `real` at zero weight), then one
    optimizer step. The loss function owns the scaling that makes the micro-batch losses
    add up to the global batch's objective."""
    engine = policy.engine
    engine.train()
    if not mbs:
        engine.set_gradient_accumulation_boundary(True)
        policy.scheduler.step()  # keep the schedule aligned with steps even when nothing trains
        return OptimiseResult(0.0, None, 0)
    result = OptimiseResult(0.0, None, len(mbs))
    for k, rows in enumerate(mbs):
        padding = k >= real
        mb = collate(rows, pad_id=policy.pad_id, image_token_id=policy.image_token_id, device=engine.device)
        loss, detail = loss_fn(mb, rows)
        if padding:
            loss = loss * 0.0
        boundary = k == len(mbs) - 1
        engine.set_gradient_accumulation_boundary(boundary)
        with timer.phase("backward"):
            engine.backward(loss)
        if boundary and engine.zero_optimization_stage() == 0:
            result.grad_norm = local_grad_norm(engine.module)  # ZeRO-0 with a torch optimizer reports none
        with timer.phase("optimizer"):
            engine.step()
        result.loss += float(loss.detach())
        if boundary and result.grad_norm is None:
            norm = engine.get_global_grad_norm()
            result.grad_norm = None if norm is None else float(norm)
        if not padding:
            result.details.append(detail)
    return result
