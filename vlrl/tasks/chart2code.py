"""Chart-to-code as a training task: GRPO groups of code answers scored by rendering them.

Each step this rank takes its share of the global prompt batch and samples n completions per
chart, chunk by chunk. Each chunk's completions go to the render pool at once, and a scoring
thread turns their renders into the stage's composite reward, so both run while the engine
generates the next chunk. Rewards then become group advantages. With dynamic sampling
(DAPO) or the MSRL accuracy band, uninformative groups are dropped and refilled by further
rollout rounds.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from vlrl import distributed as dist_utils
from vlrl.config import Config
from vlrl.data_order import PromptSampler
from vlrl.options import UserError
from vlrl.profiling import PhaseTimer
from vlrl.rollout.base import RolloutEngine
from vlrl.tasks.base import StepSamples

# The default data.train folders, drawn on first use: the realistic synthetic families for
# the plumbing model, starter charts for the learnable one (vlrl.datasets.starter).
DEFAULT_CORPORA = {"runs/corpus": "full", "runs/starter": "starter"}


def ensure_default_corpus(cfg: Config, n: int = 200) -> None:
    """A default data.train folder is generated on first use."""
    style = DEFAULT_CORPORA.get(cfg.data.train)
    if style is None or (Path(cfg.data.train) / "index.jsonl").exists():
        return

    def make() -> None:
        from vlrl.datasets.corpus import SynthOptions, run

        print(
            f"no corpus at {cfg.data.train}: generating {n} {'starter' if style == 'starter' else 'synthetic'} "
            f"charts there (seed {cfg.seed}), outside out={cfg.out} and shared by every run that keeps this "
            f"data.train; data.train=DIR uses yours",
            file=sys.stderr,
        )
        run(SynthOptions(n=n, out=cfg.data.train, seed=cfg.seed, style=style))

    dist_utils.on_main_then_wait(make)


class Chart2CodeTask:
    def __init__(self, cfg: Config) -> None:
        from renderers import RenderPool
        from rewards import CompositeReward, load_plugins
        from vlrl.datasets.charts import load_chart_examples
        from vlrl.tasks.chart_scorer import ChartScorer

        self.cfg = cfg
        ensure_default_corpus(cfg)
        report = load_chart_examples(cfg.data.train)
        for problem in report.skipped[:5]:
            print(f"skipped {problem}", file=sys.stderr)
        self.pool = RenderPool(timeout=cfg.render.timeout, compat=cfg.render.compat)
        try:
            load_plugins(cfg.reward.plugins)
            reward = CompositeReward(cfg.reward.weights, cfg.reward.options)
        except (KeyError, FileNotFoundError) as exc:
            self.pool.close()
            raise UserError(str(exc).strip("'\"")) from None
        self.scorer = ChartScorer(self.pool, reward)
        # one thread: chunks are scored in order, and the task's reference cache sees one writer
        self.scoring_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self.examples, bad = self.scorer.usable(report.examples)
        if bad:
            print(
                f"skipped {len(bad)} unusable examples (image unreadable or reference code fails), e.g. {bad[0]}",
                file=sys.stderr,
            )
        if not self.examples:
            self.pool.close()
            raise UserError(f"{cfg.data.train}: no usable training charts")
        self.sampler = PromptSampler(len(self.examples), cfg.seed, cfg.data.shuffle)
        self.world, self.rank = dist_utils.world_size(), dist_utils.rank()
        if cfg.data.prompts_per_step % self.world:
            self.pool.close()
            raise UserError(
                f"data.prompts_per_step={cfg.data.prompts_per_step} is not a multiple of the "
                f"{self.world} ranks: every rank samples the same number of prompts"
            )
        self.per_rank = cfg.data.prompts_per_step // self.world
        self.eval_examples = self._load_eval() if cfg.trainer.eval_every else []

    # ------------------------------------------------------------------ one rollout round

    def _round(self, step: int, round_index: int, rollout: RolloutEngine, timer: PhaseTimer):
        """Prompts -> n completions each -> scores, for this rank's share of the batch."""
        from vlrl.algo import soft_overlong_penalty
        from vlrl.rollout.base import SamplingParams
        from vlrl.tasks.chart_scorer import ScoredBatch

        cfg, n, per_rank = self.cfg, self.cfg.rollout.n, self.per_rank
        order = (
            self.sampler
            if round_index == 0
            else PromptSampler(len(self.examples), cfg.seed + 7919 * round_index, cfg.data.shuffle)
        )
        ids = order.batch(step, per_rank * self.world)[self.rank * per_rank : (self.rank + 1) * per_rank]
        batch_examples = [self.examples[i] for i in ids]
        messages = self.scorer.prompt_messages(batch_examples)
        params = SamplingParams(
            n=n, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, max_new_tokens=cfg.rollout.max_new_tokens
        )
        per_sample = [ex for ex in batch_examples for _ in range(n)]
        completions, pending = [], []
        for c0 in range(0, len(messages), cfg.rollout.chunk_prompts):
            chunk = messages[c0 : c0 + cfg.rollout.chunk_prompts]
            # Seeded by the chunk's position in the global batch, not by rank: the same global
            # batch samples the same completions whatever the number of ranks.
            params.seed = ((cfg.seed * 100_003 + step) * 101 + round_index) * 1_000_003 + self.rank * per_rank + c0
            with timer.phase("generate"):
                chunk_completions = [c for g in rollout.generate(chunk, params) for c in g]
            if cfg.rollout.overlap_scoring:
                # the pool renders the chunk and a scoring thread turns its renders into
                # rewards, both while the engine generates the next chunk
                texts = [c.text for c in chunk_completions]
                renders = self.scorer.start_renders(texts)
                lo = len(completions)
                pending.append(
                    self.scoring_thread.submit(self.scorer.score, per_sample[lo : lo + len(texts)], texts, renders)
                )
            completions += chunk_completions
        rollout.sleep()  # vLLM frees the GPU for the training step
        with timer.phase("score"):
            if cfg.rollout.overlap_scoring:
                parts = [p.result() for p in pending]
                scored = ScoredBatch([o for b in parts for o in b.outputs], [r for b in parts for r in b.renders])
            else:  # the sequential path, for comparison
                texts = [c.text for c in completions]
                scored = self.scorer.score(per_sample, texts, self.scorer.start_renders(texts))
        rewards = torch.tensor([o.score for o in scored.outputs], dtype=torch.float32)
        unscorable = getattr(self.scorer.reward, "unscorable", None)
        if unscorable is not None:  # NaN: out of the group baseline, advantage 0 (vlrl.algo.group_advantages)
            rewards[[i for i, o in enumerate(scored.outputs) if unscorable(o)]] = float("nan")
        if cfg.algo.overlong == "soft":
            lengths = torch.tensor([len(c.token_ids) for c in completions])
            rewards = rewards + soft_overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.algo.overlong_cache)
        return messages, completions, scored, rewards, per_sample

    # ------------------------------------------------------------------ one step

    def collect(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> StepSamples:
        from vlrl.algo import advantage_stats, group_advantages, overlong_mask, zero_variance_groups

        cfg, n, per_rank = self.cfg, self.cfg.rollout.n, self.per_rank
        # Rounds of rollouts until enough informative groups (dynamic sampling refills the
        # groups it drops; without it one round is taken as it comes).
        requests, completions, outputs, renders, reward_parts, group_keep, examples = [], [], [], [], [], [], []
        rounds = 0
        max_rounds = cfg.algo.max_refill_rounds if cfg.algo.dynamic_sampling else 1
        while rounds < max_rounds and self._any_rank_short(sum(group_keep) < per_rank):
            messages, flat, scored, r, per_sample = self._round(step, rounds, rollout, timer)
            rounds += 1
            keep_groups = torch.ones(len(flat) // n, dtype=torch.bool)
            if cfg.algo.dynamic_sampling:
                keep_groups &= ~zero_variance_groups(r, n)
            means = torch.nanmean(r.view(-1, n), dim=1)  # an all-unscorable group: NaN, dropped below
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
        # "batch" scaling divides by the std of every reward of the global batch, as TRL does
        # after gathering them: the same advantages whatever the number of ranks
        batch_std = self._global_std(rewards)
        advantages = group_advantages(rewards, n, cfg.algo.advantage, batch_std=batch_std)
        keep = torch.tensor(group_keep, dtype=torch.bool).repeat_interleave(n)
        if cfg.algo.overlong == "filter":
            lengths = torch.tensor([len(c.token_ids) for c in completions])
            eos_found = torch.tensor([c.finish_reason == "stop" for c in completions])
            keep &= overlong_mask(lengths, cfg.rollout.max_new_tokens, eos_found)

        metrics: dict[str, Any] = dict(advantage_stats(advantages, rewards, n))
        if batch_std is not None:
            metrics["reward/std"] = batch_std
        components: dict[str, list[float]] = {}
        for o in outputs:
            for k, v in o.components.items():
                components.setdefault(k, []).append(float(v))
        metrics.update({f"reward/{k}": sum(v) / len(v) for k, v in components.items()})
        metrics.update(reward_error_metrics(outputs))
        metrics["exec_rate"] = sum(r.ok for r in renders) / max(1, len(renders))
        metrics["rollout_rounds"] = rounds

        def report(directory: Path, report_step: int) -> Path:
            return report_samples(directory, report_step, self.scorer, examples, completions, outputs, renders, n)

        return StepSamples(
            completions=completions,
            requests=requests,
            request_of=[i // n for i in range(len(completions))],
            advantages=advantages,
            keep=keep,
            metrics=metrics,
            report=report,
        )

    # ------------------------------------------------------------------ held-out evaluation

    def _load_eval(self) -> list:
        """The first data.eval_size usable held-out charts, cut to a multiple of the ranks
        (every rank then runs the same generate calls, which ZeRO-3 needs)."""
        from vlrl.tasks.chart_benchmark_eval import benchmark_kind, load_eval_examples

        cfg = self.cfg
        if not cfg.data.eval:
            self.pool.close()
            raise UserError(f"trainer.eval_every={cfg.trainer.eval_every} needs held-out charts: set data.eval=PATH")
        self.eval_kind = benchmark_kind(cfg.data.eval)
        report = load_eval_examples(cfg.data.eval)
        usable, bad = self.scorer.usable(report.examples[: cfg.data.eval_size + 64])
        usable = usable[: cfg.data.eval_size]
        usable = usable[: len(usable) - len(usable) % self.world]
        if not usable:
            self.pool.close()
            raise UserError(
                f"data.eval={cfg.data.eval}: no usable held-out charts for {self.world} rank(s)"
                + (f" ({len(bad)} whose reference code fails)" if bad else "")
            )
        return usable

    def evaluate(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> dict[str, float]:
        """One answer per held-out chart at rollout.eval_temperature, asked with the
        benchmark's prompt and rendered under its rules (vlrl.tasks.chart_benchmark_eval),
        over all ranks: the training reward (eval/reward, each eval/<component>,
        eval/exec_rate, eval/n) and the benchmark's own numbers (eval/<benchmark>/low_level ...)."""
        from vlrl.rollout.base import SamplingParams
        from vlrl.tasks.chart_benchmark_eval import benchmark_metrics, benchmark_rows, eval_messages

        cfg = self.cfg
        mine = self.eval_examples[self.rank :: self.world]
        params = SamplingParams(
            n=1,
            temperature=cfg.rollout.eval_temperature,
            top_p=cfg.rollout.top_p,
            max_new_tokens=cfg.rollout.max_new_tokens,
            seed=cfg.seed * 7_919 + self.rank,
        )
        messages = eval_messages(self.eval_kind, self.scorer, mine)
        texts: list[str] = []
        for c0 in range(0, len(messages), cfg.rollout.chunk_prompts):
            texts += [g[0].text for g in rollout.generate(messages[c0 : c0 + cfg.rollout.chunk_prompts], params)]
        rollout.sleep()
        renders = [self.pool.submit_response(t, strict=True) for t in texts]  # ChartMimic's code rules
        scored = self.scorer.score(mine, texts, renders)
        rows = benchmark_rows(mine, texts, scored.renders, self.scorer.references(mine))
        sums: dict[str, float] = {
            "n": len(mine),
            "reward": sum(o.score for o in scored.outputs),
            "exec_rate": sum(r.ok for r in scored.renders),
        }
        for o in scored.outputs:
            for k, v in o.components.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        # divided by n below, like every other key: the share of answers a reward failed on
        sums["reward_error_rate"] = sum(bool(getattr(o, "errors", None)) for o in scored.outputs)
        totals: dict[str, float] = {}
        for part in dist_utils.all_gather_objects(sums):  # merged by name: a plugin's keys may vary
            for k, v in part.items():
                totals[k] = totals.get(k, 0.0) + v
        n = totals.pop("n")
        every_row = [r for part in dist_utils.all_gather_objects(rows) for r in part]
        return {
            "eval/n": int(n),
            **{f"eval/{k}": v / n for k, v in sorted(totals.items())},
            **benchmark_metrics(self.eval_kind, every_row),
        }

    def _any_rank_short(self, short: bool) -> bool:
        """Whether any rank still lacks informative groups. Every rank runs as many rollout
        rounds as the neediest one: under ZeRO-3 each generate call gathers the weights, a
        collective every rank must join (a rank with enough groups keeps its first ones)."""
        if self.world <= 1 or not self.cfg.algo.dynamic_sampling:
            return short
        return bool(dist_utils.all_reduce(torch.tensor([int(short)]), op="max"))

    def _global_std(self, rewards: torch.Tensor) -> float | None:
        """Bessel-corrected std of the rewards of every rank (None in one process: the local
        batch is the global one)."""
        if self.world <= 1:
            return None
        r = rewards.double()
        r = r[~torch.isnan(r)]  # unscorable completions are no part of the batch std
        count, total, squares = dist_utils.all_reduce(
            torch.stack([torch.tensor(float(r.numel()), dtype=torch.float64), r.sum(), (r * r).sum()])
        ).tolist()
        if count < 2:
            return 0.0
        return max(0.0, (squares - total * total / count) / (count - 1)) ** 0.5

    def state_dict(self) -> dict[str, Any]:
        return {}  # the prompt order is a function of (seed, step)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        self.scoring_thread.shutdown(wait=True)
        self.pool.close()


def reward_error_metrics(outputs) -> dict[str, float]:
    """reward/errors: how many (sample, reward) pairs failed and scored 0 this step (always
    logged, so a run that never fails shows 0); reward/error_rate: the share of samples with
    any failure; reward_error/<reward>/<ExceptionType>: the count of each kind."""
    counts: dict[str, int] = {}
    for o in outputs:
        for name in getattr(o, "errors", None) or ():
            counts[name] = counts.get(name, 0) + 1
    failed = sum(bool(getattr(o, "errors", None)) for o in outputs)
    return {
        "reward/errors": sum(counts.values()),
        "reward/error_rate": failed / max(1, len(outputs)),
        **dict(sorted(counts.items())),
    }


def report_samples(
    directory: Path, step: int, task, examples, completions, outputs, renders, n: int, prompts: int = 3
) -> Path:
    """The first few prompts of the step, each with all n samples, their renderings and scores."""
    from vlrl.reports import PromptView, SampleView, write_sample_report

    views = []
    for g in range(min(prompts, len(completions) // n)):
        samples = [
            SampleView(
                text=completions[i].text,
                png=renders[i].png if renders[i].ok else None,
                error=None if renders[i].ok else f"{renders[i].error_kind}: {renders[i].error}",
                score=float(outputs[i].score),
                components=dict(outputs[i].components),
                critique=outputs[i].critique,
            )
            for i in range(g * n, (g + 1) * n)
        ]
        views.append(PromptView(examples[g * n].id, task.image(examples[g * n]), samples))
    return write_sample_report(directory, step, views)
