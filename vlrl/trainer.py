"""`vlrl train`: the RL recipe, read top to bottom as its phases.

    set up      the task (data first), the policy behind DeepSpeed, the reference model,
                the rollout engine, the resume point, the logger
    per step    collect   the task samples and scores this rank's share: StepSamples
                optimise  advantages -> token-budget micro-batches -> loss normalised over
                          the global batch -> one optimizer step: OptimiseResult
                after     weights to the rollout engine, evaluate, checkpoint, log
    clean up    final weights, reward plot, close the task

The run directory holds one folder per curriculum stage:

    OUT/config.yaml                 the resolved config of the latest run
    OUT/stage1/metrics.jsonl        one row per step
    OUT/stage1/checkpoints/step-N   DeepSpeed state + trainer state (resume)
    OUT/stage1/final                HF weights (safetensors) + processor: stage 2 starts here
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.checkpoints import has_checkpoint, resume_state, save_checkpoint, save_hf
from vlrl.config import Config, check_config, save_config, task_spec
from vlrl.jsonl import write_json_atomic
from vlrl.metrics_log import reward_trend
from vlrl.optimizer_step import OptimiseResult, filler_row, optimise, plan_micro_batches
from vlrl.options import UserError
from vlrl.policy import Policy, generation_context, load_reference, seed_everything, setup_policy
from vlrl.profiling import PhaseTimer
from vlrl.rollout.base import RolloutEngine
from vlrl.step_metrics import MicroBatchStats, format_metrics, gather_metrics, step_metrics
from vlrl.tasks.base import StepSamples, TrainingTask

# --------------------------------------------------------------------------- set-up pieces


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
        print(f"stage {cfg.stage} starts from stage {cfg.stage - 1}'s final weights in {previous}", file=sys.stderr)
        return str(previous)
    return cfg.model.path


def build_task(cfg: Config):
    """The training task named by cfg.task (vlrl.tasks.registry); it loads and checks its
    data before any model."""
    return task_spec(cfg).builder()(cfg)


def build_rollout(cfg: Config, policy: Policy, init: str, out: Path) -> RolloutEngine:
    """The HF engine samples from the training module itself; vLLM gets a copy of the weights."""
    from vlrl.rollout.build import build_rollout_engine

    weights = init
    if cfg.rollout.engine == "vllm" and not (Path(init) / "config.json").exists():
        weights = str(out / "initial_model")  # the tiny models exist only in memory: save them for vLLM
        save_hf(policy.engine, policy.processor, Path(weights))
    return build_rollout_engine(
        cfg.model,
        cfg.rollout,
        seed=cfg.seed,
        weights=weights,
        model=policy.engine.module,
        processor=policy.processor,
        generation_context=generation_context(policy.engine),
        colocated=True,  # vLLM in this process, where the trained weights can be written into it
    )


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


# --------------------------------------------------------------------------- the recipe


class RLRecipe:
    """One stage of RL training; `run()` calls the phases in order."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.out = stage_dir(cfg)
        self.task: TrainingTask | None = None

    def run(self) -> Path:
        try:
            self.setup()
            for step in range(self.start_step, self.cfg.trainer.steps):
                started = time.perf_counter()
                samples = self.collect(step)
                result = self.optimise(samples)
                self.after_step(step, samples, result, started)
            return self.finish()
        finally:
            if self.task is not None:
                self.task.close()  # its render pool and threads, also after a failure

    # ------------------------------------------------------------------ set up

    def setup(self) -> None:
        cfg = self.cfg
        check_config(cfg)
        init = initial_weights(cfg)  # stage 2 without stage 1's weights fails here, before anything
        dist_utils.init_distributed()
        seed_everything(cfg.seed)
        self.task = build_task(cfg)  # loads and checks its data before any model
        self.policy = setup_policy(cfg, init)
        # a frozen reference only when the KL term exists
        self.reference = load_reference(cfg, init) if cfg.algo.beta > 0 else None
        # inputs checked and the model loaded: only now is anything written in OUT
        self.out.mkdir(parents=True, exist_ok=True)
        if dist_utils.is_main():
            save_config(cfg, Path(cfg.out) / "config.yaml")
            save_config(cfg, self.out / "config.yaml")
        self.rollout = build_rollout(cfg, self.policy, init, self.out)
        self.timer = PhaseTimer(cuda_sync=cfg.trainer.profile)
        self.start_step = 0
        state = resume_state(self.policy.engine, self.out / "checkpoints") if cfg.trainer.resume == "auto" else None
        if state is not None:
            self.start_step = int(state["step"])
            self.task.load_state_dict(state.get("task", {}))
            if self.start_step >= cfg.trainer.steps:
                print(
                    f"stage {cfg.stage} already finished step {self.start_step} of {cfg.trainer.steps}; nothing to "
                    f"train (raise trainer.steps to go on, or trainer.resume=never to start over)",
                    file=sys.stderr,
                )
            else:
                print(f"resuming stage {cfg.stage} from step {self.start_step}", file=sys.stderr)
        self.logger = None
        if dist_utils.is_main():
            from vlrl.config import to_dict
            from vlrl.metrics_log import MetricsLogger

            self.logger = MetricsLogger(
                self.out,
                tensorboard=cfg.trainer.tensorboard,
                wandb=cfg.trainer.wandb,
                run_name=f"{Path(cfg.out).name}-stage{cfg.stage}",
                config=to_dict(cfg),
                start_step=self.start_step,
            )

    # ------------------------------------------------------------------ per step

    def collect(self, step: int) -> StepSamples:
        return self.task.collect(step, self.rollout, self.timer)

    def optimise(self, samples: StepSamples) -> OptimiseResult:
        from vlrl.algo import BatchCounts
        from vlrl.sequences import Row

        cfg, world = self.cfg, dist_utils.world_size()
        with self.timer.phase("encode"):
            vision = prompt_visions(samples, self.policy.processor)
        flat = samples.completions
        rows = [
            Row(c.prompt_ids, c.token_ids, vision[i], float(samples.advantages[i]), c.logprobs, index=i)
            for i, c in enumerate(flat)
            if samples.keep[i] and c.token_ids
        ]
        counts = BatchCounts(num_sequences=len(rows), active_tokens=sum(len(r.completion_ids) for r in rows))
        if world > 1:
            t = dist_utils.all_reduce(torch.tensor([counts.num_sequences, counts.active_tokens], dtype=torch.long))
            counts = BatchCounts(int(t[0]), int(t[1]))
        # A rank that kept nothing repeats one token of a dropped sample with its images, so
        # the same modules run on every rank (plan_micro_batches).
        mbs, real = plan_micro_batches(
            rows, cfg.trainer.micro_batch_tokens, lambda: filler_row(flat, vision, self.policy.pad_id)
        )
        max_len = samples.max_completion_length or cfg.rollout.max_new_tokens

        def loss_fn(mb, mb_rows):
            return self.policy_loss(mb, mb_rows, counts, len(mbs), max_len)

        return optimise(self.policy, mbs, real, loss_fn, self.timer)

    def policy_loss(self, mb, mb_rows, counts, num_micro: int, max_len: int) -> tuple[torch.Tensor, MicroBatchStats]:
        """The clipped policy-gradient loss of one micro-batch, scaled so the micro-batches of
        every rank add up to the global batch's objective (vlrl.algo.losses)."""
        from vlrl.algo import loss_metrics, micro_batch_loss, per_token_loss
        from vlrl.sequences import completion_logprobs

        cfg, timer = self.cfg, self.timer
        with timer.phase("forward"):
            logp, entropy = completion_logprobs(self.policy.engine, mb, cfg.rollout.temperature, with_entropy=True)
        ref_logp = None
        if self.reference is not None:
            with timer.phase("reference"), torch.no_grad():
                ref_logp, _ = completion_logprobs(self.reference, mb, cfg.rollout.temperature)
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
            num_micro_steps=num_micro,
            world_size=dist_utils.world_size(),
            max_completion_length=max_len,
            engine_scales_by_accumulation=False,
        )
        behaviour = torch.zeros_like(logp)
        for i, r in enumerate(mb_rows):
            behaviour[i, : len(r.old_logprobs or [])] = torch.tensor(r.old_logprobs or [], dtype=logp.dtype)
        stats = MicroBatchStats(
            loss_metrics(info, mb.completion_mask, entropy),
            float(((logp.detach() - behaviour).abs() * mb.completion_mask).sum()),
            float(mb.completion_mask.sum()),
        )
        return loss, stats

    def after_step(self, step: int, samples: StepSamples, result: OptimiseResult, started: float) -> None:
        """Weights to the rollout engine, then evaluate, checkpoint and log as scheduled."""
        cfg, timer, engine = self.cfg, self.timer, self.policy.engine
        with timer.phase("sync"), generation_context(engine)():
            self.rollout.sync_weights(engine.module)  # colocated HF engine: nothing to copy
        last = step + 1 == cfg.trainer.steps
        evaluation: dict[str, Any] = {}
        if cfg.trainer.eval_every and ((step + 1) % cfg.trainer.eval_every == 0 or last):
            with timer.phase("eval"):  # the rollout engine gathers ZeRO-3 weights itself
                evaluation = self.task.evaluate(step, self.rollout, timer)
        # the last step is checkpointed too, so a longer run (more steps) resumes exactly here
        if (cfg.trainer.save_every and (step + 1) % cfg.trainer.save_every == 0) or (last and cfg.trainer.save_final):
            with timer.phase("checkpoint"):
                save_checkpoint(
                    engine,
                    self.out / "checkpoints" / f"step-{step + 1}",
                    {"step": step + 1, "task": self.task.state_dict()},
                    cfg.trainer.keep_checkpoints,
                )
        split = timer.end_step(total=time.perf_counter() - started)  # with "other": what no phase timed
        row = step_metrics(
            step, samples, result, self.policy.scheduler.get_last_lr()[0], {**split, "step": sum(split.values())}
        )
        row.update(evaluation)
        row = gather_metrics(row)  # every rank takes part; rank 0 logs the whole batch
        if not dist_utils.is_main():
            return
        for event in samples.events:
            print(event, file=sys.stderr, flush=True)
        every = cfg.trainer.log_samples_every
        if every and (step + 1) % every == 0 and samples.report is not None:
            samples.report(self.out / "samples", step + 1)
        if (step + 1) % cfg.trainer.log_every == 0 or last or evaluation:
            self.logger.log(row)
            print(format_metrics(row), flush=True)
            if cfg.trainer.profile:
                print(timer.table(split), flush=True)

    # ------------------------------------------------------------------ clean up

    def finish(self) -> Path:
        cfg = self.cfg
        trained = self.start_step < cfg.trainer.steps
        if cfg.trainer.save_final and (trained or not (self.out / "final" / "config.json").exists()):
            save_hf(self.policy.engine, self.policy.processor, self.out / "final")
        if self.logger is not None:
            self.logger.close()
            from vlrl.metrics_log import plot_rewards

            plot_rewards(self.out / "metrics.jsonl", self.out)
            print(reward_trend(self.out / "metrics.jsonl"), flush=True)
            if cfg.trainer.profile:
                print(f"time split over {cfg.trainer.steps - self.start_step} steps:\n{self.timer.table()}", flush=True)
                write_json_atomic(self.out / "profile.json", dict(self.timer.totals))
        return self.out / "final"


def needs_warm_start(cfg: Config) -> bool:
    """sft.warm_start asks for SFT before stage 1 when nothing else gives its weights (a
    stage that resumes from a checkpoint has them)."""
    if not cfg.sft.warm_start or cfg.stage != 1 or cfg.init_from:
        return False
    resumable = cfg.trainer.resume == "auto" and has_checkpoint(stage_dir(cfg) / "checkpoints")
    return not (Path(cfg.out) / "sft" / "final" / "config.json").exists() and not resumable


def train(cfg: Config) -> Path:
    """One stage of `vlrl train`; returns where its final weights are."""
    if needs_warm_start(cfg):
        from vlrl.sft import sft

        print(
            f"warm start: stage 1 has no weights to start from (no init_from, nothing in {cfg.out}/sft/final), "
            f"so SFT on {cfg.data.train} runs first (sft.warm_start=false skips it)",
            file=sys.stderr,
        )
        sft(cfg)
    return RLRecipe(cfg).run()
