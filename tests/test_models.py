"""Tiny Qwen-VL models, the shipped tokenizer and the model loader, all offline on CPU."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from PIL import Image  # noqa: E402

from vlrl.models import build_tiny_model, load_model_and_processor, save_tiny_model, tiny_processor  # noqa: E402
from vlrl.models.loading import find_vision_tower, resolve_dtype  # noqa: E402
from vlrl.models.tiny import mrope_section_for, tiny_tokenizer_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "chartmimic_samples"
KINDS = ("qwen2_vl", "qwen2_5_vl")

SPECIALS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|endoftext|>",
    "<|vision_pad|>",
)


def _img(w: int, h: int, rgb: tuple[int, int, int]) -> Image.Image:
    # A gradient, not a flat colour, so patches differ and the vision tower does real work.
    ramp = Image.linear_gradient("L").resize((w, h))
    return Image.composite(Image.new("RGB", (w, h), rgb), Image.new("RGB", (w, h), "white"), ramp)


def _user(n_images: int, text: str) -> list[dict]:
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def _mixed_batch(processor):
    """Two prompts with 1 and 2 images, left-padded into one batch, plus the per-row inputs."""
    rows = [
        (_user(1, "Reproduce this chart."), [_img(64, 48, (200, 30, 30))]),
        (
            _user(2, "Which of the two charts has more bars? Explain carefully."),
            [_img(100, 60, (20, 200, 30)), _img(30, 90, (20, 20, 230))],
        ),
    ]
    texts = [processor.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m, _ in rows]
    images = [ims for _, ims in rows]
    batch = processor(text=texts, images=images, padding=True, return_tensors="pt")
    singles = [processor(text=[t], images=ims, return_tensors="pt") for t, ims in zip(texts, images)]
    return batch, singles


def _labels(enc, processor):
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    labels[labels == processor.image_token_id] = -100
    return labels


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("qwen2_vl", seed=0)


@pytest.fixture(scope="module")
def tiny25():
    return build_tiny_model("qwen2_5_vl", seed=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_ckpt")
    return {kind: save_tiny_model(root / kind, kind, seed=7) for kind in KINDS}


def _by_kind(kind, tiny, tiny25):
    return tiny if kind == "qwen2_vl" else tiny25


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


def test_tokenizer_files_shipped_and_small():
    d = ROOT / "vlrl" / "assets" / "tiny_tokenizer"
    if not os.environ.get("VLRL_TINY_TOKENIZER"):
        assert tiny_tokenizer_dir() == d
    names = {p.name for p in d.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"} <= names
    assert sum(p.stat().st_size for p in d.iterdir()) < 1_000_000


def test_tokenizer_build_is_deterministic_and_up_to_date():
    spec = importlib.util.spec_from_file_location("build_tiny_tokenizer", ROOT / "scripts" / "build_tiny_tokenizer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # Rebuilds into a temp dir and compares byte for byte with the shipped files.
    assert mod.main(["--check"]) == 0


def test_tokenizer_specials_and_roundtrip(tiny):
    from vlrl.datasets.synth import generate_specs

    tok = tiny[1].tokenizer
    assert 2000 <= len(tok) <= 4100
    for t in SPECIALS:
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [t]
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    assert tok.padding_side == "left"

    # Shipped samples were in the training corpus; seed-123 specs and odd text were not.
    texts = [p.read_text() for p in sorted(SAMPLES.glob("*.py"))]
    texts += [s.to_code() for s in generate_specs(5, seed=123)]
    texts += ["x\t=  'héllo wörld ✓ 中文'\r\n\n    ", "```python\nplt.plot([1,2])\n```", "\\boxed{N/A}"]
    for code in texts:
        ids = tok.encode(code, add_special_tokens=False)
        assert tok.decode(ids) == code
    # Learnt merges actually compress code (a byte-level fallback would give ~1 token/char).
    code = (SAMPLES / "bar_1.py").read_text()
    assert len(tok.encode(code, add_special_tokens=False)) < len(code) / 2.5


def test_chat_template_renders_system_user_image_assistant(tiny):
    processor = tiny[1]
    msgs = [
        {"role": "system", "content": "You are an expert Python developer."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Reproduce the chart."}]},
        {"role": "assistant", "content": "```python\nimport matplotlib.pyplot as plt\n```"},
    ]
    expected = (
        "<|im_start|>system\nYou are an expert Python developer.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Reproduce the chart.<|im_end|>\n"
        "<|im_start|>assistant\n```python\nimport matplotlib.pyplot as plt\n```<|im_end|>\n"
    )
    assert processor.apply_chat_template(msgs, tokenize=False) == expected
    assert processor.tokenizer.apply_chat_template(msgs, tokenize=False) == expected
    # Qwen's default system turn and the generation prompt.
    got = processor.apply_chat_template(_user(0, "hi"), tokenize=False, add_generation_prompt=True)
    assert got == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


# ---------------------------------------------------------------------------
# Model construction
# ---------------------------------------------------------------------------


def test_weights_deterministic_per_seed_and_global_rng_untouched(tiny):
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    again, _ = build_tiny_model("qwen2_vl", seed=0)
    assert torch.equal(torch.rand(3), expected)

    other, _ = build_tiny_model("qwen2_vl", seed=1)
    ref = tiny[0].state_dict()
    assert ref.keys() == again.state_dict().keys()
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in ref.items())
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in ref.items())


@pytest.mark.parametrize("kind", KINDS)
def test_config_invariants(kind, tiny, tiny25):
    model, processor = _by_kind(kind, tiny, tiny25)
    cfg, tok = model.config, processor.tokenizer
    assert cfg.model_type == kind
    assert cfg.text_config.vocab_size == len(tok)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.eos_token_id == tok.eos_token_id and cfg.pad_token_id == tok.pad_token_id
    assert tok.eos_token_id in model.generation_config.eos_token_id

    text = cfg.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
    vision = cfg.vision_config
    if kind == "qwen2_vl":
        assert vision.hidden_size == text.hidden_size
    else:
        assert vision.out_hidden_size == text.hidden_size
        assert all(0 <= i < vision.depth for i in vision.fullatt_block_indexes)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_mrope_section_matches_qwen_7b():
    assert mrope_section_for(128) == [16, 24, 24]
    assert sum(mrope_section_for(16)) == 8


def test_tiny_processor_pixel_bounds():
    p = tiny_processor(max_pixels=56 * 56, min_pixels=28 * 28)
    enc = p.image_processor(images=[_img(400, 300, (1, 2, 3))], return_tensors="pt")
    t, h, w = enc["image_grid_thw"][0].tolist()
    assert h * w * 14 * 14 <= 56 * 56
    with pytest.raises(ValueError):
        tiny_processor(max_pixels=28 * 28, min_pixels=56 * 56)


# ---------------------------------------------------------------------------
# Forward, backward, generate
# ---------------------------------------------------------------------------


def test_single_image_forward_backward(tiny):
    model, processor = tiny
    msgs = _user(1, "Reproduce the chart.") + [
        {"role": "assistant", "content": "```python\nimport matplotlib.pyplot as plt\nplt.bar([1], [2])\n```"}
    ]
    text = processor.apply_chat_template(msgs, tokenize=False)
    enc = processor(text=[text], images=[_img(64, 48, (200, 30, 30))], return_tensors="pt")
    # transformers 5 builds M-RoPE positions from mm_token_type_ids; the processor supplies it.
    assert {"input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids"} <= set(enc)
    n_img = int((enc["input_ids"] == processor.image_token_id).sum())
    assert n_img == int(enc["image_grid_thw"].prod(-1).sum()) // 4 > 0
    assert int(enc["mm_token_type_ids"].sum()) == n_img

    model.zero_grad()
    out = model(**enc, labels=_labels(enc, processor))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["model.visual.patch_embed.proj.weight"].abs().sum() > 0
    assert grads["lm_head.weight"].abs().sum() > 0
    model.zero_grad()


@pytest.mark.parametrize("kind", KINDS)
def test_mixed_image_counts_left_padded_batch(kind, tiny, tiny25):
    model, processor = _by_kind(kind, tiny, tiny25)
    batch, singles = _mixed_batch(processor)
    grid = batch["image_grid_thw"]
    assert grid.shape == (3, 3)  # one row per image, across the batch
    assert batch["pixel_values"].shape[0] == int(grid.prod(-1).sum())  # patches concatenated
    assert batch["mm_token_type_ids"].shape == batch["input_ids"].shape
    mask = batch["attention_mask"]
    assert mask[0, 0] == 0 and bool(mask[:, -1].all())  # left padding

    with torch.no_grad():
        out = model(**batch, labels=_labels(batch, processor))
        assert torch.isfinite(out.loss)
        # Padding must not change what a row computes (positions, masks, image order).
        for i, single in enumerate(singles):
            alone = model(**single).logits[0, -1]
            torch.testing.assert_close(out.logits[i, -1], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_generate_batched_left_padded(kind, tiny, tiny25):
    model, processor = _by_kind(kind, tiny, tiny25)
    batch, singles = _mixed_batch(processor)
    prompt_len = batch["input_ids"].shape[1]
    with torch.no_grad():
        before = model(**singles[0]).logits[0, -1]
        out = model.generate(**batch, max_new_tokens=5, do_sample=False)
        assert prompt_len < out.shape[1] <= prompt_len + 5
        assert torch.equal(out[:, :prompt_len], batch["input_ids"])
        # Greedy decoding of a left-padded row must match decoding it alone. A row that
        # stops early on EOS is padded in the batch, so compare the single run's length.
        for i, single in enumerate(singles):
            alone = model.generate(**single, max_new_tokens=5, do_sample=False)
            new = alone[0, single["input_ids"].shape[1] :]
            assert torch.equal(out[i, prompt_len : prompt_len + len(new)], new)
        sampled = model.generate(**batch, max_new_tokens=5, do_sample=True, temperature=1.0)
        assert sampled.shape[1] <= prompt_len + 5
    # Scoring prompt + completion in one forward (what a policy-gradient step does) must
    # reproduce the greedy choices. mm_token_type_ids has to cover the completion too
    # (zeros: text); transformers 5 fails with an IndexError otherwise.
    n_new = out.shape[1] - prompt_len
    full = dict(batch)
    full["input_ids"] = out
    full["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, n_new), value=1)
    full["mm_token_type_ids"] = torch.nn.functional.pad(batch["mm_token_type_ids"], (0, n_new))
    with torch.no_grad():
        logits = model(**full).logits[:, prompt_len - 1 : -1]
    pad = processor.tokenizer.pad_token_id
    for i in range(2):
        gen = out[i, prompt_len:]
        stop = int((gen == pad).nonzero()[0]) if (gen == pad).any() else n_new
        assert torch.equal(logits[i, :stop].argmax(-1), gen[:stop])
    # Generation leaves cached rope deltas on the model; a later full forward must ignore them.
    with torch.no_grad():
        torch.testing.assert_close(model(**singles[0]).logits[0, -1], before)
    texts = processor.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


# ---------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_reload_with_auto_classes(kind, saved):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = saved[kind]
    assert (path / "config.json").is_file()
    model = AutoModelForImageTextToText.from_pretrained(str(path), local_files_only=True)
    processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    ref, ref_proc = build_tiny_model(kind, seed=7)
    assert type(model) is type(ref) and type(processor) is type(ref_proc)
    assert model.dtype == torch.float32
    ref_sd, sd = ref.state_dict(), model.state_dict()
    assert ref_sd.keys() == sd.keys() and all(torch.equal(v, sd[k]) for k, v in ref_sd.items())
    assert processor.tokenizer.encode("plt.bar(x, y)") == ref_proc.tokenizer.encode("plt.bar(x, y)")
    assert processor.image_processor.size["longest_edge"] == 112 * 112
    assert processor.chat_template == ref_proc.chat_template
    assert model.generation_config.eos_token_id == ref.generation_config.eos_token_id

    batch, _ = _mixed_batch(processor)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 2


def test_load_checkpoint_dir_freeze_and_checkpointing(saved):
    model, processor = load_model_and_processor(
        str(saved["qwen2_5_vl"]),
        freeze_vision=True,
        gradient_checkpointing=True,
        min_pixels=28 * 28,
        max_pixels=56 * 56,
    )
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert processor.image_processor.size["longest_edge"] == 56 * 56
    assert processor.image_processor.size["shortest_edge"] == 28 * 28
    vision = find_vision_tower(model)
    assert vision is model.model.visual
    assert not any(p.requires_grad for p in vision.parameters())
    vision_ids = {id(p) for p in vision.parameters()}
    assert all(p.requires_grad for p in model.parameters() if id(p) not in vision_ids)
    assert model.is_activation_checkpointing

    model.train()
    batch, _ = _mixed_batch(processor)
    assert batch["image_grid_thw"].prod(-1).max() * 14 * 14 <= 56 * 56
    loss = model(**batch, labels=_labels(batch, processor)).loss
    loss.backward()
    assert all(p.grad is None for p in vision.parameters())
    assert model.lm_head.weight.grad is not None


def test_load_tiny_by_name_and_dtype():
    model, processor = load_model_and_processor("tiny")
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert model.dtype == torch.float32 and processor.tokenizer.padding_side == "left"
    assert all(p.requires_grad for p in model.parameters())
    model25, _ = load_model_and_processor("tiny-qwen2_5_vl", dtype="bfloat16", freeze_vision=True)
    assert type(model25).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model25.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in model25.model.visual.parameters())

    assert resolve_dtype("auto", "cpu") == torch.float32
    if not torch.cuda.is_available():
        assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("fp32", "cuda") == torch.float32
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int8", "cpu")


def test_load_missing_or_invalid_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        load_model_and_processor(str(missing))
    # A hub-style id is not fetched: it is just a path that does not exist.
    with pytest.raises(FileNotFoundError, match="Qwen/Qwen2-VL-2B-Instruct"):
        load_model_and_processor("Qwen/Qwen2-VL-2B-Instruct")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model_and_processor(str(tmp_path / "empty"))
