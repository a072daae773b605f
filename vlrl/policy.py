"""The policy being trained, set up the same way for every recipe (RL and SFT): weights
and processor, a DeepSpeed engine with a torch AdamW and the learning-rate schedule, and
how generation sees ZeRO-3's partitioned weights."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config
from vlrl.options import UserError


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_policy(path: str, **kwargs):
    """The model and processor; a bad path or a non-VLM checkpoint is the user's to fix."""
    from vlrl.models.loading import load_model_and_processor

    try:
        return load_model_and_processor(path, **kwargs)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None


def lr_lambda(cfg: Config, steps: int | None = None):
    total = steps if steps is not None else cfg.trainer.steps
    warmup = max(1, int(cfg.trainer.warmup_ratio * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.trainer.lr_schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_engine(model, cfg: Config, *, lr: float | None = None, steps: int | None = None):
    """DeepSpeed engine with a torch AdamW (no fused kernels to compile) and the lr schedule."""
    import deepspeed

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=lr if lr is not None else cfg.trainer.lr, weight_decay=cfg.trainer.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps))
    bf16 = next(model.parameters()).dtype == torch.bfloat16
    ds_config = dist_utils.deepspeed_config(cfg.trainer.deepspeed, grad_clip=cfg.trainer.grad_clip, bf16=bf16)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
    )
    return engine, optimizer, scheduler


@dataclass
class Policy:
    """The trained model behind its DeepSpeed engine, with what every recipe needs beside it."""

    engine: Any  # deepspeed.DeepSpeedEngine; engine.module is the HF model
    processor: Any  # the HF processor (tokenizer + image processor)
    scheduler: torch.optim.lr_scheduler.LambdaLR

    @property
    def pad_id(self) -> int:
        return self.processor.tokenizer.pad_token_id

    @property
    def image_token_id(self) -> int | None:
        return getattr(self.engine.module.config, "image_token_id", None)


def model_options(cfg: Config) -> dict[str, Any]:
    """How the model section loads weights, on this process's device."""
    return dict(
        dtype=cfg.model.dtype,
        min_pixels=cfg.model.min_pixels,
        max_pixels=cfg.model.max_pixels,
        device="cuda" if dist_utils.use_cuda() else "cpu",
        seed=cfg.seed,
    )


def setup_policy(cfg: Config, init: str, *, lr: float | None = None, steps: int | None = None) -> Policy:
    """Weights from `init` as the model section says, trainable, behind DeepSpeed."""
    model, processor = load_policy(
        init,
        freeze_vision=cfg.model.freeze_vision,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        **model_options(cfg),
    )
    engine, _, scheduler = build_engine(model, cfg, lr=lr, steps=steps)
    return Policy(engine, processor, scheduler)


def load_reference(cfg: Config, init: str):
    """A frozen copy of the starting weights, for the KL term."""
    model, _ = load_policy(init, **model_options(cfg))
    return model.eval().requires_grad_(False)


def generation_context(engine):
    """Under ZeRO-3 the weights are partitioned and every module's forward gathers its own:
    a collective per module per decoding step, which ranks decoding different lengths would
    never match. For generation the whole model is gathered once and those per-module hooks
    are lifted, then put back for training."""
    import contextlib

    if engine.zero_optimization_stage() != 3:
        return contextlib.nullcontext

    @contextlib.contextmanager
    def gathered_without_hooks():
        import deepspeed

        offload = getattr(engine.optimizer, "parameter_offload", engine.optimizer)
        with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None):
            for param in offload.module.parameters(recurse=True):
                param.ds_active_sub_modules.clear()
            for hook in offload.forward_hooks + offload.backward_hooks:
                hook.remove()
            offload.forward_hooks, offload.backward_hooks = [], []
            try:
                yield
            finally:
                if hasattr(offload, "_register_deepspeed_module"):
                    offload._register_deepspeed_module(offload.module)
                else:  # DeepSpeed < 0.16.4
                    offload._register_hooks_recursively(offload.module)

    return gathered_without_hooks
