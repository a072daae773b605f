"""Chart-to-code as a training task: GRPO groups of code answers scored by rendering them.

Each step this rank takes its share of the global prompt batch, samples n completions per
chart chunk by chunk (each chunk's completions go to the render pool at once, so rendering
and reward scoring run while the engine generates the next chunk), scores them with the
stage's composite reward, and turns rewards into group advantages. With dynamic sampling
(DAPO) or the MSRL accuracy band, uninformative groups are dropped and refilled by further
rollout rounds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config
from vlrl.options import UserError
from vlrl.tasks.base import StepSamples

DEFAULT_CORPUS = "runs/corpus"


def ensure_default_corpus(cfg: Config, n: int = 200) -> None:
    """The embedded default trains on a synthetic corpus, generated on first use."""
    if cfg.data.train != DEFAULT_CORPUS or (Path(DEFAULT_CORPUS) / "index.jsonl").exists():
        return
    if dist_utils.is_main():
        from vlrl.datasets.corpus import SynthOptions, run

        print(f"no corpus at {DEFAULT_CORPUS}: generating {n} synthetic charts (seed {cfg.seed})", file=sys.stderr)
        run(SynthOptions(n=n, out=DEFAULT_CORPUS, seed=cfg.seed))
    if dist_utils.world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


class PromptSampler:
    """A seeded, epoch-by-epoch shuffled order; position is derived from the step (resumable)."""

    def __init__(self, n: int, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle

    def batch(self, step: int, size: int) -> list[int]:
        import random

        out = []
        for k in range(step * size, (step + 1) * size):
            epoch, pos = divmod(k, self.n)
            order = list(range(self.n))
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(order[pos])
        return out


class Chart2CodeRL:
    def __init__(self, cfg: Config) -> None:
        from renderers import RenderPool
        from rewards import CompositeReward
        from rewards.base import load_plugins
        from vlrl.datasets.charts import load_chart_examples
        from vlrl.tasks.chart2code import Chart2CodeTask

        self.cfg = cfg
        ensure_default_corpus(cfg)
        report = load_chart_examples(cfg.data.train)
        for problem in report.skipped[:5]:
            print(f"skipped {problem}", file=sys.stderr)
        self.pool = RenderPool(timeout=20)
        try:
            load_plugins(cfg.reward.plugins)
            reward = CompositeReward(cfg.reward.weights, cfg.reward.options)
        except (KeyError, FileNotFoundError) as exc:
            self.pool.close()
            raise UserError(str(exc).strip("'\"")) from None
        self.task = Chart2CodeTask(self.pool, reward)
        self.examples, bad = self.task.usable(report.examples)
        if bad:
            print(f"skipped {len(bad)} examples whose reference code fails, e.g. {bad[0]}", file=sys.stderr)
        if not self.examples:
            self.pool.close()
            raise UserError(f"{cfg.data.train}: no usable training charts")
        self.sampler = PromptSampler(len(self.examples), cfg.seed, cfg.data.shuffle)
        self.world, self.rank = dist_utils.world_size(), dist_utils.rank()
        self.per_rank = max(1, cfg.data.prompts_per_step // self.world)

    # ------------------------------------------------------------------ one rollout round

    def _round(self, step: int, round_index: int, rollout: Any, timer: Any):
        """Prompts -> n completions each -> scores, for this rank's share of the batch."""
        from vlrl.algo import soft_overlong_penalty
        from vlrl.rollout.base import SamplingParams

        cfg, n, per_rank = self.cfg, self.cfg.rollout.n, self.per_rank
        order = self.sampler if round_index == 0 else PromptSampler(
            len(self.examples), cfg.seed + 7919 * round_index, cfg.data.shuffle)
        ids = order.batch(step, per_rank * self.world)[self.rank * per_rank:(self.rank + 1) * per_rank]
        batch_examples = [self.examples[i] for i in ids]
        messages = self.task.prompt_messages(batch_examples)
        params = SamplingParams(n=n, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
                                max_new_tokens=cfg.rollout.max_new_tokens)
        completions, renders = [], []
        for c0 in range(0, len(messages), cfg.rollout.chunk_prompts):
            chunk = messages[c0:c0 + cfg.rollout.chunk_prompts]
            # Seeded by the chunk's position in the global batch, not by rank: the same global
            # batch samples the same completions whatever the number of ranks.
            params.seed = (((cfg.seed * 100_003 + step) * 101 + round_index) * 1_000_003
                           + self.rank * per_rank + c0)
            with timer.phase("generate"):
                chunk_completions = [c for g in rollout.generate(chunk, params) for c in g]
            if cfg.rollout.overlap_scoring:
                renders += self.task.start_renders([c.text for c in chunk_completions])
            completions += chunk_completions
        if hasattr(rollout, "sleep"):
            rollout.sleep()  # vLLM frees the GPU for the training step
        with timer.phase("score"):
            if not cfg.rollout.overlap_scoring:  # the sequential path, for comparison
                renders = self.task.start_renders([c.text for c in completions])
            per_sample = [ex for ex in batch_examples for _ in range(n)]
            scored = self.task.score(per_sample, [c.text for c in completions], renders)
        rewards = torch.tensor([o.score for o in scored.outputs], dtype=torch.float32)
        if cfg.algo.overlong == "soft":
            lengths = torch.tensor([len(c.token_ids) for c in completions])
            rewards = rewards + soft_overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.algo.overlong_cache)
        return messages, completions, scored, rewards, per_sample

    # ------------------------------------------------------------------ one step

    def collect(self, step: int, rollout: Any, timer: Any) -> StepSamples:
        from vlrl.algo import advantage_stats, group_advantages, overlong_mask, zero_variance_groups

        cfg, n, per_rank = self.cfg, self.cfg.rollout.n, self.per_rank
        # Rounds of rollouts until enough informative groups (dynamic sampling refills the
        # groups it drops; without it one round is taken as it comes).
        requests, completions, outputs, renders, reward_parts, group_keep, examples = [], [], [], [], [], [], []
        rounds = 0
        max_rounds = cfg.algo.max_refill_rounds if cfg.algo.dynamic_sampling else 1
        while rounds < max_rounds and sum(group_keep) < per_rank:
            messages, flat, scored, r, per_sample = self._round(step, rounds, rollout, timer)
            rounds += 1
            keep_groups = torch.ones(len(flat) // n, dtype=torch.bool)
            if cfg.algo.dynamic_sampling:
                keep_groups &= ~zero_variance_groups(r, n)
            means = r.view(-1, n).mean(1)
            if cfg.algo.filter_low > 0 or cfg.algo.filter_high < 1:
                keep_groups &= (means > cfg.algo.filter_low) & (means < cfg.algo.filter_high)
            requests += messages
            completions += flat
            outputs += scored.outputs
            renders += scored.renders
            reward_parts.append(r)
            group_keep += keep_groups.tolist()
            examples += per_sample
        if cfg.algo.dynamic_sampling and sum(group_keep) > per_rank:
            extra = sum(group_keep) - per_rank  # keep the first per_rank informative groups
            for g in range(len(group_keep) - 1, -1, -1):
                if extra and group_keep[g]:
                    group_keep[g], extra = False, extra - 1
        rewards = torch.cat(reward_parts)
        advantages = group_advantages(rewards, n, cfg.algo.advantage)
        keep = torch.tensor(group_keep, dtype=torch.bool).repeat_interleave(n)
        if cfg.algo.overlong == "filter":
            lengths = torch.tensor([len(c.token_ids) for c in completions])
            eos_found = torch.tensor([c.finish_reason == "stop" for c in completions])
            keep &= overlong_mask(lengths, cfg.rollout.max_new_tokens, eos_found)

        metrics: dict[str, Any] = dict(advantage_stats(advantages, rewards, n))
        components: dict[str, list[float]] = {}
        for o in outputs:
            for k, v in o.components.items():
                components.setdefault(k, []).append(float(v))
        metrics.update({f"reward/{k}": sum(v) / len(v) for k, v in components.items()})
        metrics["exec_rate"] = sum(r.ok for r in renders) / max(1, len(renders))
        metrics["rollout_rounds"] = rounds

        def report(directory: Path, report_step: int) -> Path:
            return report_samples(directory, report_step, self.task, examples, completions, outputs, renders, n)

        return StepSamples(completions=completions, requests=requests,
                           request_of=[i // n for i in range(len(completions))],
                           advantages=advantages, keep=keep, metrics=metrics, report=report)

    def state_dict(self) -> dict[str, Any]:
        return {}  # the prompt order is a function of (seed, step)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        self.pool.close()


def report_samples(directory: Path, step: int, task, examples, completions, outputs, renders, n: int,
                   prompts: int = 3) -> Path:
    """The first few prompts of the step, each with all n samples, their renderings and scores."""
    from vlrl.reports import PromptView, SampleView, write_sample_report

    views = []
    for g in range(min(prompts, len(completions) // n)):
        samples = [SampleView(text=completions[i].text, png=renders[i].png if renders[i].ok else None,
                              error=None if renders[i].ok else f"{renders[i].error_kind}: {renders[i].error}",
                              score=float(outputs[i].score), components=dict(outputs[i].components),
                              critique=outputs[i].critique)
                   for i in range(g * n, (g + 1) * n)]
        views.append(PromptView(examples[g * n].id, task.image(examples[g * n]), samples))
    return write_sample_report(directory, step, views)
