"""Side by side with TRL's GRPOTrainer: loss parity on a fixed batch, then step time and memory.

    python benchmarks/trl_compare.py [--steps 6] [--rounds 3] [--group 4] [--prompts 4]
                                     [--max-new-tokens 64] [--loss-type grpo] [--parity-only]

(a) Parity. One fixed batch (3 prompts with images of different sizes, G = 4 completions
    each of lengths 1..12, fixed rewards with one zero-variance group, fixed behaviour and
    reference log-probs near the current ones so that both clip branches fire) goes through
    TRL's own code path and through ours, each on its own copy of the same tiny Qwen2-VL:
      TRL : GRPOTrainer._generate_and_score_completions (generation replaced by the fixed
            completions; its tokenisation, image processing, reward call and advantages run
            as in training), then _compute_loss on its prepared inputs, split into micro-
            batches with TRL's own split helpers;
      ours: encode_prompts -> group_advantages -> Row/collate -> completion_logprobs ->
            per_token_loss -> micro_batch_loss, as vlrl.trainer.train calls them.
    Compared: advantages for scale group/batch/none; the loss (summed over micro-batches) and
    its gradient for grpo/bnpo/dr_grpo/dapo, beta 0 and 0.04, one and two micro-batches.
    TRL >= 1.x multiplies the KL term by the importance ratio by default
    (use_bias_correction_kl=True); the loss in docs/reference.md §2.3 does not, so TRL runs with it off.
(b) Timing. The same model (a tiny Qwen2-VL widened to ~5M parameters so that the model, not
    Python overhead, is most of the work), the same synthetic charts in the same order (no
    shuffling), the same reward (our stage-1 composite: format + exec + MSRL text, through a
    RenderPool on both sides), group size, prompts per step, max_new_tokens, loss type,
    temperature and number of steps; one optimizer step per generation batch on both sides
    (TRL: per_device_train_batch_size = prompts x group; ours: one micro-batch per step).
    Both on CPU, each run in its own subprocess, alternating ours / TRL. A step's time is the
    interval between the ends of consecutive optimizer steps (generation, reward, forward/
    backward, optimizer step and the loop's own overhead, the same definition on both sides),
    as wall time and as CPU time of the whole process (less sensitive to other load on a
    shared machine); step 1 of every run is warm-up and left out. The ratio on the last line
    is of median wall times. Peak memory is the training process's VmHWM (render workers are
    separate processes on both sides and not counted).

The last line is machine-readable:
    step_time_ratio_ours_over_trl=<ratio> max_abs_loss_diff=<x> max_abs_adv_diff=<x>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402 - after the environment it reads at import

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")

# --------------------------------------------------------------------------- (a) parity

PARITY_G = 4
PARITY_MAX_COMPLETION = 12
PARITY_TEMPERATURE = 0.7
PARITY_EPS_LOW, PARITY_EPS_HIGH = 0.2, 0.28  # clip-higher, so the two bounds differ
PARITY_PROMPTS = (  # (image size, colour, text)
    ((64, 48), (200, 30, 30), "Reproduce this chart."),
    ((90, 40), (20, 130, 30), "Write matplotlib code that draws the chart in the image."),
    ((40, 70), (20, 30, 230), "Code?"),
)
PARITY_LENGTHS = (5, 12, 3, 9, 7, 1, 12, 4, 10, 6, 2, 8)  # one per completion, groups of 4
PARITY_REWARDS = (0.0, 1.0, 0.25, 0.5, 0.3, 0.3, 0.3, 0.3, 1.0, 0.0, 0.0, 1.0)  # group 2 has zero variance


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


@dataclass
class FixedBatch:
    trainer: Any  # trl.GRPOTrainer around one copy of the tiny model
    trl_requests: list[dict]  # the dataset rows, each repeated G times, as TRL's sampler yields them
    trl_inputs: dict[str, Any]  # TRL's prepared inputs for the whole batch (scale_rewards="group")
    ours_model: Any  # a second copy with identical weights, for our side
    processor: Any
    messages: list  # chat messages of the prompts, our format
    completions: list[list[int]]
    rewards: torch.Tensor  # [B]
    old_logp: torch.Tensor  # [B, L] behaviour log-probs (0 on padding)
    ref_logp: torch.Tensor  # [B, L] reference log-probs (0 on padding)


def build_fixed_batch(workdir: str) -> FixedBatch:
    """The fixed batch, TRL's trainer around it, and our copy of the model."""
    _quiet()
    from datasets import Dataset
    from PIL import Image
    from trl import GRPOConfig, GRPOTrainer

    from vlrl.models.tiny import build_tiny_model

    trl_model, processor = build_tiny_model()
    ours_model, _ = build_tiny_model()  # same seed: bit-identical weights
    images = [Image.new("RGB", size, colour) for size, colour, _ in PARITY_PROMPTS]
    texts = [text for _, _, text in PARITY_PROMPTS]
    dataset = Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": t}]}] for t in texts],
            "image": images,
        }
    )
    rewards = torch.tensor(PARITY_REWARDS)

    def fixed_rewards(completions, **kwargs):
        return rewards.tolist()

    batch_size = len(PARITY_LENGTHS)
    args = GRPOConfig(
        output_dir=workdir,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        num_generations=PARITY_G,
        per_device_train_batch_size=batch_size,
        max_completion_length=PARITY_MAX_COMPLETION,
        temperature=PARITY_TEMPERATURE,
        epsilon=PARITY_EPS_LOW,
        epsilon_high=PARITY_EPS_HIGH,
        use_bias_correction_kl=False,
    )
    trainer = GRPOTrainer(
        model=trl_model, reward_funcs=fixed_rewards, args=args, train_dataset=dataset, processing_class=processor
    )

    gen = torch.Generator().manual_seed(0)
    completions = [torch.randint(10, 200, (n,), generator=gen).tolist() for n in PARITY_LENGTHS]

    def fixed_generation(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if len(prompt_ids) != batch_size:
            raise RuntimeError(f"TRL asked for {len(prompt_ids)} completions, the fixed batch has {batch_size}")
        return completions, None

    trainer._generate_single_turn = fixed_generation
    trl_requests = [dataset[i] for i in range(len(texts)) for _ in range(PARITY_G)]
    trainer.model.train()
    trl_inputs = trainer._generate_and_score_completions(trl_requests)

    messages = [
        [{"role": "user", "content": [{"type": "image", "image": im}, {"type": "text", "text": t}]}]
        for im, t in zip(images, texts)
    ]
    fb = FixedBatch(
        trainer,
        trl_requests,
        trl_inputs,
        ours_model,
        processor,
        messages,
        completions,
        rewards,
        torch.zeros(0),
        torch.zeros(0),
    )
    # Behaviour / reference log-probs: the current ones moved by up to +-0.4 nats, so ratios
    # leave [1 - eps_low, 1 + eps_high] on both sides and the KL term is not zero.
    ours_model.train()
    with torch.no_grad():
        mb = collate_rows(fb, our_rows(fb, "group"))
        from vlrl.sequences import completion_logprobs

        now, _ = completion_logprobs(ours_model, mb, PARITY_TEMPERATURE)
    noise = torch.empty_like(now).uniform_(-0.4, 0.4, generator=gen)
    fb.old_logp = (now + noise) * mb.completion_mask
    fb.ref_logp = (now - noise.flip(0)) * mb.completion_mask
    return fb


def our_prompts(fb: FixedBatch):
    """(prompt ids per prompt, PromptVision per prompt) from our encoder."""
    from vlrl.sequences import encode_prompts

    batch, vision = encode_prompts(fb.processor, fb.messages)
    ids = [row[mask.bool()].tolist() for row, mask in zip(batch["input_ids"], batch["attention_mask"])]
    return ids, vision


def prompt_ids_match(fb: FixedBatch) -> bool:
    """Our prompt tokens (chat template + image placeholders) equal TRL's, sample by sample."""
    ours, _ = our_prompts(fb)
    theirs = [row[mask.bool()].tolist() for row, mask in zip(fb.trl_inputs["prompt_ids"], fb.trl_inputs["prompt_mask"])]
    return all(ours[i // PARITY_G] == theirs[i] for i in range(len(theirs)))


def trl_advantages(fb: FixedBatch, scale: str) -> torch.Tensor:
    fb.trainer.scale_rewards = scale
    try:
        return fb.trainer._generate_and_score_completions(fb.trl_requests)["advantages"]
    finally:
        fb.trainer.scale_rewards = "group"


def our_advantages(fb: FixedBatch, scale: str) -> torch.Tensor:
    from vlrl.algo import group_advantages

    return group_advantages(fb.rewards, PARITY_G, scale)


def our_rows(fb: FixedBatch, scale: str):
    from vlrl.sequences import Row

    prompt_ids, vision = our_prompts(fb)
    advantages = our_advantages(fb, scale)
    return [
        Row(prompt_ids[i // PARITY_G], c, vision[i // PARITY_G], float(advantages[i]), index=i)
        for i, c in enumerate(fb.completions)
    ]


def collate_rows(fb: FixedBatch, rows):
    from vlrl.sequences import collate

    return collate(rows, pad_id=fb.processor.tokenizer.pad_token_id, image_token_id=fb.ours_model.config.image_token_id)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def trl_loss(fb: FixedBatch, loss_type: str, beta: float, micro_batches: int) -> tuple[float, dict[str, torch.Tensor]]:
    """TRL's _compute_loss over the batch cut into `micro_batches` accumulation steps (no shuffle)."""
    from trl.trainer.utils import (
        split_pixel_values_by_grid,
        split_tensor_dict,
        unsplit_pixel_values_by_grid,
    )

    trainer = fb.trainer
    trainer.loss_type, trainer.beta = loss_type, beta
    trainer.args.steps_per_generation = micro_batches
    trainer.current_gradient_accumulation_steps = micro_batches
    inputs = dict(fb.trl_inputs, old_per_token_logps=fb.old_logp)
    if beta:
        inputs["ref_per_token_logps"] = fb.ref_logp
    parts = [
        unsplit_pixel_values_by_grid(p) for p in split_tensor_dict(split_pixel_values_by_grid(inputs), micro_batches)
    ]
    trainer.model.train()
    trainer.model.zero_grad(set_to_none=True)
    total = 0.0
    for part in parts:
        loss = trainer._compute_loss(trainer.model, part)
        loss.backward()
        total += float(loss.detach())
    return total, _grads(trainer.model)


def our_loss(fb: FixedBatch, loss_type: str, beta: float, micro_batches: int) -> tuple[float, dict[str, torch.Tensor]]:
    """Our loss, called the way vlrl.trainer.train calls it, over the same rows cut the same way."""
    from vlrl.algo import BatchCounts, micro_batch_loss, per_token_loss
    from vlrl.sequences import completion_logprobs

    rows = our_rows(fb, "group")
    counts = BatchCounts(num_sequences=len(rows), active_tokens=sum(len(r.completion_ids) for r in rows))
    size = len(rows) // micro_batches
    model = fb.ours_model
    model.train()
    model.zero_grad(set_to_none=True)
    total = 0.0
    for k in range(micro_batches):
        part = rows[k * size : (k + 1) * size]
        mb = collate_rows(fb, part)
        index = torch.tensor([r.index for r in part])
        width = mb.target_ids.shape[1]
        logp, _ = completion_logprobs(model, mb, PARITY_TEMPERATURE)
        tokens, _ = per_token_loss(
            logp,
            fb.old_logp[index, :width],
            mb.advantages,
            ref_logp=fb.ref_logp[index, :width] if beta else None,
            beta=beta,
            eps_low=PARITY_EPS_LOW,
            eps_high=PARITY_EPS_HIGH,
        )
        loss = micro_batch_loss(
            tokens,
            mb.completion_mask,
            loss_type,
            counts=counts,
            num_micro_steps=micro_batches,
            world_size=1,
            max_completion_length=PARITY_MAX_COMPLETION,
            engine_scales_by_accumulation=False,
        )
        loss.backward()
        total += float(loss.detach())
    return total, _grads(model)


def max_grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if a.keys() != b.keys():
        raise RuntimeError(f"gradients for different parameters: {sorted(a.keys() ^ b.keys())[:5]}")
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def parity_report(workdir: str) -> dict[str, Any]:
    """All parity checks: {'prompt_ids_match', 'advantages': [...], 'losses': [...], max diffs}."""
    fb = build_fixed_batch(workdir)
    advantages = []
    for scale in ("group", "batch", "none"):
        diff = float((trl_advantages(fb, scale) - our_advantages(fb, scale)).abs().max())
        advantages.append({"scale": scale, "max_abs_diff": diff})
    losses = []
    for beta in (0.0, 0.04):
        for micro_batches in (1, 2):
            for loss_type in LOSS_TYPES:
                theirs, their_grads = trl_loss(fb, loss_type, beta, micro_batches)
                ours, our_grads = our_loss(fb, loss_type, beta, micro_batches)
                losses.append(
                    {
                        "loss_type": loss_type,
                        "beta": beta,
                        "micro_batches": micro_batches,
                        "trl": theirs,
                        "ours": ours,
                        "abs_diff": abs(theirs - ours),
                        "grad_max_abs_diff": max_grad_diff(their_grads, our_grads),
                    }
                )
    return {
        "prompt_ids_match": prompt_ids_match(fb),
        "advantages": advantages,
        "losses": losses,
        "max_abs_adv_diff": max(a["max_abs_diff"] for a in advantages),
        "max_abs_loss_diff": max(r["abs_diff"] for r in losses),
        "max_abs_grad_diff": max(r["grad_max_abs_diff"] for r in losses),
    }


def print_parity(report: dict[str, Any]) -> None:
    print("\n(a) parity on a fixed batch (3 prompts x G=4, lengths 1..12, fixed rewards/old/ref log-probs)")
    print(f"prompt token ids identical: {report['prompt_ids_match']}")
    print("| advantages scale | max abs diff |\n|---|---|")
    for a in report["advantages"]:
        print(f"| {a['scale']} | {a['max_abs_diff']:.2e} |")
    print("| loss type | beta | micro-batches | TRL loss | ours | abs diff | max abs grad diff |")
    print("|---|---|---|---|---|---|---|")
    for r in report["losses"]:
        print(
            f"| {r['loss_type']} | {r['beta']:g} | {r['micro_batches']} | {r['trl']:.8f} | {r['ours']:.8f} "
            f"| {r['abs_diff']:.2e} | {r['grad_max_abs_diff']:.2e} |"
        )
    print(
        f"max abs diff: advantages {report['max_abs_adv_diff']:.2e}, loss {report['max_abs_loss_diff']:.2e}, "
        f"gradient {report['max_abs_grad_diff']:.2e}"
    )


# --------------------------------------------------------------------------- (b) timing

# ~5M parameters: wide enough that the forward/backward, not Python, is most of a step.
MODEL_SIZES = {
    "hidden_size": 256,
    "layers": 4,
    "heads": 8,
    "kv_heads": 4,
    "intermediate_size": 768,
    "vision_hidden": 64,
    "vision_heads": 4,
}


def peak_rss_mib() -> float:
    """High-water mark of this process's resident memory (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_config(args, run_dir: str):
    """Our typed config for the run; TRL's settings are derived from the same object."""
    from vlrl.config import load_config

    return load_config(
        [
            f"model.path={args.model_dir}",
            f"data.train={args.corpus}",
            f"out={run_dir}",
            f"seed={args.seed}",
            f"rollout.n={args.group}",
            f"data.prompts_per_step={args.prompts}",
            f"rollout.max_new_tokens={args.max_new_tokens}",
            f"algo.loss_type={args.loss_type}",
            f"trainer.steps={args.steps}",
            "data.shuffle=false",
            "trainer.micro_batch_tokens=10000000",
            "trainer.tensorboard=false",
            "trainer.save_every=0",
            "trainer.resume=never",
            "trainer.lr=1e-5",
        ]
    )


class StepClock:
    """Wall and CPU (all threads of this process) time stamped at the end of every step;
    per-step times are the intervals between consecutive stamps, the same definition on both
    sides (a step's generation, reward, forward/backward, optimizer step and loop overhead)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []
        self.phases: dict[str, list[float]] = {}  # per step, when the side reports them

    def stamp(self) -> None:
        self.stamps.append((time.perf_counter(), time.process_time()))

    def result(self) -> dict[str, Any]:
        wall = [b[0] - a[0] for a, b in zip(self.stamps, self.stamps[1:])]
        cpu = [b[1] - a[1] for a, b in zip(self.stamps, self.stamps[1:])]
        return {"step_wall": wall, "step_cpu": cpu, "phases": {k: v[1:] for k, v in self.phases.items()}}


def run_ours(args, run_dir: str) -> dict[str, Any]:
    import vlrl.trainer as trainer_module

    clock = StepClock()
    if not hasattr(trainer_module, "step_metrics"):
        raise SystemExit("vlrl.trainer.step_metrics is gone: update run_ours to stamp the end of each step")
    step_metrics = trainer_module.step_metrics

    def stamped_step_metrics(*a, **k):  # called once per step, right after the optimizer step
        clock.stamp()
        return step_metrics(*a, **k)

    trainer_module.step_metrics = stamped_step_metrics
    trainer_module.train(run_config(args, run_dir))
    rows = [json.loads(line) for line in (Path(run_dir) / "stage1" / "metrics.jsonl").read_text().splitlines()]
    for key in ("generate", "score", "train"):
        clock.phases[key] = [r.get(f"time/{key}", 0.0) for r in rows]
    return {**clock.result(), "completion_length": statistics.mean(r["completion_length/mean"] for r in rows)}


def run_trl(args, run_dir: str) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from renderers import RenderPool
    from rewards import CompositeReward
    from vlrl.datasets.charts import load_chart_examples
    from vlrl.models.loading import load_model_and_processor
    from vlrl.tasks.chart_scorer import ChartScorer

    cfg = run_config(args, run_dir)
    model, processor = load_model_and_processor(
        cfg.model.path, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels, seed=cfg.seed
    )
    pool = RenderPool(timeout=20)
    task = ChartScorer(pool, CompositeReward(cfg.reward.weights, cfg.reward.options))
    examples, _ = task.usable(load_chart_examples(cfg.data.train).examples)
    by_id = {ex.id: ex for ex in examples}
    messages = task.prompt_messages(examples)  # the prompts our trainer builds, figsize hint included
    dataset = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": m[0]["content"][1]["text"]}]}]
                for m in messages
            ],
            "image": [task.image(ex) for ex in examples],
            "example_id": [ex.id for ex in examples],
        }
    )

    def chart_reward(completions, example_id, **kwargs):
        """The same composite reward our trainer computes: render in the pool, then score."""
        texts = [c[0]["content"] for c in completions]
        return [o.score for o in task.score([by_id[i] for i in example_id], texts).outputs]

    clock = StepClock()
    clock.phases = {"generate": [0.0], "score": [0.0]}

    class EndOfStep(TrainerCallback):
        def on_step_end(self, *a, **k):
            clock.stamp()
            clock.phases["generate"].append(0.0)
            clock.phases["score"].append(0.0)

    trl_args = GRPOConfig(
        output_dir=run_dir,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=cfg.seed,
        shuffle_dataset=False,
        max_steps=cfg.trainer.steps,
        learning_rate=cfg.trainer.lr,
        weight_decay=cfg.trainer.weight_decay,
        max_grad_norm=cfg.trainer.grad_clip,
        num_generations=cfg.rollout.n,
        per_device_train_batch_size=cfg.rollout.n * cfg.data.prompts_per_step,
        gradient_accumulation_steps=1,
        max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        loss_type=cfg.algo.loss_type,
        scale_rewards=cfg.algo.advantage,
        beta=cfg.algo.beta,
        epsilon=cfg.algo.eps_low,
        epsilon_high=cfg.algo.eps_high,
        use_bias_correction_kl=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=chart_reward,
        args=trl_args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[EndOfStep()],
    )

    def timed(method, phase):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                clock.phases[phase][-1] += time.perf_counter() - t0

        return wrapper

    trainer._generate_single_turn = timed(trainer._generate_single_turn, "generate")
    trainer._calculate_rewards = timed(trainer._calculate_rewards, "score")
    trainer.train()
    pool.close()
    clock.phases = {k: v[:-1] for k, v in clock.phases.items()}  # the slot opened after the last step
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {**clock.result(), "completion_length": statistics.mean(lengths)}


def child_main(args) -> None:
    """One timed run in this process; results as JSON to args.result."""
    _quiet()
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_ours(args, run_dir) if args.side == "ours" else run_trl(args, run_dir)
    result["peak_rss_mib"] = peak_rss_mib()
    Path(args.result).write_text(json.dumps(result))


def prepare_inputs(args, workdir: Path) -> None:
    """The shared model checkpoint and chart corpus (unless given)."""
    from transformers.utils import logging as hf_logging

    from vlrl.models.tiny import save_tiny_model

    hf_logging.disable_progress_bar()
    if not args.model_dir:
        args.model_dir = str(save_tiny_model(workdir / "model", seed=args.seed, **MODEL_SIZES))
    if not args.corpus:
        from vlrl.datasets.corpus import SynthOptions, run

        args.corpus = str(workdir / "corpus")
        # one chart per prompt of every step: no epoch wrap-around, the same charts on both sides
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            run(SynthOptions(n=args.prompts * args.steps + 4, out=args.corpus, seed=args.seed))


def timed_runs(args, workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """rounds x (ours, TRL), the order flipped every round; each run in a fresh subprocess."""
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "trl": []}
    for r in range(args.rounds):
        for side in ("ours", "trl") if r % 2 == 0 else ("trl", "ours"):
            out = workdir / f"{side}-{r}.json"
            cmd = [
                sys.executable,
                __file__,
                "--side",
                side,
                "--result",
                str(out),
                "--model-dir",
                args.model_dir,
                "--corpus",
                args.corpus,
                "--steps",
                str(args.steps),
                "--group",
                str(args.group),
                "--prompts",
                str(args.prompts),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--loss-type",
                args.loss_type,
                "--seed",
                str(args.seed),
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
                raise SystemExit(f"the {side} run failed (exit {proc.returncode})")
            result = json.loads(out.read_text())
            result["wall_s"] = time.perf_counter() - t0
            results[side].append(result)
            print(
                f"  round {r + 1} {side:4s}: median step {statistics.median(result['step_wall']):.3f} s wall, "
                f"{statistics.median(result['step_cpu']):.3f} s CPU, peak RSS {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    return results


def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for side, runs in results.items():
        wall = [t for run in runs for t in run["step_wall"]]
        cpu = [t for run in runs for t in run["step_cpu"]]
        out[side] = {
            "median_wall_s": statistics.median(wall),
            "min_wall_s": min(wall),
            "max_wall_s": max(wall),
            "median_cpu_s": statistics.median(cpu),
            "steps": len(wall),
            "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
            "completion_length": statistics.mean(run["completion_length"] for run in runs),
            "phases": {k: statistics.median(t for run in runs for t in run["phases"][k]) for k in runs[0]["phases"]},
        }
    return out


def print_timing(args, summary: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n(b) step time, {args.steps} steps x {args.rounds} runs per side, alternating (step 1 of each run is "
        f"warm-up); G={args.group}, {args.prompts} prompts/step, max_new_tokens={args.max_new_tokens}, "
        f"loss={args.loss_type}, ~5M-parameter tiny Qwen2-VL, CPU ({os.cpu_count()} cores)"
    )
    print(
        "| trainer | median step, wall (s) | min | max | median step, CPU (s) | steps timed "
        "| generate (s) | render+reward (s) | mean completion tokens | peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for side, name in (("ours", "vlrl"), ("trl", "TRL GRPOTrainer")):
        s = summary[side]
        print(
            f"| {name} | {s['median_wall_s']:.3f} | {s['min_wall_s']:.3f} | {s['max_wall_s']:.3f} "
            f"| {s['median_cpu_s']:.3f} | {s['steps']} | {s['phases']['generate']:.3f} "
            f"| {s['phases']['score']:.3f} | {s['completion_length']:.1f} | {s['peak_rss_mib']:.0f} |"
        )
    o, t = summary["ours"], summary["trl"]
    print(
        f"ratio ours/TRL: wall {o['median_wall_s'] / t['median_wall_s']:.3f}, "
        f"CPU {o['median_cpu_s'] / t['median_cpu_s']:.3f}"
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    p.add_argument("--rounds", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--group", type=int, default=4, help="completions per prompt (G)")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--loss-type", choices=LOSS_TYPES, default="grpo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", default="", help="a saved model to use (default: the ~5M tiny model)")
    p.add_argument("--corpus", default="", help="a `vlrl data synth` folder (default: a fresh one)")
    p.add_argument("--parity-only", action="store_true", help="only (a)")
    p.add_argument("--side", choices=("ours", "trl"), help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.side:
        child_main(args)
        return
    if args.steps < 2:
        raise SystemExit("--steps must be >= 2: the first step of every run is warm-up")
    with tempfile.TemporaryDirectory(prefix="trl_compare_") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        report = parity_report(str(workdir / "parity"))
        print_parity(report)
        print(f"(parity: {time.perf_counter() - t0:.1f} s)")
        ratio = float("nan")
        if not args.parity_only:
            prepare_inputs(args, workdir)
            print("\n(b) timing runs:", flush=True)
            summary = summarise(timed_runs(args, workdir))
            print_timing(args, summary)
            ratio = summary["ours"]["median_wall_s"] / summary["trl"]["median_wall_s"]
    print(
        f"step_time_ratio_ours_over_trl={ratio:.3f} max_abs_loss_diff={report['max_abs_loss_diff']:.2e} "
        f"max_abs_adv_diff={report['max_abs_adv_diff']:.2e}"
    )


if __name__ == "__main__":
    main()
