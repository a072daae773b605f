"""What the demo's tabs share: one model behind a rollout engine, one render pool, the rewards.

Built once per app from public APIs (vlrl.models.loading, vlrl.rollout.hf_engine,
renderers.RenderPool, rewards.CompositeReward) and closed with it: the pool's warm server
process and the scratch folder for downloads and plots go away on shutdown.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlrl.options import UserError

if TYPE_CHECKING:
    from renderers import RenderPool


@dataclass
class SamplingDefaults:
    """Initial values of the sampling controls, from the model's config preset."""

    temperature: float
    max_new_tokens: int
    seed: int


@dataclass
class DemoServices:
    engine: Any  # a vlrl.rollout.base.RolloutEngine
    pool: RenderPool
    visual_reward: Any  # CompositeReward of the image-similarity rewards (no reference script needed)
    chart_reward: Any  # CompositeReward of exec + ChartMimic's metrics (needs a reference script)
    model_name: str
    defaults: SamplingDefaults
    workdir: Path  # scratch space for downloads and plots, removed on close
    # One model serves every tab; generate() is not re-entrant (it seeds torch's global RNG),
    # so the events that use it share a Gradio concurrency id and also take this lock.
    model_lock: threading.Lock = field(default_factory=threading.Lock)
    visual_names: tuple[str, ...] = ("ssim",)
    # Gradio copies each returned file into its own cache (cleaned by Blocks' delete_cache),
    # so only the newest scratch folders are kept: a demo serving for weeks stays bounded.
    scratch_keep: int = 256
    _scratch: deque = field(default_factory=deque, repr=False)
    _scratch_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scratch(self, prefix: str) -> Path:
        """A fresh folder inside the app's scratch space; the oldest beyond scratch_keep go."""
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.workdir))
        with self._scratch_lock:
            self._scratch.append(folder)
            while len(self._scratch) > self.scratch_keep:
                shutil.rmtree(self._scratch.popleft(), ignore_errors=True)
        return folder

    def close(self) -> None:
        self.pool.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_services(
    model: str = "tiny",
    *,
    device: str = "auto",
    dtype: str = "auto",
    seed: int = 0,
    clip_checkpoint: str = "",
    clip_model: str = "ViT-B-32",
    render_timeout: float = 20.0,
    render_workers: int = 0,
) -> DemoServices:
    """Load the model and start the render pool.

    Image sizes and sampling defaults come from the same presets `vlrl train model=...`
    uses (the tiny preset keeps images small; a checkpoint gets the full-scale sizes).
    A bad model path is the user's to fix and raises UserError naming it.
    """
    from renderers import RenderPool
    from rewards import CompositeReward
    from vlrl.config import load_config
    from vlrl.rollout.build import build_rollout_engine

    cfg = load_config([f"model={model}"])
    cfg.model.dtype = dtype
    engine = build_rollout_engine(cfg.model, cfg.rollout, seed=seed, device=device)
    visual: dict[str, float] = {"ssim": 1.0}
    options: dict[str, dict] = {}
    if clip_checkpoint:
        # CLIP only with real local weights: random ones would show a meaningless number.
        if not Path(clip_checkpoint).exists():
            raise UserError(f"clip_checkpoint={clip_checkpoint}: no such file")
        visual["clip"] = 1.0
        options["clip"] = {"model": clip_model, "checkpoint": clip_checkpoint}
    visual_reward = CompositeReward(visual, options)
    # the demo shows ChartMimic's own numbers (official semantics), as `vlrl eval` does
    chart_reward = CompositeReward(
        {"exec": 1.0, "chartmimic": 1.0}, {"exec": {"visible_only": False}, "chartmimic": {"visible_only": False}}
    )
    pool = RenderPool(workers=render_workers, timeout=render_timeout)
    return DemoServices(
        engine=engine,
        pool=pool,
        visual_reward=visual_reward,
        chart_reward=chart_reward,
        model_name=model,
        defaults=SamplingDefaults(cfg.rollout.eval_temperature, cfg.rollout.max_new_tokens, seed),
        workdir=Path(tempfile.mkdtemp(prefix="vlrl-demo-")),
        visual_names=tuple(visual),
    )
