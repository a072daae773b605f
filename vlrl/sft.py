"""`vlrl sft`: cross-entropy on the code of chart/code pairs: the warm start RL begins from.

The conversation is the RL prompt (chart image + instruction) and the answer the chart's
code in a ```python block; only the answer's tokens carry loss. Weights land in
OUT/sft/final, where `vlrl train stage=1 out=OUT` picks them up.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config, save_config
from vlrl.jsonl import JsonlWriter
from vlrl.options import UserError


def answer_text(code: str) -> str:
    from renderers import strip_output_calls

    return "```python\n" + strip_output_calls(code) + "\n```"


def build_rows(task, processor, examples, max_code_tokens: int):
    """One training Row per example: the prompt ids and the answer ids (loss only there)."""
    from vlrl.sequences import Row, encode_prompts

    messages = task.prompt_messages(examples)
    tok = processor.tokenizer
    rows, truncated = [], 0
    batch, vision = encode_prompts(processor, messages)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    for i, ex in enumerate(examples):
        prompt = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        answer = tok(answer_text(ex.code), add_special_tokens=False)["input_ids"]
        if len(answer) > max_code_tokens:
            answer, truncated = answer[:max_code_tokens], truncated + 1
        else:
            answer = answer + [end]  # the model must learn to stop
        rows.append(Row(prompt, answer, vision[i], advantage=1.0, index=i))
    return rows, truncated


def sft(cfg: Config) -> Path:
    from renderers import RenderPool
    from rewards import CompositeReward
    from vlrl.datasets.charts import load_chart_examples
    from vlrl.sequences import collate, completion_logprobs, micro_batches
    from vlrl.tasks.chart2code import Chart2CodeTask
    from vlrl.tasks.chart2code_rl import PromptSampler, ensure_default_corpus
    from vlrl.trainer import build_engine, load_policy, save_hf, seed_everything

    dist_utils.init_distributed()
    seed_everything(cfg.seed)
    out = Path(cfg.out) / "sft"
    out.mkdir(parents=True, exist_ok=True)
    if dist_utils.is_main():
        save_config(cfg, out / "config.yaml")
    ensure_default_corpus(cfg)
    report = load_chart_examples(cfg.data.train)
    with RenderPool(timeout=cfg.render.timeout, compat=cfg.render.compat) as pool:
        task = Chart2CodeTask(pool, CompositeReward({"format": 1.0}))
        examples, bad = task.usable(report.examples)
        if not examples:
            raise UserError(f"{cfg.data.train}: no usable chart/code pairs")
        if bad:
            print(f"skipped {len(bad)} examples whose code fails, e.g. {bad[0]}", file=sys.stderr)
        device = "cuda" if dist_utils.use_cuda() else "cpu"
        model, processor = load_policy(
            cfg.init_from or cfg.model.path,
            dtype=cfg.model.dtype,
            min_pixels=cfg.model.min_pixels,
            max_pixels=cfg.model.max_pixels,
            freeze_vision=cfg.model.freeze_vision,
            gradient_checkpointing=cfg.model.gradient_checkpointing,
            device=device,
            seed=cfg.seed,
        )
        world, rank = dist_utils.world_size(), dist_utils.rank()
        per_rank = max(1, cfg.sft.batch_size // world)
        steps = max(1, math.ceil(cfg.sft.epochs * len(examples) / (per_rank * world)))
        engine, _, scheduler = build_engine(model, cfg, lr=cfg.sft.lr, steps=steps)
        sampler = PromptSampler(len(examples), cfg.seed, cfg.data.shuffle)
        pad_id = processor.tokenizer.pad_token_id
        image_token_id = getattr(engine.module.config, "image_token_id", None)
        writer = JsonlWriter(out / "metrics.jsonl") if dist_utils.is_main() else None
        engine.train()
        for step in range(steps):
            t0 = time.perf_counter()
            ids = sampler.batch(step, per_rank * world)[rank * per_rank : (rank + 1) * per_rank]
            rows, truncated = build_rows(task, processor, [examples[i] for i in ids], cfg.sft.max_code_tokens)
            tokens = sum(len(r.completion_ids) for r in rows)
            total_tokens = tokens
            if world > 1:
                total_tokens = int(dist_utils.all_reduce(torch.tensor([tokens])))
            mbs = micro_batches(rows, cfg.trainer.micro_batch_tokens)
            loss_sum = 0.0
            for k, mb_rows in enumerate(mbs):
                mb = collate(mb_rows, pad_id=pad_id, image_token_id=image_token_id, device=engine.device)
                logp, _ = completion_logprobs(engine, mb, temperature=1.0)
                # token mean over the whole global batch; ranks' gradients are averaged, hence x world
                loss = -(logp * mb.completion_mask).sum() * world / max(total_tokens, 1)
                engine.set_gradient_accumulation_boundary(k == len(mbs) - 1)
                engine.backward(loss)
                engine.step()
                loss_sum += float(loss.detach()) / world
            if writer is not None:
                row = {
                    "step": step + 1,
                    "loss": loss_sum,
                    "tokens": total_tokens,
                    "truncated": truncated,
                    "lr": scheduler.get_last_lr()[0],
                    "time/step": time.perf_counter() - t0,
                }
                writer.write(row)
                print(
                    f"sft step={step + 1}/{steps} loss={loss_sum:.4f} tokens={total_tokens} "
                    f"time={row['time/step']:.2f}s",
                    flush=True,
                )
        save_hf(engine, processor, out / "final")
        if writer is not None:
            writer.close()
    return out / "final"
