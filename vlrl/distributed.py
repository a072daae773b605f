"""Process-group and DeepSpeed set-up shared by `vlrl train` and `vlrl sft`.

Launched by torchrun or the deepspeed launcher, the usual RANK/WORLD_SIZE/... variables
are already set; a plain `vlrl train` is a world of one. On a machine without CUDA the
gloo backend and DeepSpeed's CPU accelerator are used, with a torch optimizer so no fused
kernel has to be compiled.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def setup_environment() -> None:
    """Fill in a world of one when no launcher did, and point DeepSpeed at the CPU if needed."""
    defaults = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    if not use_cuda():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "vlrl-torch-extensions"))


def quiet_deepspeed() -> None:
    """Import DeepSpeed without start-up noise or a compile: the accelerator is named before
    the import (no "Setting accelerator" warning), torch's CUDA_HOME notice on a CPU machine
    is hushed, and on the CPU DeepSpeed's shared-memory all-reduce kernel, a C++ op it would
    compile on first use, is left out (gloo's all-reduce serves instead)."""
    import logging

    setup_environment()
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import deepspeed.ops

    if not use_cuda():
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def init_distributed() -> None:
    quiet_deepspeed()
    import deepspeed
    import torch.distributed as dist

    if use_cuda():
        import torch

        # one GPU per rank before anything is placed: "cuda" then means this rank's device
        # (models, the reference model, collectives), not GPU 0 on every rank
        local, gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
        if local >= gpus:
            from vlrl.options import UserError

            raise UserError(
                f"LOCAL_RANK={local} but this node has {gpus} GPU(s): launch at most {gpus} "
                f"processes per node (--nproc_per_node / --num_gpus)"
            )
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if use_cuda() else "gloo")


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def on_main_then_wait(make) -> None:
    """`make()` on rank 0 while the other ranks wait for it: shared files written once."""
    if is_main():
        make()
    if world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def all_gather_objects(obj) -> list:
    """Every rank's `obj` (picklable), in rank order; [obj] in one process."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() <= 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce(t, op: str = "sum"):
    """`t` reduced over ranks ("sum" or "max"), returned on t's device. NCCL reduces only
    CUDA tensors, so host-side counters travel through this rank's GPU there."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() <= 1:
        return t
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    work = t.to(on, copy=True)
    dist.all_reduce(work, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return work.to(t.device)


def deepspeed_config(choice: str, *, grad_clip: float, bf16: bool) -> dict[str, Any]:
    """zero0..zero3 or a JSON file. Accumulation is driven by the trainer (token-budget
    micro-batches vary in number), so DeepSpeed is told 1 and the boundary is set by hand."""
    import json

    if choice.endswith(".json"):
        cfg = json.loads(Path(choice).read_text())
    else:
        stages = {"none": 0, "zero0": 0, "zero1": 1, "zero2": 2, "zero3": 3}
        if choice not in stages:
            from vlrl.options import OptionError

            raise OptionError(f"trainer.deepspeed={choice}: expected zero0..zero3, none, or a .json path")
        cfg = {"zero_optimization": {"stage": stages[choice]}}
        if stages[choice] == 3:
            cfg["zero_optimization"].update(stage3_gather_16bit_weights_on_model_save=True)
    cfg.update(
        train_micro_batch_size_per_gpu=1,
        gradient_accumulation_steps=1,
        gradient_clipping=grad_clip,
        zero_allow_untested_optimizer=True,
        steps_per_print=10**9,
        wall_clock_breakdown=False,
    )
    cfg["bf16"] = {"enabled": bool(bf16)}
    return cfg
