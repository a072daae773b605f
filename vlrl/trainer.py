"""`vlrl train`: GRPO-family RL for chart-to-code on DeepSpeed, read top to bottom.

One step: prompts -> rollouts (n per prompt) -> render + rewards (rendering starts as soon
as completions exist) -> advantages -> token-budget micro-batches -> loss with the global
batch's normalisation -> one optimizer step -> weights synced to the engine -> metrics ->
checkpoint. The run directory holds one folder per curriculum stage:

    OUT/config.yaml                 the resolved config of the latest run
    OUT/stage1/metrics.jsonl        one row per step
    OUT/stage1/checkpoints/step-N   DeepSpeed state + trainer state (resume)
    OUT/stage1/final                HF weights (safetensors) + processor: stage 2 starts here
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config, save_config
from vlrl.jsonl import write_json_atomic
from vlrl.options import UserError
from vlrl.tasks.base import StepSamples

# --------------------------------------------------------------------------- set-up


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stage_dir(cfg: Config) -> Path:
    return Path(cfg.out) / f"stage{cfg.stage}"


def initial_weights(cfg: Config) -> str:
    """Stage 2 starts from stage 1's final weights, stage 1 from the SFT warm start when the
    run directory has one; init_from overrides both."""
    if cfg.init_from:
        return cfg.init_from
    if cfg.stage == 1:
        sft = Path(cfg.out) / "sft" / "final"
        if (sft / "config.json").exists():
            print(f"stage 1 starts from the SFT weights in {sft}", file=sys.stderr)
            return str(sft)
    if cfg.stage > 1:
        previous = Path(cfg.out) / f"stage{cfg.stage - 1}" / "final"
        if not (previous / "config.json").exists():
            raise UserError(
                f"stage {cfg.stage} starts from stage {cfg.stage - 1}'s final weights, but "
                f"{previous} has none: run `vlrl train stage={cfg.stage - 1} out={cfg.out}` first "
                f"or give init_from=PATH"
            )
        return str(previous)
    return cfg.model.path


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


def build_rollout(cfg: Config, engine, processor, init: str, out: Path):
    """The HF engine samples from the training module itself; vLLM gets a copy of the weights."""
    if cfg.rollout.engine == "hf":
        from vlrl.rollout.hf_engine import HFEngine

        return HFEngine(engine.module, processor, generation_context=generation_context(engine))
    from vlrl.rollout.vllm_engine import VLLMEngine

    path = Path(init)
    if not (path / "config.json").exists():  # the tiny models exist only in memory: save them for vLLM
        path = out / "initial_model"
        save_hf(engine, processor, path)
    try:
        return VLLMEngine.create(
            str(path),
            processor,
            gpu_memory_utilization=cfg.rollout.vllm_gpu_memory_utilization,
            sleep_mode=cfg.rollout.vllm_sleep,
            seed=cfg.seed,
        )
    except ImportError as exc:
        raise UserError(str(exc)) from None


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


# --------------------------------------------------------------------------- checkpoints


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


def resume_state(engine, checkpoints: Path) -> dict[str, Any] | None:
    latest = checkpoints / "latest.json"
    if not latest.exists():
        return None
    tag = json.loads(latest.read_text())["tag"]
    _, client_state = engine.load_checkpoint(str(checkpoints), tag=tag)
    if client_state and "rng" in client_state:
        restore_rng(client_state["rng"])
    return client_state


# --------------------------------------------------------------------------- the step


def build_task(cfg: Config):
    """The training task named by cfg.task (vlrl.tasks.registry); it loads and checks its
    data before any model."""
    from vlrl.tasks import registry

    registry.load_task_plugins(cfg.task_plugins)
    try:
        spec = registry.get_task(cfg.task)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    return spec.builder()(cfg)


def prompt_visions(samples: StepSamples, processor) -> list:
    """Each completion's prompt images as tensors: what the engine already preprocessed (one
    object per request, shared by its n samples), else each request encoded once here."""
    from vlrl.sequences import encode_prompts

    missing = sorted({samples.request_of[i] for i, c in enumerate(samples.completions) if c.vision is None})
    encoded = {}
    if missing:
        _, vision = encode_prompts(processor, [samples.requests[j] for j in missing])
        encoded = dict(zip(missing, vision))
    return [
        c.vision if c.vision is not None else encoded[samples.request_of[i]] for i, c in enumerate(samples.completions)
    ]


def train(cfg: Config) -> Path:
    from vlrl.algo import BatchCounts, loss_metrics, micro_batch_loss, per_token_loss
    from vlrl.profiling import PhaseTimer
    from vlrl.sequences import Row, collate, completion_logprobs, micro_batches

    dist_utils.init_distributed()
    seed_everything(cfg.seed)
    out = stage_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if dist_utils.is_main():
        save_config(cfg, Path(cfg.out) / "config.yaml")
        save_config(cfg, out / "config.yaml")

    task = build_task(cfg)

    # model, reference, engine
    init = initial_weights(cfg)
    device = "cuda" if dist_utils.use_cuda() else "cpu"
    model_kwargs = dict(
        dtype=cfg.model.dtype,
        min_pixels=cfg.model.min_pixels,
        max_pixels=cfg.model.max_pixels,
        device=device,
        seed=cfg.seed,
    )
    model, processor = load_policy(
        init,
        freeze_vision=cfg.model.freeze_vision,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        **model_kwargs,
    )
    ref_model = None
    if cfg.algo.beta > 0:  # a frozen reference only when the KL term exists
        ref_model, _ = load_policy(init, **model_kwargs)
        ref_model.eval().requires_grad_(False)
    engine, _, scheduler = build_engine(model, cfg)
    rollout = build_rollout(cfg, engine, processor, init, out)
    image_token_id = getattr(engine.module.config, "image_token_id", None)
    pad_id = processor.tokenizer.pad_token_id

    start_step = 0
    state = resume_state(engine, out / "checkpoints") if cfg.trainer.resume == "auto" else None
    if state is not None:
        start_step = int(state["step"])
        task.load_state_dict(state.get("task", {}))
        print(f"resuming stage {cfg.stage} from step {start_step}", file=sys.stderr)

    world = dist_utils.world_size()
    timer = PhaseTimer(cuda_sync=cfg.trainer.profile)
    logger = None
    if dist_utils.is_main():
        from vlrl.config import to_dict
        from vlrl.metrics_log import MetricsLogger

        logger = MetricsLogger(
            out,
            tensorboard=cfg.trainer.tensorboard,
            wandb=cfg.trainer.wandb,
            run_name=f"{Path(cfg.out).name}-stage{cfg.stage}",
            config=to_dict(cfg),
            start_step=start_step,
        )

    for step in range(start_step, cfg.trainer.steps):
        t0 = time.perf_counter()
        samples = task.collect(step, rollout, timer)
        with timer.phase("encode"):
            vision = prompt_visions(samples, processor)
        flat, keep = samples.completions, samples.keep
        lengths = torch.tensor([len(c.token_ids) for c in flat])

        rows = [
            Row(c.prompt_ids, c.token_ids, vision[i], float(samples.advantages[i]), c.logprobs, index=i)
            for i, c in enumerate(flat)
            if keep[i] and c.token_ids
        ]
        mbs = micro_batches(rows, cfg.trainer.micro_batch_tokens)
        counts = BatchCounts(num_sequences=len(rows), active_tokens=sum(len(r.completion_ids) for r in rows))
        n_micro = len(mbs)
        if world > 1:
            t = dist_utils.all_reduce(torch.tensor([counts.num_sequences, counts.active_tokens], dtype=torch.long))
            counts = BatchCounts(int(t[0]), int(t[1]))
            n_micro = int(dist_utils.all_reduce(torch.tensor([len(mbs)], dtype=torch.long), op="max"))
        # Every rank runs the same number of forward/backward passes (ZeRO-3 gathers weights in
        # each forward, and every rank must reach the gradient reduction): a rank with fewer
        # micro-batches repeats one at zero weight. A rank that kept nothing repeats one token
        # of a dropped sample with its images, so the same modules (the vision tower too) run
        # on every rank; only a rank with no sample at all falls back to a text-only stand-in.
        real_micro = len(mbs)
        max_len = samples.max_completion_length or cfg.rollout.max_new_tokens
        if len(mbs) < n_micro:
            mbs = mbs + [mbs[0] if mbs else [filler_row(flat, vision, pad_id)]] * (n_micro - len(mbs))

        engine.train()
        loss_total, infos, grad_norm = 0.0, [], None
        if not mbs:
            engine.set_gradient_accumulation_boundary(True)
            scheduler.step()  # keep the schedule aligned with steps even when nothing trains
        for k, mb_rows in enumerate(mbs):
            padding = k >= real_micro
            mb = collate(mb_rows, pad_id=pad_id, image_token_id=image_token_id, device=engine.device)
            with timer.phase("forward"):
                logp, entropy = completion_logprobs(engine, mb, cfg.rollout.temperature, with_entropy=True)
            ref_logp = None
            if ref_model is not None:
                with timer.phase("reference"), torch.no_grad():
                    ref_logp, _ = completion_logprobs(ref_model, mb, cfg.rollout.temperature)
            loss_tokens, info = per_token_loss(
                logp,
                None,
                mb.advantages,
                ref_logp=ref_logp,
                beta=cfg.algo.beta,
                eps_low=cfg.algo.eps_low,
                eps_high=cfg.algo.eps_high,
            )
            loss = micro_batch_loss(
                loss_tokens,
                mb.completion_mask,
                cfg.algo.loss_type,
                counts=counts,
                num_micro_steps=len(mbs),
                world_size=world,
                max_completion_length=max_len,
                engine_scales_by_accumulation=False,
            )
            if padding:
                loss = loss * 0.0
            boundary = k == len(mbs) - 1
            engine.set_gradient_accumulation_boundary(boundary)
            with timer.phase("backward"):
                engine.backward(loss)
            if boundary and engine.zero_optimization_stage() == 0:
                grad_norm = local_grad_norm(engine.module)  # ZeRO-0 with a torch optimizer reports none
            with timer.phase("optimizer"):
                engine.step()
            loss_total += float(loss.detach())
            if boundary and grad_norm is None:
                grad_norm = engine.get_global_grad_norm()
            if padding:
                continue
            behaviour = torch.zeros_like(logp)
            for i, r in enumerate(mb_rows):
                behaviour[i, : len(r.old_logprobs or [])] = torch.tensor(r.old_logprobs or [], dtype=logp.dtype)
            infos.append(
                (
                    loss_metrics(info, mb.completion_mask, entropy),
                    float(((logp.detach() - behaviour).abs() * mb.completion_mask).sum()),
                    float(mb.completion_mask.sum()),
                )
            )
        with timer.phase("sync"), generation_context(engine)():
            rollout.sync_weights(engine.module)  # colocated HF engine: nothing to copy

        last = step + 1 == cfg.trainer.steps
        evaluation = {}
        if cfg.trainer.eval_every and ((step + 1) % cfg.trainer.eval_every == 0 or last):
            with timer.phase("eval"):  # the rollout engine gathers ZeRO-3 weights itself
                evaluation = task.evaluate(step, rollout, timer)
        # the last step is checkpointed too, so a longer run (more steps) resumes exactly here
        if (cfg.trainer.save_every and (step + 1) % cfg.trainer.save_every == 0) or (last and cfg.trainer.save_final):
            with timer.phase("checkpoint"):
                save_checkpoint(
                    engine,
                    out / "checkpoints" / f"step-{step + 1}",
                    {"step": step + 1, "task": task.state_dict()},
                    cfg.trainer.keep_checkpoints,
                )
        split = timer.end_step(total=time.perf_counter() - t0)  # with "other": what no phase timed
        row = step_metrics(
            step,
            samples,
            lengths,
            infos,
            loss_total,
            grad_norm,
            scheduler.get_last_lr()[0],
            {**split, "step": sum(split.values())},
        )
        row.update(evaluation)
        row = gather_metrics(row)  # every rank takes part; rank 0 logs the whole batch
        for event in samples.events:
            if dist_utils.is_main():
                print(event, file=sys.stderr, flush=True)
        if dist_utils.is_main():
            every = cfg.trainer.log_samples_every
            if every and (step + 1) % every == 0 and samples.report is not None:
                samples.report(out / "samples", step + 1)
            if (step + 1) % cfg.trainer.log_every == 0 or last or evaluation:
                logger.log(row)
                print(format_metrics(row), flush=True)
                if cfg.trainer.profile:
                    print(timer.table(split), flush=True)

    if cfg.trainer.save_final:
        save_hf(engine, processor, out / "final")
    if logger is not None:
        logger.close()
        from vlrl.metrics_log import plot_rewards

        plot_rewards(out / "metrics.jsonl", out)
        if cfg.trainer.profile:
            print(f"time split over {cfg.trainer.steps - start_step} steps:\n{timer.table()}", flush=True)
            write_json_atomic(out / "profile.json", dict(timer.totals))
    task.close()
    return out / "final"


# --------------------------------------------------------------------------- metrics


def filler_row(flat, vision, pad_id: int):
    """A zero-weight stand-in micro-batch row for a rank that kept no sample: one token of its
    first sample, with that sample's images, or a text-only pair of pads without any."""
    from vlrl.sequences import PromptVision, Row

    if flat:
        c = flat[0]
        return Row(c.prompt_ids, c.token_ids[:1] or [pad_id], vision[0], 0.0, (c.logprobs or [0.0])[:1])
    return Row([pad_id, pad_id], [pad_id], PromptVision(None, None))


def local_grad_norm(module) -> float:
    grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def step_metrics(
    step, samples: StepSamples, lengths, infos, loss_total, grad_norm, lr, split: dict[str, float]
) -> dict[str, Any]:
    # On-policy the clipped objective's value is ~0 (advantages sum to zero per group);
    # the gradient norm is what shows learning.
    row: dict[str, Any] = {"step": step + 1, "loss": loss_total, "lr": lr}
    if grad_norm is not None:
        row["grad_norm"] = float(grad_norm)
    row.update(samples.metrics)
    row["completion_length/mean"] = float(lengths.float().mean()) if len(lengths) else 0.0
    row["completion_length/max"] = int(lengths.max()) if len(lengths) else 0
    row["samples/kept"] = int(samples.keep.sum())
    if infos:
        tokens = sum(t for _, _, t in infos) or 1.0
        for key in infos[0][0]:
            row[key] = sum(m[key] * t for m, _, t in infos) / tokens
        row["logprob_mismatch"] = sum(d for _, d, _ in infos) / tokens  # |trainer - engine| per token
    row["train_tokens"] = int(sum(t for _, _, t in infos))  # 0 on a rank that kept nothing
    # the coarse split the plots show, then every phase as timed
    train_phases = ("encode", "forward", "reference", "backward", "optimizer")
    row["time/train"] = sum(split.get(k, 0.0) for k in train_phases)
    row.update({f"time/{k}": v for k, v in split.items()})
    row.setdefault("time/generate", 0.0)
    row.setdefault("time/score", 0.0)
    row["tokens_per_second"] = float(lengths.sum()) / max(split["step"], 1e-9)
    row["completion_tokens"] = int(lengths.sum())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        row["gpu_memory/peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return row


# How each metric combines across ranks. Counts and throughput add up; token means (from
# loss_metrics, over the tokens each rank trained on) are weighted by those tokens; the
# rest are means over equal-sized shards, so a mean of the ranks' means is exact.
_SUMMED = ("samples/kept", "completion_tokens", "tokens_per_second", "train_tokens")
_TOKEN_MEANS = ("clip/low", "clip/high", "clip/total", "ratio/mean", "kl", "entropy", "logprob_mismatch")


def gather_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """Rank 0's row describes the whole batch: numbers are averaged over ranks, maxima take
    the max, counts and throughput add up, token means are weighted by trained tokens, and
    times take the slowest rank."""
    if dist_utils.world_size() <= 1:
        return row
    rows = dist_utils.all_gather_objects(row)
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for r in rows for k in r):  # rank 0's keys first
        value = next(r[key] for r in rows if key in r)  # rank 0's, when it has one
        if key in _TOKEN_MEANS:  # a rank that trained no token has none of these: weight the others
            have = [r for r in rows if key in r and r.get("train_tokens", 0) > 0]
            if have:
                merged[key] = sum(r[key] * r["train_tokens"] for r in have) / sum(r["train_tokens"] for r in have)
            continue
        values = [
            r[key] for r in rows if key in r and isinstance(r[key], (int, float)) and not isinstance(r[key], bool)
        ]
        if key.startswith("reward_error/") or key == "reward/errors":  # counts, on whichever ranks had them
            merged[key] = type(value)(sum(values))
        elif key in ("step", "lr", "loss") or len(values) != len(rows):
            merged[key] = value
        elif key.endswith("/max") or key.startswith(("time/", "gpu_memory/")):
            merged[key] = max(values)
        elif key.endswith("/min"):
            merged[key] = min(values)
        elif key in _SUMMED:
            merged[key] = type(value)(sum(values))
        else:
            merged[key] = sum(values) / len(values)
    # Each rank's loss carries the factor W that makes DeepSpeed's mean over ranks give the
    # global objective (vlrl.algo.losses), so the objective is the ranks' sum over W.
    merged["loss"] = sum(float(r["loss"]) for r in rows) / len(rows)
    return merged


def format_metrics(row: dict[str, Any]) -> str:
    keys = [
        "step",
        "reward/mean",
        "exec_rate",
        "grad_norm",
        "kl",
        "entropy",
        "clip/total",
        "completion_length/mean",
        "tokens_per_second",
        "time/generate",
        "time/score",
        "time/train",
    ]
    return " ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys if k in row)
