"""One entry point for models: tiny offline models by name, real checkpoints by local path.

Nothing here touches the network: a path that is not a local checkpoint directory is an
error, never a hub id to fetch. Weights are fetched ahead of time with whatever tool the
cluster uses and then passed by path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlrl.models.tiny import SIZES, build_tiny_model

__all__ = ["TINY_NAMES", "find_vision_tower", "load_model_and_processor", "resolve_dtype"]

# Names that build a tiny model instead of loading a checkpoint.
TINY_NAMES = {
    "tiny": "qwen2_vl",
    "tiny-qwen2_vl": "qwen2_vl",
    "tiny-qwen2_5_vl": "qwen2_5_vl",
    "tiny-learn": "qwen2_vl",
}
# Tiny names with a width other than the default (vlrl.models.tiny.SIZES).
TINY_SIZE = {"tiny-learn": "learn"}

_DTYPE_ALIASES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def resolve_dtype(dtype: Any, device: str = "cpu"):
    """The torch dtype to load with (the contract of ``ModelConfig.dtype``).

    ``"auto"`` is bfloat16 on a CUDA device that supports it and float32 everywhere else:
    bf16 is what Qwen-VL checkpoints are trained and stored in, while on CPU bf16 matmuls
    are slow and some kernels are missing, so half precision there must be asked for.
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if not str(device).startswith("cuda"):
            return torch.float32
        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return torch.float32  # pre-Ampere GPUs would emulate bf16 slowly
        return torch.bfloat16
    name = _DTYPE_ALIASES.get(str(dtype).lower())
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}; expected 'auto', 'float32' or 'bfloat16'")
    return getattr(torch, name)


def find_vision_tower(model):
    """The vision encoder module (patch embed, blocks and merger).

    transformers 4.x exposed it as ``model.visual`` on the generation class; 5.x nests it
    as ``model.model.visual`` (and other wrappers such as PEFT add more levels), so
    search a few known spots, then any submodule named ``visual``.
    """
    for path in ("visual", "model.visual", "base_model.model.model.visual", "base_model.model.visual"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == "visual":
            return module
    raise AttributeError(f"no vision tower ('visual' submodule) found in {type(model).__name__}")


def _apply_pixels(processor, min_pixels: int | None, max_pixels: int | None) -> None:
    if min_pixels is None and max_pixels is None:
        return
    ip = processor.image_processor
    size = dict(getattr(ip, "size", None) or {})
    if min_pixels is not None:
        size["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        size["longest_edge"] = int(max_pixels)
    if size.get("shortest_edge", 0) > size.get("longest_edge", float("inf")):
        raise ValueError(f"min_pixels ({size['shortest_edge']}) > max_pixels ({size['longest_edge']})")
    # transformers 5 resizes from size{shortest_edge, longest_edge} (a SizeDict; keep the
    # type it had), 4.x read the min_pixels/max_pixels attributes. Set whichever exists.
    current = getattr(ip, "size", None)
    ip.size = type(current)(**size) if current is not None and not isinstance(current, dict) else size
    for attr, key in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
        if hasattr(ip, attr):
            setattr(ip, attr, size[key])


def _check_checkpoint_dir(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"model path {str(p)!r} does not exist (models are loaded from local directories "
            f"only; use 'tiny' or 'tiny-qwen2_5_vl' for the built-in test models)"
        )
    if not p.is_dir() or not (p / "config.json").is_file():
        raise FileNotFoundError(f"model path {str(p)!r} is not a checkpoint directory: no config.json in it")
    return p


def load_model_and_processor(
    path_or_tiny: str,
    *,
    dtype: str = "auto",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    freeze_vision: bool = False,
    gradient_checkpointing: bool = False,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[Any, Any]:
    """``(model, processor)`` from ``"tiny"``/``"tiny-qwen2_5_vl"`` or a local checkpoint dir.

    - ``dtype``: ``"auto"`` (bfloat16 on a bf16-capable CUDA device, float32 otherwise),
      ``"float32"`` or ``"bfloat16"``; a torch.dtype is accepted too.
    - ``min_pixels``/``max_pixels``: bound the image area the processor resizes to.
    - ``freeze_vision``: ``requires_grad=False`` on the whole vision tower, merger
      included (the merger is part of ``visual`` in both Qwen2-VL and Qwen2.5-VL).
    - ``gradient_checkpointing``: non-reentrant, so it works with a frozen tower
      whose outputs carry no grad.
    - ``seed``: weights of the tiny models; ignored for checkpoints.

    The tokenizer pads on the left: rollouts batch-generate, and right padding would put
    pad tokens between a prompt and its completion.
    """
    name = str(path_or_tiny)
    target = resolve_dtype(dtype, device)
    if name in TINY_NAMES:
        model, processor = build_tiny_model(TINY_NAMES[name], seed=seed, **SIZES[TINY_SIZE.get(name, "default")])
        model.to(dtype=target)
    else:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        p = _check_checkpoint_dir(name)
        try:
            model = AutoModelForImageTextToText.from_pretrained(str(p), dtype=target, local_files_only=True)
        except ValueError as exc:
            if "Unrecognized configuration class" in str(exc):
                raise ValueError(
                    f"{p} is not a vision-language model this toolkit can train "
                    f"(AutoModelForImageTextToText does not know its architecture)"
                ) from None
            raise
        processor = AutoProcessor.from_pretrained(str(p), local_files_only=True)

    _apply_pixels(processor, min_pixels, max_pixels)
    processor.tokenizer.padding_side = "left"
    model.to(device)

    if freeze_vision:
        for param in find_vision_tower(model).parameters():
            param.requires_grad_(False)
    if gradient_checkpointing:
        # transformers 5.2x renamed the API (the old name warns until v6); 4.x has only the old one.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # use_cache is left on: transformers drops the cache itself in training-mode
        # forwards, and rollouts generating with the same model in eval mode need it.
    return model, processor
