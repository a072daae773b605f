"""Weights and training state on disk: HF weights any `from_pretrained` loads, and
DeepSpeed checkpoints (optimizer, scheduler, weights, RNG and trainer state) a run resumes
from exactly. Every write goes to a temporary name renamed into place, so a crash never
leaves a half-written directory where a good one was.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.jsonl import write_json_atomic


def save_hf(engine, processor, path: Path) -> None:
    """HF-format weights (safetensors) any `from_pretrained` can load, plus the processor.

    Every rank takes part in gathering ZeRO-3 weights; rank 0 alone writes, into a temporary
    directory renamed into place, so a crash never leaves a half-written final directory."""
    if engine.zero_optimization_stage() == 3:
        state = engine._zero3_consolidated_16bit_state_dict()
    else:
        state = engine.module.state_dict()
    if dist_utils.is_main():
        tmp = path.with_name(path.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        engine.module.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        processor.save_pretrained(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    if dist_utils.world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def rng_state() -> dict[str, Any]:
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(engine, path: Path, state: dict[str, Any], keep: int) -> None:
    """DeepSpeed state (optimizer, scheduler, weights) + trainer state, written under a
    temporary tag and renamed into place: a crash mid-save leaves the previous one intact."""
    tmp_tag = path.name + ".tmp"
    engine.save_checkpoint(str(path.parent), tag=tmp_tag, client_state={**state, "rng": rng_state()})
    if dist_utils.world_size() > 1:
        import torch.distributed as dist

        dist.barrier()
    if dist_utils.is_main():
        if path.exists():
            shutil.rmtree(path)
        (path.parent / tmp_tag).rename(path)
        write_json_atomic(path.parent / "latest.json", {"tag": path.name, **state})
        checkpoints = sorted(path.parent.glob("step-*[0-9]"), key=lambda p: int(p.name.split("-")[1]))
        for old in checkpoints[: -max(1, keep)]:
            shutil.rmtree(old, ignore_errors=True)
    if dist_utils.world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def has_checkpoint(checkpoints: Path) -> bool:
    """Whether a finished checkpoint is there to resume from (a save torn mid-way is not)."""
    return (checkpoints / "latest.json").exists()


def resume_state(engine, checkpoints: Path) -> dict[str, Any] | None:
    if not has_checkpoint(checkpoints):
        return None
    tag = json.loads((checkpoints / "latest.json").read_text())["tag"]
    _, client_state = engine.load_checkpoint(str(checkpoints), tag=tag)
    if client_state and "rng" in client_state:
        restore_rng(client_state["rng"])
    return client_state
