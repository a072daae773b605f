"""The HF rollout engine on the tiny Qwen2-VL: batching, images, n samples, logprobs, stops."""

import pytest
import torch
from PIL import Image

from vlrl.rollout.base import SamplingParams
from vlrl.rollout.hf_engine import HFEngine


@pytest.fixture(scope="module")
def engine():
    from vlrl.models.tiny import build_tiny_model

    model, processor = build_tiny_model("qwen2_vl", seed=0)
    return HFEngine(model, processor)


def ask(text, *images):
    return [
        {
            "role": "user",
            "content": [*({"type": "image", "image": im} for im in images), {"type": "text", "text": text}],
        }
    ]


RED = Image.new("RGB", (64, 48), "red")
BLUE = Image.new("RGB", (40, 60), "blue")


def forward_logprobs(engine, request, completion, temperature):
    """Log-probs of the completion's tokens from a plain forward pass (no generate)."""
    model = engine.model
    batch = engine.encode([request])
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    kwargs = {}
    if "pixel_values" in batch:
        kwargs = dict(
            pixel_values=batch["pixel_values"],
            image_grid_thw=batch["image_grid_thw"],
            mm_token_type_ids=(ids == model.config.image_token_id).long(),
        )
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits
    start = len(completion.prompt_ids) - 1
    steps = logits[0, start : start + len(completion.token_ids)].float() / temperature
    steps[:, engine.suppress_ids] = float("-inf")  # the engine never samples image placeholders
    return torch.log_softmax(steps, -1).gather(1, torch.tensor(completion.token_ids)[:, None]).squeeze(1)


def test_batched_requests_with_different_image_counts(engine):
    reqs = [ask("Draw this chart.", RED), ask("Compare them.", RED, BLUE), ask("No image.")]
    out = engine.generate(reqs, SamplingParams(n=3, max_new_tokens=8, seed=0))
    assert [len(g) for g in out] == [3, 3, 3]
    for group in out:
        for c in group:
            assert len(c.token_ids) == len(c.logprobs) == 8 and c.finish_reason == "length"
            assert all(lp <= 0 for lp in c.logprobs)
    # the n samples of one prompt share the prompt but differ
    assert len({tuple(c.token_ids) for c in out[0]}) > 1
    assert out[0][0].prompt_ids == out[0][1].prompt_ids


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 1.0)])
def test_logprobs_are_the_sampling_distribution(engine, temperature, top_p):
    req = ask("Draw this chart.", RED)
    c = engine.generate([req], SamplingParams(n=1, temperature=temperature, top_p=top_p, max_new_tokens=6, seed=3))[0][
        0
    ]
    expected = forward_logprobs(engine, req, c, temperature)
    assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-4)


def test_top_p_restricts_sampling_to_the_nucleus(engine):
    req = ask("Draw this chart.", RED)
    # a vanishing nucleus holds only the most likely token: sampling becomes greedy
    c = engine.generate([req], SamplingParams(n=4, top_p=1e-6, max_new_tokens=4, seed=0))[0]
    greedy = engine.generate([req], SamplingParams(n=1, temperature=0, max_new_tokens=4))[0][0]
    assert {tuple(x.token_ids) for x in c} == {tuple(greedy.token_ids)}
    assert all(lp == pytest.approx(0.0, abs=1e-6) for lp in c[0].logprobs)  # renormalised nucleus
    # a wider nucleus renormalises: each token is likelier than under the full distribution
    wide = engine.generate([req], SamplingParams(n=1, top_p=0.5, max_new_tokens=4, seed=1))[0][0]
    full = forward_logprobs(engine, req, wide, 1.0)
    assert all(a > b for a, b in zip(wide.logprobs, full.tolist()))


def test_seed_makes_sampling_reproducible_and_greedy_is_deterministic(engine):
    req = [ask("Draw this chart.", RED)]
    a = engine.generate(req, SamplingParams(n=2, max_new_tokens=5, seed=11))
    b = engine.generate(req, SamplingParams(n=2, max_new_tokens=5, seed=11))
    assert [c.token_ids for c in a[0]] == [c.token_ids for c in b[0]]
    g1 = engine.generate(req, SamplingParams(n=1, temperature=0, max_new_tokens=5))[0][0]
    g2 = engine.generate(req, SamplingParams(n=1, temperature=0, max_new_tokens=5))[0][0]
    assert g1.token_ids == g2.token_ids


def test_eos_ends_a_completion_and_training_mode_is_restored(engine):
    model = engine.model
    eos = engine.eos_ids[0]
    bias = torch.zeros(
        model.config.vocab_size if hasattr(model.config, "vocab_size") else model.config.text_config.vocab_size
    )
    bias[eos] = 1e4  # force EOS as the first token
    head = model.get_output_embeddings()
    model.train()
    old = head.bias
    head.bias = torch.nn.Parameter(bias)
    try:
        c = engine.generate([ask("hi")], SamplingParams(n=1, max_new_tokens=5))[0][0]
    finally:
        head.bias = old
    assert c.finish_reason == "stop" and c.token_ids == [eos] and c.text == ""
    assert model.training


def test_chunking_keeps_request_order(engine):
    engine.max_batch_requests = 2
    try:
        reqs = [ask(f"request {i}") for i in range(5)]
        out = engine.generate(reqs, SamplingParams(n=1, max_new_tokens=2, seed=0))
        assert len(out) == 5
        assert all(len(g) == 1 for g in out)
        prompts = [engine.tokenizer.decode(g[0].prompt_ids) for g in out]
        assert [f"request {i}" in p for i, p in enumerate(prompts)] == [True] * 5
    finally:
        engine.max_batch_requests = 16


def test_progress_reports_every_decoding_step_across_batches(engine):
    seen = []
    engine.max_batch_requests = 2
    try:
        reqs = [ask(f"request {i}", RED) for i in range(3)]  # two batches of up to 5 steps
        plain = engine.generate(reqs, SamplingParams(n=2, max_new_tokens=5, seed=1))
        out = engine.generate(
            reqs, SamplingParams(n=2, max_new_tokens=5, seed=1), progress=lambda done, total: seen.append((done, total))
        )
    finally:
        engine.max_batch_requests = 16
    assert seen == [(k, 10) for k in range(1, 11)]
    assert [[c.token_ids for c in g] for g in out] == [[c.token_ids for c in g] for g in plain]  # same samples


def test_image_placeholders_are_never_sampled(engine):
    model = engine.model
    head = model.get_output_embeddings()
    bias = torch.zeros(head.weight.shape[0])
    pad = engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    bias[pad] = 1e4  # the model "wants" to emit an image placeholder
    old = head.bias
    head.bias = torch.nn.Parameter(bias)
    try:
        c = engine.generate([ask("hi", RED)], SamplingParams(n=2, max_new_tokens=4, seed=0))[0]
    finally:
        head.bias = old
    assert pad in engine.suppress_ids
    assert all(pad not in x.token_ids for x in c)


def test_images_are_preprocessed_once_per_request_and_shared_with_training(engine, monkeypatch):
    """The engine hands each request's image tensors to its n samples (one object), equal to
    what training would compute, so the trainer encodes nothing again."""
    from vlrl.sequences import encode_prompts
    from vlrl.tasks.base import StepSamples
    from vlrl.trainer import prompt_visions

    reqs = [ask("Draw this chart.", RED), ask("Compare them.", RED, BLUE), ask("No image.")]
    out = engine.generate(reqs, SamplingParams(n=2, max_new_tokens=4, seed=0))
    _, expected = encode_prompts(engine.processor, reqs)
    for group, want in zip(out, expected):
        assert group[0].vision is group[1].vision
        if want.pixel_values is None:
            assert group[0].vision.pixel_values is None
        else:
            assert torch.equal(group[0].vision.pixel_values, want.pixel_values)
            assert torch.equal(group[0].vision.image_grid_thw, want.image_grid_thw)

    flat = [c for g in out for c in g]
    samples = StepSamples(
        completions=flat,
        requests=reqs,
        request_of=[i // 2 for i in range(6)],
        advantages=torch.zeros(6),
        keep=torch.ones(6, dtype=torch.bool),
    )
    calls = []
    real = engine.processor.__class__.__call__
    monkeypatch.setattr(
        engine.processor.__class__,
        "__call__",
        lambda self, *a, **k: calls.append(len(k.get("text", []))) or real(self, *a, **k),
    )
    assert [v is c.vision for v, c in zip(prompt_visions(samples, engine.processor), flat)] == [True] * 6
    assert calls == []
    # an engine that hands on nothing (vLLM): each request is encoded once, not once per sample
    for c in flat:
        c.vision = None
    visions = prompt_visions(samples, engine.processor)
    assert calls == [3]
    assert visions[0] is visions[1] and torch.equal(visions[2].pixel_values, expected[1].pixel_values)
