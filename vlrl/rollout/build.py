"""The one place a rollout engine is built from the model and rollout config sections, for
training, self-play and the demo alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from vlrl.options import UserError
from vlrl.rollout.base import RolloutEngine


def resolve_device(device: str) -> str:
    """auto: the GPU when there is one."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_rollout_engine(
    model_cfg: Any,
    rollout_cfg: Any,
    *,
    seed: int,
    weights: str | None = None,
    model: Any = None,
    processor: Any = None,
    device: str = "auto",
    generation_context: Callable[[], Any] | None = None,
    max_batch_requests: int = 16,
    max_images_per_prompt: int = 4,
    colocated: bool = False,
) -> RolloutEngine:
    """`rollout_cfg.engine` over the policy (`vlrl.config.ModelConfig`, `RolloutConfig`).

    hf samples from `model` itself when given (training: the module DeepSpeed trains, so
    there are no weights to copy), else loads `weights` (default model_cfg.path) as the
    model section says. vllm loads the checkpoint directory `weights` into its own engine
    (the tiny in-memory models must be saved first), in this process when `colocated`
    (training: its weights are synced after every step); a missing vLLM is the user's to fix."""
    weights = weights or model_cfg.path
    if rollout_cfg.engine == "hf":
        from vlrl.rollout.hf_engine import HFEngine

        if model is None:
            from vlrl.models.loading import load_model_and_processor

            try:
                model, processor = load_model_and_processor(
                    weights,
                    dtype=model_cfg.dtype,
                    min_pixels=model_cfg.min_pixels,
                    max_pixels=model_cfg.max_pixels,
                    device=resolve_device(device),
                    seed=seed,
                )
            except (FileNotFoundError, ValueError) as exc:
                raise UserError(str(exc)) from None
        return HFEngine(model, processor, max_batch_requests=max_batch_requests, generation_context=generation_context)
    if rollout_cfg.engine != "vllm":
        raise UserError(f"rollout.engine={rollout_cfg.engine}: expected hf or vllm")
    if not (Path(weights) / "config.json").exists():
        raise UserError(f"rollout.engine=vllm needs a checkpoint directory; {weights} is not one")
    from vlrl.rollout.vllm_engine import VLLMEngine

    if processor is None:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(
            weights, local_files_only=True, min_pixels=model_cfg.min_pixels, max_pixels=model_cfg.max_pixels
        )
    try:
        return VLLMEngine.create(
            weights,
            processor,
            gpu_memory_utilization=rollout_cfg.vllm_gpu_memory_utilization,
            sleep_mode=rollout_cfg.vllm_sleep,
            max_images_per_prompt=max_images_per_prompt,
            dtype=model_cfg.dtype,
            seed=seed,
            colocated=colocated,
        )
    except ImportError as exc:
        raise UserError(str(exc)) from None
