"""Our advantages, losses and gradients equal TRL GRPOTrainer's on a fixed batch, to 1e-5.

The harness is benchmarks/trl_compare.py (which also prints the comparison as a table):
a fixed batch of 3 image prompts x G=4 completions of different lengths, fixed rewards and
fixed behaviour / reference log-probs, pushed through TRL's own trainer methods
(_generate_and_score_completions, _compute_loss) and through the functions vlrl.trainer
calls, each side on its own copy of the same tiny Qwen2-VL.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-5


def _load_harness():
    spec = importlib.util.spec_from_file_location("trl_compare", ROOT / "benchmarks" / "trl_compare.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


@pytest.fixture(scope="module")
def fixed_batch(tmp_path_factory):
    return harness.build_fixed_batch(str(tmp_path_factory.mktemp("trl_parity")))


def test_prompt_tokens_match(fixed_batch):
    # chat template, image placeholders and their count per image size: the same tokens
    assert harness.prompt_ids_match(fixed_batch)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match(fixed_batch, scale):
    theirs = harness.trl_advantages(fixed_batch, scale)
    ours = harness.our_advantages(fixed_batch, scale)
    assert theirs.shape == ours.shape
    assert (theirs - ours).abs().max().item() <= TOL


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_unscorable_completions_are_handled_as_trl_handles_them(fixed_batch, scale):
    """A completion no reward scored (TRL: every reward function returned None; ours: NaN)
    is left out of the baseline and gets advantage 0, on both sides."""
    saved = fixed_batch.rewards.clone()
    fixed_batch.rewards[[1, 4, 5, 6, 7]] = float("nan")  # one in the first group, all of the second
    try:
        theirs = harness.trl_advantages(fixed_batch, scale)
        ours = harness.our_advantages(fixed_batch, scale)
    finally:
        fixed_batch.rewards.copy_(saved)
    assert torch.isfinite(theirs).all() and torch.isfinite(ours).all()
    assert (theirs - ours).abs().max().item() <= TOL
    assert ours[1] == 0 and (ours[4:8] == 0).all() and (ours[[0, 2, 3]] != 0).any()


@pytest.mark.parametrize("micro_batches", [1, 2])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", harness.LOSS_TYPES)
def test_loss_and_gradient_match(fixed_batch, loss_type, beta, micro_batches):
    theirs, their_grads = harness.trl_loss(fixed_batch, loss_type, beta, micro_batches)
    ours, our_grads = harness.our_loss(fixed_batch, loss_type, beta, micro_batches)
    assert abs(theirs - ours) <= TOL, f"TRL {theirs} vs ours {ours}"
    assert harness.max_grad_diff(their_grads, our_grads) <= TOL


def test_fixed_batch_tells_the_loss_types_apart(fixed_batch):
    """Parity would prove little on a batch where the loss types coincide or nothing is clipped."""
    from vlrl.algo import aggregate_loss, per_token_loss
    from vlrl.sequences import completion_logprobs

    mb = harness.collate_rows(fixed_batch, harness.our_rows(fixed_batch, "group"))
    with torch.no_grad():
        logp, _ = completion_logprobs(fixed_batch.ours_model, mb, harness.PARITY_TEMPERATURE)
    tokens, info = per_token_loss(
        logp, fixed_batch.old_logp, mb.advantages, eps_low=harness.PARITY_EPS_LOW, eps_high=harness.PARITY_EPS_HIGH
    )
    mask = mb.completion_mask
    one = {
        lt: float(
            aggregate_loss(
                tokens,
                mask,
                lt,
                max_completion_length=harness.PARITY_MAX_COMPLETION,
                num_items_in_global_batch=mask.sum(),
            )
        )
        for lt in ("grpo", "bnpo", "dr_grpo")
    }
    assert (
        min(abs(one["grpo"] - one["bnpo"]), abs(one["grpo"] - one["dr_grpo"]), abs(one["bnpo"] - one["dr_grpo"])) > 1e-3
    )
    # over two micro-batches bnpo depends on the cut and dapo does not
    assert (
        abs(harness.our_loss(fixed_batch, "bnpo", 0.0, 2)[0] - harness.our_loss(fixed_batch, "dapo", 0.0, 2)[0]) > 1e-4
    )

    active = mask.bool()
    assert (info["clipped_low"] & active).any() and (info["clipped_high"] & active).any()
    # tokens between the two upper bounds: clip-higher (eps_high != eps_low) changes their gradient
    between = (info["ratio"] > 1 + harness.PARITY_EPS_LOW) & (info["ratio"] <= 1 + harness.PARITY_EPS_HIGH)
    assert (between & (mb.advantages[:, None] > 0) & active).any()
    adv = harness.our_advantages(fixed_batch, "group")
    assert torch.count_nonzero(adv) == adv.numel() - harness.PARITY_G  # only the zero-variance group is 0
