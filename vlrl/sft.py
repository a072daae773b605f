"""`vlrl sft`: the supervised recipe, the warm start RL begins from.

The task gives (prompt, answer) pairs (TaskSpec.sft; chart-to-code: the RL prompt and the
chart's own code); cross-entropy falls on the answer's tokens only. Set-up, micro-batching
and the optimizer step are the RL recipe's (vlrl.policy, vlrl.optimizer_step); only the
loss differs. Weights land in OUT/sft/final, where `vlrl train stage=1 out=OUT` picks
them up.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config, check_config, save_config
from vlrl.jsonl import JsonlWriter
from vlrl.options import UserError
from vlrl.tasks.base import SFTData, SFTExample


def build_rows(processor, examples: list[SFTExample], max_answer_tokens: int):
    """One training Row per example: the prompt ids and the answer ids (loss only there)."""
    from vlrl.sequences import Row, encode_prompts

    tok = processor.tokenizer
    rows, truncated = [], 0
    batch, vision = encode_prompts(processor, [ex.messages for ex in examples])
    end = tok.convert_tokens_to_ids("<|im_end|>")
    for i, ex in enumerate(examples):
        prompt = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        answer = tok(ex.answer, add_special_tokens=False)["input_ids"]
        if len(answer) > max_answer_tokens:
            answer, truncated = answer[:max_answer_tokens], truncated + 1
        else:
            answer = answer + [end]  # the model must learn to stop
        rows.append(Row(prompt, answer, vision[i], advantage=1.0, index=i))
    return rows, truncated


def task_sft_builder(cfg: Config) -> Callable[[Config], SFTData]:
    """The task's source of supervised pairs (TaskSpec.sft), found before anything is written."""
    from vlrl.config import task_spec

    try:
        return task_spec(cfg).sft_builder()
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


def sft(cfg: Config) -> Path:
    from vlrl.checkpoints import save_hf
    from vlrl.data_order import PromptSampler
    from vlrl.optimizer_step import optimise, plan_micro_batches
    from vlrl.policy import seed_everything, setup_policy
    from vlrl.profiling import PhaseTimer
    from vlrl.sequences import completion_logprobs

    check_config(cfg)
    sft_data = task_sft_builder(cfg)
    dist_utils.init_distributed()
    seed_everything(cfg.seed)
    out = Path(cfg.out) / "sft"
    data = sft_data(cfg)  # checked before anything is written in OUT
    examples = data.examples
    if data.skipped:
        print(f"skipped {len(data.skipped)} examples, e.g. {data.skipped[0]}", file=sys.stderr)
    world, rank = dist_utils.world_size(), dist_utils.rank()
    per_rank = max(1, cfg.sft.batch_size // world)
    steps = max(1, math.ceil(cfg.sft.epochs * len(examples) / (per_rank * world)))
    policy = setup_policy(cfg, cfg.init_from or cfg.model.path, lr=cfg.sft.lr, steps=steps)
    out.mkdir(parents=True, exist_ok=True)
    if dist_utils.is_main():
        save_config(cfg, out / "config.yaml")
    sampler = PromptSampler(len(examples), cfg.seed, cfg.data.shuffle)
    timer = PhaseTimer()
    writer = JsonlWriter(out / "metrics.jsonl") if dist_utils.is_main() else None
    for step in range(steps):
        t0 = time.perf_counter()
        ids = sampler.batch(step, per_rank * world)[rank * per_rank : (rank + 1) * per_rank]
        rows, truncated = build_rows(policy.processor, [examples[i] for i in ids], cfg.sft.max_code_tokens)
        total_tokens = sum(len(r.completion_ids) for r in rows)
        if world > 1:
            total_tokens = int(dist_utils.all_reduce(torch.tensor([total_tokens])))
        mbs, real = plan_micro_batches(rows, cfg.trainer.micro_batch_tokens, lambda: rows[0])

        def loss_fn(mb, _rows):
            logp, _ = completion_logprobs(policy.engine, mb, temperature=1.0)
            # token mean over the whole global batch; ranks' gradients are averaged, hence x world
            return -(logp * mb.completion_mask).sum() * world / max(total_tokens, 1), None

        result = optimise(policy, mbs, real, loss_fn, timer)
        timer.end_step()
        if writer is not None:
            row = {
                "step": step + 1,
                "loss": result.loss / world,
                "tokens": total_tokens,
                "truncated": truncated,
                "lr": policy.scheduler.get_last_lr()[0],
                "time/step": time.perf_counter() - t0,
            }
            writer.write(row)
            print(
                f"sft step={step + 1}/{steps} loss={row['loss']:.4f} tokens={total_tokens} "
                f"time={row['time/step']:.2f}s",
                flush=True,
            )
    save_hf(policy.engine, policy.processor, out / "final")
    if writer is not None:
        writer.close()
    return out / "final"
