"""vlrl.algo: advantages, GRPO-family losses and their global-batch semantics, DAPO sampling."""

from __future__ import annotations

import math

import pytest
import torch

from vlrl.algo import (
    LOSS_TYPES,
    BatchCounts,
    advantage_stats,
    aggregate_loss,
    count_global_batch,
    entropy_from_logits,
    group_advantages,
    loss_metrics,
    micro_batch_loss,
    micro_batch_loss_scale,
    overlong_mask,
    per_token_loss,
    selective_log_softmax,
    soft_overlong_penalty,
    zero_variance_groups,
)

EPS = 1e-4


def trl_reference_loss(
    per_token_logps,
    old_per_token_logps,
    ref_per_token_logps,
    advantages,
    completion_mask,
    *,
    loss_type,
    beta,
    epsilon_low,
    epsilon_high,
    max_completion_length,
    num_items_in_batch,
    num_processes,
    current_gradient_accumulation_steps,
):
    """TRL GRPOTrainer._compute_loss (token-level importance sampling, no delta, no vLLM IS
    correction), re-derived from its formulas for cross-checking; TRL is not installed.

    This is the value TRL hands to backward: TRL disables the Trainer's own gradient
    accumulation scaling and calls DeepSpeed with scale_wrt_gas=False, so nothing divides it
    further; DDP then averages gradients over the num_processes ranks. num_items_in_batch is the
    active-token count of the generation batch gathered over all ranks and micro-steps.
    """
    per_token_kl = torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    per_token_loss1 = coef_1 * advantages.unsqueeze(1)
    per_token_loss2 = coef_2 * advantages.unsqueeze(1)
    loss_tok = -torch.min(per_token_loss1, per_token_loss2)
    if beta != 0.0:
        loss_tok = loss_tok + beta * per_token_kl
    m = completion_mask.to(loss_tok.dtype)
    if loss_type == "grpo":
        loss = ((loss_tok * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
        loss = loss / current_gradient_accumulation_steps
    elif loss_type == "bnpo":
        loss = (loss_tok * m).sum() / m.sum().clamp(min=1.0)
        loss = loss / current_gradient_accumulation_steps
    elif loss_type == "dr_grpo":
        loss = (loss_tok * m).sum() / (loss_tok.size(0) * max_completion_length)
        loss = loss / current_gradient_accumulation_steps
    elif loss_type == "dapo":
        normalizer = num_items_in_batch / num_processes
        loss = (loss_tok * m).sum() / normalizer
    else:
        raise ValueError(loss_type)
    is_low_clipped = (coef_1 < 1 - epsilon_low) & (advantages.unsqueeze(1) < 0)
    is_high_clipped = (coef_1 > 1 + epsilon_high) & (advantages.unsqueeze(1) > 0)
    return loss, is_low_clipped, is_high_clipped


# ---------------------------------------------------------------------------------------------
# advantages
# ---------------------------------------------------------------------------------------------


def test_group_batch_none_advantages_by_hand():
    # G = 3. group 0: [1, 2, 3], mean 2, centred [-1, 0, 1], unbiased var (1+0+1)/2 = 1, std 1
    #        group 1: [2, 4, 6], mean 4, centred [-2, 0, 2], unbiased var (4+0+4)/2 = 4, std 2
    r = torch.tensor([1.0, 2.0, 3.0, 2.0, 4.0, 6.0])
    centred = torch.tensor([-1.0, 0.0, 1.0, -2.0, 0.0, 2.0])

    expected_group = torch.tensor([-1 / (1 + EPS), 0.0, 1 / (1 + EPS), -2 / (2 + EPS), 0.0, 2 / (2 + EPS)])
    assert torch.allclose(group_advantages(r, 3, "group"), expected_group, atol=1e-7)

    # batch: mean of all six = 18/6 = 3; squared deviations 4,1,0,1,1,9 sum 16;
    # unbiased var 16/5 = 3.2, std sqrt(3.2) = 1.788854...; numerator is still r - mean_g
    batch_std = math.sqrt(3.2)
    assert torch.allclose(group_advantages(r, 3, "batch"), centred / (batch_std + EPS), atol=1e-7)

    assert torch.equal(group_advantages(r, 3, "none"), centred)


def test_zero_variance_group_gets_zero_advantage_and_vision_zero_votes():
    # Vision-Zero decision rewards for 4 votes of one prompt: correct, N/A, wrong, correct
    votes = torch.tensor([1.0, -0.5, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    a = group_advantages(votes, 4, "group")
    # group 0: mean 0.125, centred [0.875, -0.625, -1.125, 0.875],
    # unbiased var (0.765625 + 0.390625 + 1.265625 + 0.765625) / 3 = 3.1875 / 3 = 1.0625
    std = math.sqrt(1.0625)
    expected = torch.tensor([0.875, -0.625, -1.125, 0.875]) / (std + EPS)
    assert torch.allclose(a[:4], expected, atol=1e-6)
    assert torch.equal(a[4:], torch.zeros(4))  # all-correct group: no signal
    assert zero_variance_groups(votes, 4).tolist() == [False, True]


def test_advantage_errors():
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(torch.zeros(4), 1, "group")
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, "nope")
    # G = 1 is fine without std scaling: every completion is its own baseline
    assert torch.equal(group_advantages(torch.tensor([1.0, 2.0]), 1, "none"), torch.zeros(2))


def test_advantage_stats():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0])
    a = group_advantages(r, 2)
    s = advantage_stats(a, r, 2)
    assert s["frac_zero_variance_groups"] == 0.5
    assert s["reward/mean"] == 0.75
    # group [0, 1]: mean 0.5, centred +-0.5, unbiased std sqrt((0.25 + 0.25) / 1) = sqrt(0.5)
    assert s["advantages/max"] == pytest.approx(0.5 / (math.sqrt(0.5) + EPS), rel=1e-6)
    assert set(s) >= {"advantages/mean", "advantages/std", "advantages/min", "reward/std", "reward/group_std_mean"}
    assert all(isinstance(v, float) for v in s.values())


# ---------------------------------------------------------------------------------------------
# per-token loss
# ---------------------------------------------------------------------------------------------


def _ratio_case(ratio, adv, eps_low=0.2, eps_high=0.2):
    old = torch.zeros(1, 1)
    logp = torch.full((1, 1), math.log(ratio), requires_grad=True)
    loss, info = per_token_loss(logp, old, torch.tensor([adv]), eps_low=eps_low, eps_high=eps_high)
    loss.sum().backward()
    return loss.item(), info["clipped_low"].item(), info["clipped_high"].item(), logp.grad.item()


def test_ratio_and_clip_cases():
    # A > 0, ratio 1.5: -min(1.5, 1.2) = -1.2, clipped high, no gradient
    loss, low, high, grad = _ratio_case(1.5, 1.0)
    assert loss == pytest.approx(-1.2) and high and not low and grad == 0.0
    # A < 0, ratio 1.5: -min(-1.5, -1.2) = 1.5, unclipped branch (pessimistic): gradient flows
    loss, low, high, grad = _ratio_case(1.5, -1.0)
    assert loss == pytest.approx(1.5) and not (low or high) and grad == pytest.approx(1.5)
    # A < 0, ratio 0.5: -min(-0.5, -0.8) = 0.8, clipped low, no gradient
    loss, low, high, grad = _ratio_case(0.5, -1.0)
    assert loss == pytest.approx(0.8) and low and not high and grad == 0.0
    # A > 0, ratio 0.5: -min(0.5, 0.8) = -0.5, unclipped; d/dlogp (-ratio) = -0.5
    loss, low, high, grad = _ratio_case(0.5, 1.0)
    assert loss == pytest.approx(-0.5) and not (low or high) and grad == pytest.approx(-0.5)


def test_asymmetric_clip_higher():
    # ratio 1.25, A = +1: symmetric eps 0.2 clips at 1.2 ...
    assert _ratio_case(1.25, 1.0)[0] == pytest.approx(-1.2)
    # ... DAPO clip-higher (eps_high 0.28) does not: -1.25
    loss, _, high, _ = _ratio_case(1.25, 1.0, eps_low=0.2, eps_high=0.28)
    assert loss == pytest.approx(-1.25) and not high
    # the low side still uses eps_low: ratio 0.75, A = -1 -> -min(-0.75, -0.8) = 0.8, clipped low
    loss, low, _, _ = _ratio_case(0.75, -1.0, eps_low=0.2, eps_high=0.28)
    assert loss == pytest.approx(0.8) and low
    # ratio 1.3 > 1.28 is clipped at 1.28
    assert _ratio_case(1.3, 1.0, eps_low=0.2, eps_high=0.28)[0] == pytest.approx(-1.28)


def test_k3_kl_by_hand():
    # logp = 0, ref = ln 2: d = ref - logp = ln 2, kl = e^d - d - 1 = 2 - 0.693147 - 1 = 0.306853
    # logp = 0, ref = -ln 2: kl = 0.5 + 0.693147 - 1 = 0.193147
    logp = torch.zeros(1, 2)
    ref = torch.tensor([[math.log(2.0), -math.log(2.0)]])
    loss, info = per_token_loss(logp, logp, torch.zeros(1), ref_logp=ref, beta=0.1)
    assert torch.allclose(info["kl"], torch.tensor([[0.306853, 0.193147]]), atol=1e-6)
    # A = 0, ratio 1: the loss is beta * kl only
    assert torch.allclose(loss, 0.1 * torch.tensor([[0.306853, 0.193147]]), atol=1e-7)
    with pytest.raises(ValueError, match="ref_logp"):
        per_token_loss(logp, logp, torch.zeros(1), beta=0.1)


def test_per_token_loss_matches_trl_formula():
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(4, 6, generator=g) * 3
    old = logp + 0.4 * torch.randn(4, 6, generator=g)
    ref = logp + 0.3 * torch.randn(4, 6, generator=g)
    adv = torch.randn(4, generator=g)
    mask = torch.ones(4, 6)
    loss, info = per_token_loss(logp, old, adv, ref, beta=0.04, eps_low=0.2, eps_high=0.28)
    trl, trl_low, trl_high = trl_reference_loss(
        logp,
        old,
        ref,
        adv,
        mask,
        loss_type="bnpo",
        beta=0.04,
        epsilon_low=0.2,
        epsilon_high=0.28,
        max_completion_length=6,
        num_items_in_batch=24,
        num_processes=1,
        current_gradient_accumulation_steps=1,
    )
    assert torch.allclose(aggregate_loss(loss, mask, "bnpo"), trl, atol=1e-6)
    assert torch.equal(info["clipped_low"], trl_low) and torch.equal(info["clipped_high"], trl_high)
    assert info["clipped_low"].any() and info["clipped_high"].any()


# ---------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------

L_2x3 = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M_2x3 = torch.tensor([[1, 1, 0], [1, 0, 0]])  # seq 0 has 2 tokens, seq 1 has 1


def test_aggregations_by_hand():
    # grpo: seq 0 (1+2)/2 = 1.5, seq 1 4/1 = 4, mean (1.5+4)/2 = 2.75
    assert aggregate_loss(L_2x3, M_2x3, "grpo").item() == pytest.approx(2.75)
    # bnpo: (1+2+4)/3 active tokens = 7/3
    assert aggregate_loss(L_2x3, M_2x3, "bnpo").item() == pytest.approx(7 / 3)
    # dr_grpo: 7 / (2 sequences * max_len 4) = 0.875
    assert aggregate_loss(L_2x3, M_2x3, "dr_grpo", max_completion_length=4).item() == pytest.approx(0.875)
    # dapo: 7 / 10 active tokens in the global batch = 0.7
    assert aggregate_loss(L_2x3, M_2x3, "dapo", num_items_in_global_batch=10).item() == pytest.approx(0.7)
    # an all-padding sequence counts as a sequence contributing 0 (TRL clamps its length to 1)
    L = torch.cat([L_2x3, torch.ones(1, 3)])
    M = torch.cat([M_2x3, torch.zeros(1, 3, dtype=torch.long)])
    assert aggregate_loss(L, M, "grpo").item() == pytest.approx(5.5 / 3)


def test_aggregation_errors():
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate_loss(L_2x3, M_2x3, "dr_grpo")
    with pytest.raises(ValueError, match="exceeds"):
        aggregate_loss(L_2x3, M_2x3, "dr_grpo", max_completion_length=2)
    with pytest.raises(ValueError, match="num_items_in_global_batch"):
        aggregate_loss(L_2x3, M_2x3, "dapo")
    with pytest.raises(ValueError, match="loss_type"):
        aggregate_loss(L_2x3, M_2x3, "ppo")


def test_count_global_batch():
    c = count_global_batch([M_2x3, torch.ones(3, 5)])
    assert c == BatchCounts(num_sequences=5, active_tokens=3 + 15)


# ---------------------------------------------------------------------------------------------
# the global-batch equivalence: micro-batches x accumulation x ranks == closed form on the whole
# ---------------------------------------------------------------------------------------------

N_SEQ, T, D, MAX_LEN = 12, 7, 5, 9
BETA, EPS_LOW, EPS_HIGH = 0.04, 0.2, 0.28


def _toy_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    X = torch.randn(N_SEQ, T, D, generator=g, dtype=dt)  # features: logp = X @ w - 2 is linear in the leaf w
    w0 = 0.3 * torch.randn(D, generator=g, dtype=dt)
    logp0 = X @ w0 - 2
    old = logp0 + 0.3 * torch.randn(N_SEQ, T, generator=g, dtype=dt)  # ratios spread over the clip range
    ref = logp0 + 0.3 * torch.randn(N_SEQ, T, generator=g, dtype=dt)
    adv = torch.randn(N_SEQ, generator=g, dtype=dt)
    lengths = torch.tensor([7, 1, 3, 0, 5, 7, 2, 6, 4, 1, 7, 3])  # uneven, one empty completion
    mask = torch.arange(T) < lengths.unsqueeze(1)  # [N, T] bool
    return X, w0, old, ref, adv, mask


def _tokens(X, w, old, ref, adv):
    logp = X @ w - 2
    return per_token_loss(logp, old, adv, ref, beta=BETA, eps_low=EPS_LOW, eps_high=EPS_HIGH)


def _closed_form(loss_tok, mask, loss_type, sizes):
    """The global objectives written out from their definitions (not via the package)."""
    m = mask.to(loss_tok.dtype)
    s = (loss_tok * m).sum()
    if loss_type == "grpo":
        return ((loss_tok * m).sum(1) / m.sum(1).clamp(min=1)).sum() / loss_tok.shape[0]
    if loss_type == "dr_grpo":
        return s / (loss_tok.shape[0] * MAX_LEN)
    if loss_type == "dapo":
        return s / m.sum()
    # bnpo (TRL): mean over every micro-batch of every rank of its own token mean
    means = [(loss * mm).sum() / mm.sum().clamp(min=1) for loss, mm in zip(loss_tok.split(sizes), m.split(sizes))]
    return torch.stack(means).mean()


def _split_sizes(n, parts, seed):
    # random composition of n into `parts` positive sizes: micro-batches of unequal size
    g = torch.Generator().manual_seed(seed)
    cuts = sorted(torch.randperm(n - 1, generator=g)[: parts - 1].add(1).tolist())
    return [b - a for a, b in zip([0] + cuts, cuts + [n])]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("engine_divides", [True, False])
def test_micro_batches_reproduce_global_gradient(loss_type, k, world, engine_divides):
    X, w0, old, ref, adv, mask = _toy_problem()
    sizes = _split_sizes(N_SEQ, k * world, seed=k * 10 + world)
    assert len(set(sizes)) > 1 or k * world == 1
    starts = [sum(sizes[:j]) for j in range(len(sizes))]
    micro = [slice(a, a + n) for a, n in zip(starts, sizes)]  # micro-batch j = rank j // k, step j % k

    # every rank learns the global counts before its first micro-step (all-reduce in real runs)
    counts = count_global_batch([mask[s] for s in micro])
    assert counts == BatchCounts(N_SEQ, int(mask.sum()))

    rank_grads = []
    for r in range(world):
        w = w0.clone().requires_grad_(True)  # this rank's replica
        for m in range(k):
            s = micro[r * k + m]
            loss_tok, _ = _tokens(X[s], w, old[s], ref[s], adv[s])
            loss = micro_batch_loss(
                loss_tok,
                mask[s],
                loss_type,
                counts=counts,
                num_micro_steps=k,
                world_size=world,
                max_completion_length=MAX_LEN,
                engine_scales_by_accumulation=engine_divides,
            )
            (loss / k if engine_divides else loss).backward()  # DeepSpeed's scale_wrt_gas, grads accumulate
        rank_grads.append(w.grad)
    engine_grad = torch.stack(rank_grads).mean(0)  # all-reduce average over ranks

    w = w0.clone().requires_grad_(True)
    loss_tok, info = _tokens(X, w, old, ref, adv)
    assert info["clipped_low"][mask].any() and info["clipped_high"][mask].any()  # clipping is exercised
    target = _closed_form(loss_tok, mask, loss_type, sizes)
    (full_grad,) = torch.autograd.grad(target, w)

    assert torch.allclose(engine_grad, full_grad, atol=1e-6, rtol=0), (engine_grad, full_grad)


def test_unscaled_micro_losses_would_be_wrong():
    # guard against a vacuous equivalence test: plain per-micro-batch aggregation over an
    # uneven split (k=3, 2 ranks) does not give the global grpo / dapo gradient
    X, w0, old, ref, adv, mask = _toy_problem()
    sizes = _split_sizes(N_SEQ, 6, seed=32)
    for loss_type in ("grpo", "dapo"):
        w = w0.clone().requires_grad_(True)
        total = 0
        for s in torch.arange(N_SEQ).split(sizes):
            loss_tok, _ = _tokens(X[s], w, old[s], ref[s], adv[s])
            n_tok = mask[s].sum() if loss_type == "dapo" else None
            total = total + aggregate_loss(loss_tok, mask[s], loss_type, num_items_in_global_batch=n_tok) / 6
        (naive,) = torch.autograd.grad(total, w)
        w = w0.clone().requires_grad_(True)
        loss_tok, _ = _tokens(X, w, old, ref, adv)
        (full,) = torch.autograd.grad(_closed_form(loss_tok, mask, loss_type, sizes), w)
        assert not torch.allclose(naive, full, atol=1e-6)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_micro_batch_loss_matches_trl_with_equal_micro_batches(loss_type):
    # TRL's loss is what goes to backward with no further 1/k; ours is divided by k by the
    # engine. With equal micro-batches (TRL's setting) the two must agree value for value.
    X, w0, old, ref, adv, mask = _toy_problem()
    k, world = 3, 2
    micro = torch.arange(N_SEQ).split(N_SEQ // (k * world))
    counts = count_global_batch([mask[s] for s in micro])
    for s in micro:
        loss_tok, _ = _tokens(X[s], w0, old[s], ref[s], adv[s])
        ours = micro_batch_loss(
            loss_tok,
            mask[s],
            loss_type,
            counts=counts,
            num_micro_steps=k,
            world_size=world,
            max_completion_length=MAX_LEN,
        )
        theirs, _, _ = trl_reference_loss(
            X[s] @ w0 - 2,
            old[s],
            ref[s],
            adv[s],
            mask[s],
            loss_type=loss_type,
            beta=BETA,
            epsilon_low=EPS_LOW,
            epsilon_high=EPS_HIGH,
            max_completion_length=MAX_LEN,
            num_items_in_batch=counts.active_tokens,
            num_processes=world,
            current_gradient_accumulation_steps=k,
        )
        assert torch.allclose(ours / k, theirs, atol=1e-12)


def test_micro_batch_loss_scale_values():
    kw = dict(num_micro_steps=4, world_size=2, micro_num_sequences=2, global_num_sequences=16)
    assert micro_batch_loss_scale("grpo", **kw) == 1.0  # 4 * 2 * 2 / 16
    assert micro_batch_loss_scale("dr_grpo", **{**kw, "micro_num_sequences": 3}) == 1.5
    assert micro_batch_loss_scale("bnpo", **kw) == 1.0
    assert micro_batch_loss_scale("dapo", **kw) == 8.0
    assert micro_batch_loss_scale("dapo", **kw, engine_scales_by_accumulation=False) == 2.0
    assert micro_batch_loss_scale("bnpo", **kw, engine_scales_by_accumulation=False) == 0.25
    with pytest.raises(ValueError):
        micro_batch_loss_scale("grpo", **{**kw, "micro_num_sequences": 17})


# ---------------------------------------------------------------------------------------------
# metrics, log-probs, entropy
# ---------------------------------------------------------------------------------------------


def test_loss_metrics():
    # 4 active tokens: ratios 1.5 (A>0, clipped high), 0.5 (A<0, clipped low), 1.0, 1.0
    logp = torch.log(torch.tensor([[1.5, 1.0, 9.0], [0.5, 1.0, 9.0]]))
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    _, info = per_token_loss(logp, torch.zeros(2, 3), adv, ref_logp=torch.zeros(2, 3))
    m = loss_metrics(info, mask, entropy=torch.ones(2, 3))
    assert m["clip/low"] == 0.25 and m["clip/high"] == 0.25 and m["clip/total"] == 0.5
    assert m["ratio/mean"] == pytest.approx((1.5 + 1 + 0.5 + 1) / 4)
    # kl at ratio r (ref = 0): 1/r + ln r - 1 -> 1.5: 0.0721318, 0.5: 0.3068528, 1: 0
    assert m["kl"] == pytest.approx((1 / 1.5 + math.log(1.5) - 1 + 2 + math.log(0.5) - 1) / 4, rel=1e-5)
    assert m["entropy"] == 1.0


def test_selective_log_softmax():
    g = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(3, 5, 50, generator=g)
    ids = torch.randint(0, 50, (3, 5), generator=g)
    expected = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(selective_log_softmax(logits, ids), expected, atol=1e-5)
    bf = logits.bfloat16()
    expected_bf = torch.log_softmax(bf, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    out_bf = selective_log_softmax(bf, ids)
    assert out_bf.dtype == torch.bfloat16 and torch.equal(out_bf, expected_bf)


def test_entropy_from_logits():
    g = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(2, 7, 30, generator=g)
    p = torch.softmax(logits, -1)
    naive = -(p * torch.log(p)).sum(-1)
    assert torch.allclose(entropy_from_logits(logits, chunk_size=4), naive, atol=1e-5)
    # uniform over V: log V
    assert torch.allclose(entropy_from_logits(torch.zeros(1, 2, 8)), torch.full((1, 2), math.log(8)))


# ---------------------------------------------------------------------------------------------
# DAPO sampling
# ---------------------------------------------------------------------------------------------


def test_overlong_mask_and_soft_penalty():
    lengths = torch.tensor([10, 15, 16, 18, 20, 25])
    # max_len 20, cache 5: free up to 15, then (15 - len)/5, -1 at and beyond 20
    pen = soft_overlong_penalty(lengths, max_len=20, cache=5)
    assert torch.allclose(pen, torch.tensor([0.0, 0.0, -0.2, -0.6, -1.0, -1.0]))
    assert torch.allclose(soft_overlong_penalty(lengths, 20, 5, factor=0.5), 0.5 * pen)
    assert overlong_mask(lengths, 20).tolist() == [True, True, True, True, False, False]
    eos = torch.tensor([True, True, True, True, True, False])  # EOS exactly at the limit is complete
    assert overlong_mask(lengths, 20, eos_found=eos).tolist() == eos.tolist()
    mask = torch.ones(6, 3) * overlong_mask(lengths, 20)[:, None]
    assert mask.sum().item() == 12
    with pytest.raises(ValueError):
        soft_overlong_penalty(lengths, 20, 0)


def test_batch_scaling_takes_the_global_std_when_given():
    # two ranks' shards of one global batch: each divides by the std of all four rewards
    full = torch.tensor([0.0, 1.0, 3.0, 5.0])
    whole = group_advantages(full, 2, "batch")
    std = float(full.std())  # Bessel-corrected, as the ranks compute it from their sums
    halves = torch.cat(
        [group_advantages(full[:2], 2, "batch", batch_std=std), group_advantages(full[2:], 2, "batch", batch_std=std)]
    )
    assert torch.allclose(halves, whole)
    assert torch.allclose(whole, torch.tensor([-0.5, 0.5, -1.0, 1.0]) / (std + 1e-4))
    # without the global std a shard's own std gives other advantages
    assert not torch.allclose(group_advantages(full[:2], 2, "batch"), whole[:2])


def test_unscorable_completions_are_left_out_and_get_zero_advantage():
    """NaN = no reward could score the completion: TRL excludes it from its group's mean
    and std and gives it advantage 0 (hand-computed on two groups of 4)."""
    r = torch.tensor([1.0, float("nan"), 0.0, 0.5, float("nan")] + [float("nan")] * 3)
    a = group_advantages(r, 4, "group")
    # group 1 scored [1, 0, 0.5]: mean 0.5, unbiased std 0.5
    expected = [0.5 / (0.5 + EPS), 0.0, -0.5 / (0.5 + EPS), 0.0]
    assert a[:4].tolist() == pytest.approx(expected, rel=1e-6)
    assert a[4:].tolist() == [0.0] * 4  # nothing scorable in group 2
    assert group_advantages(r, 4, "none")[:4].tolist() == pytest.approx([0.5, 0.0, -0.5, 0.0])
    # batch std over the three scored rewards (the same 0.5)
    assert group_advantages(r, 4, "batch")[:4].tolist() == pytest.approx(expected, rel=1e-6)
    assert zero_variance_groups(r, 4).tolist() == [False, True]
    s = advantage_stats(a, r, 4)
    assert s["reward/mean"] == pytest.approx(0.5) and s["reward/unscorable"] == 5.0
