"""Tiny, randomly initialised Qwen2-VL / Qwen2.5-VL models for offline tests.

They are the real transformers architectures at toy width, with the shipped tiny
tokenizer, so every code path the project runs on a 7B checkpoint (processor, chat
template, M-RoPE with images, batched left-padded generation, saving and reloading)
runs here on a CPU in milliseconds and without any download.

Weights are a pure function of ``(kind, seed, sizes)``: initialisation runs under a
forked, seeded torch RNG, so building a model neither depends on nor disturbs the
caller's global random state.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "SIZES",
    "TOKENIZER_ENV",
    "build_tiny_model",
    "mrope_section_for",
    "save_tiny_model",
    "tiny_config",
    "tiny_processor",
    "tiny_tokenizer",
    "tiny_tokenizer_dir",
]

KINDS = ("qwen2_vl", "qwen2_5_vl")
TOKENIZER_ENV = "VLRL_TINY_TOKENIZER"

# Small enough that one 64x48 image becomes a handful of visual tokens (a 4x4 patch grid
# merges into 4 tokens), large enough that batches still mix different grid sizes.
DEFAULT_MAX_PIXELS = 112 * 112
DEFAULT_MIN_PIXELS = 28 * 28

# Named widths for `model=tiny-<size>` (build_tiny_model keyword arguments). The default
# (~0.5M parameters) is for plumbing tests; "learn" (~2M) is wide enough to learn bar
# and pie chart scripts in minutes on 2 CPU cores (benchmarks/learning_check.py).
SIZES: dict[str, dict[str, int]] = {
    "default": {},
    "learn": {"hidden_size": 128, "layers": 4, "intermediate_size": 512, "vision_hidden": 64},
}

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def tiny_tokenizer_dir() -> Path:
    """Directory holding the shipped tiny tokenizer.

    Looked up, in order: ``$VLRL_TINY_TOKENIZER``, then ``vlrl/assets/tiny_tokenizer``
    inside the package, where ``scripts/build_tiny_tokenizer.py`` writes it.
    """
    candidates: list[Path] = []
    if os.environ.get(TOKENIZER_ENV):
        candidates.append(Path(os.environ[TOKENIZER_ENV]))
    try:
        candidates.append(Path(str(resources.files("vlrl") / "assets" / "tiny_tokenizer")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - namespace/zip oddities
        pass
    for c in candidates:
        if all((c / f).is_file() for f in _TOKENIZER_FILES):
            return c
    raise FileNotFoundError(
        "tiny tokenizer not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + f". Run scripts/build_tiny_tokenizer.py or set ${TOKENIZER_ENV}."
    )


def tiny_tokenizer():
    """The shipped tokenizer as a transformers tokenizer (Qwen2Tokenizer class)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir()), local_files_only=True)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {KINDS}")


def tiny_processor(
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    kind: str = "qwen2_vl",
):
    """A Qwen2-VL (or Qwen2.5-VL) processor around the shipped tokenizer, built offline.

    ``max_pixels``/``min_pixels`` bound the resized image area exactly as on the real
    processors; they are applied to the video processor too so a stray video cannot
    blow up a CPU test.
    """
    _check_kind(kind)
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) > max_pixels ({max_pixels})")
    tok = tiny_tokenizer()
    size = {"shortest_edge": int(min_pixels), "longest_edge": int(max_pixels)}
    image_processor = Qwen2VLImageProcessor(size=dict(size))
    video_processor = Qwen2VLVideoProcessor(size=dict(size))
    cls = Qwen2VLProcessor if kind == "qwen2_vl" else Qwen2_5_VLProcessor
    return cls(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=video_processor,
        chat_template=tok.chat_template,
    )


def mrope_section_for(head_dim: int) -> list[int]:
    """(temporal, height, width) rotary split in Qwen's 2:3:3 ratio, summing to head_dim/2.

    Qwen's 7B uses [16, 24, 24] for head_dim 128; the same proportions keep the tiny
    model's M-RoPE exercising all three axes.
    """
    half = head_dim // 2
    if head_dim % 2 or half < 3:
        raise ValueError(f"head_dim must be even and >= 6 for M-RoPE, got {head_dim}")
    t = max(1, round(half * 2 / 8))
    h = (half - t) // 2
    return [t, h, half - t - h]


def _special_ids(tok) -> dict[str, int]:
    ids = {
        name: tok.convert_tokens_to_ids(token)
        for name, token in {
            "image_token_id": "<|image_pad|>",
            "video_token_id": "<|video_pad|>",
            "vision_start_token_id": "<|vision_start|>",
            "vision_end_token_id": "<|vision_end|>",
            "pad_token_id": "<|endoftext|>",
            "eos_token_id": "<|im_end|>",
            "bos_token_id": "<|endoftext|>",
        }.items()
    }
    missing = [k for k, v in ids.items() if v is None or v == tok.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks Qwen special tokens for {missing}")
    return ids


def tiny_config(
    kind: str = "qwen2_vl",
    *,
    vocab_size: int,
    special_ids: dict[str, int],
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    vision_depth: int = 2,
    vision_hidden: int = 32,
    vision_heads: int = 2,
    vision_intermediate: int | None = None,
    tie_word_embeddings: bool = False,
    max_position_embeddings: int = 32768,
):
    """The model config of a tiny model (no weights)."""
    _check_kind(kind)
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} not divisible by heads {heads}")
    if heads % kv_heads:
        raise ValueError(f"heads {heads} not divisible by kv_heads {kv_heads}")
    if vision_hidden % vision_heads:
        raise ValueError(f"vision_hidden {vision_hidden} not divisible by vision_heads {vision_heads}")
    head_dim = hidden_size // heads
    text = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_section_for(head_dim),
        },
        use_sliding_window=False,
        bos_token_id=special_ids["bos_token_id"],
        eos_token_id=special_ids["eos_token_id"],
        pad_token_id=special_ids["pad_token_id"],
        tie_word_embeddings=tie_word_embeddings,
    )
    common_vision = dict(
        depth=vision_depth,
        num_heads=vision_heads,
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    if kind == "qwen2_vl":
        # Qwen2-VL names the vision width embed_dim; its hidden_size is the merger's
        # output, which is spliced into the text stream and so must equal the text width.
        vision = dict(
            common_vision,
            embed_dim=vision_hidden,
            hidden_size=hidden_size,
            mlp_ratio=(vision_intermediate or 4 * vision_hidden) // vision_hidden,
        )
        cls = Qwen2VLConfig
    else:
        # Qwen2.5-VL: hidden_size is the vision width and out_hidden_size the merger's
        # output. Window attention everywhere except the listed blocks; as in the 7B
        # (blocks 7, 15, 23, 31 of 32) the last block attends globally.
        vision = dict(
            common_vision,
            hidden_size=vision_hidden,
            out_hidden_size=hidden_size,
            intermediate_size=vision_intermediate or 2 * vision_hidden,
            fullatt_block_indexes=[vision_depth - 1],
            window_size=112,
            tokens_per_second=2,
        )
        cls = Qwen2_5_VLConfig
    cfg = cls(
        text_config=text,
        vision_config=vision,
        image_token_id=special_ids["image_token_id"],
        video_token_id=special_ids["video_token_id"],
        vision_start_token_id=special_ids["vision_start_token_id"],
        vision_end_token_id=special_ids["vision_end_token_id"],
        tie_word_embeddings=tie_word_embeddings,
    )
    # Generic code (TRL, generation utilities, our trainer) reads these at the top level;
    # the text sub-config alone is where transformers 5 keeps them.
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(cfg, name, special_ids[name])
    cfg.dtype = "float32"
    return cfg


def build_tiny_model(
    kind: str = "qwen2_vl",
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vision_depth: int = 2,
    vision_hidden: int = 32,
    *,
    vision_heads: int = 2,
    intermediate_size: int = 128,
    vision_intermediate: int | None = None,
    tie_word_embeddings: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
) -> tuple[Any, Any]:
    """``(model, processor)``: a float32 tiny model with seeded random weights, in eval mode.

    Same arguments => bit-identical weights. vocab_size is the tokenizer's length, so
    every id the processor can emit has an embedding row.
    """
    _check_kind(kind)
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

    processor = tiny_processor(max_pixels=max_pixels, min_pixels=min_pixels, kind=kind)
    ids = _special_ids(processor.tokenizer)
    cfg = tiny_config(
        kind,
        vocab_size=len(processor.tokenizer),
        special_ids=ids,
        hidden_size=hidden_size,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        intermediate_size=intermediate_size,
        vision_depth=vision_depth,
        vision_hidden=vision_hidden,
        vision_heads=vision_heads,
        vision_intermediate=vision_intermediate,
        tie_word_embeddings=tie_word_embeddings,
    )
    cls = Qwen2VLForConditionalGeneration if kind == "qwen2_vl" else Qwen2_5_VLForConditionalGeneration
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg)
    model.to(torch.float32)
    gen = model.generation_config
    # As on the real Instruct checkpoints: a chat turn ends at <|im_end|>, a document at
    # <|endoftext|>; either stops generation.
    gen.eos_token_id = [ids["eos_token_id"], ids["pad_token_id"]]
    gen.pad_token_id = ids["pad_token_id"]
    gen.bos_token_id = ids["bos_token_id"]
    # Match from_pretrained, which returns models in eval mode; trainers call .train().
    model.eval()
    return model, processor


def save_tiny_model(
    path: str | os.PathLike, kind: str = "qwen2_vl", seed: int = 0, *, save_dtype: str | None = None, **kwargs
) -> Path:
    """Write a tiny model + processor to ``path``; returns the directory.

    The result loads offline with ``AutoModelForImageTextToText.from_pretrained(path)``
    and ``AutoProcessor.from_pretrained(path)``. ``kwargs`` go to :func:`build_tiny_model`;
    ``save_dtype="bfloat16"`` halves the files of a large random model.
    """
    model, processor = build_tiny_model(kind, seed, **kwargs)
    if save_dtype is not None:
        import torch

        model.to(getattr(torch, save_dtype))
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    return out
