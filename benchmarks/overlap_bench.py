"""Rollout time per step with rendering overlapped on generation vs one after the other.

    python benchmarks/overlap_bench.py [--steps 4] [--prompts 8] [--chunk 2] [--tokens 96]

Both paths run the real chart-to-code rollout (`Chart2CodeTask.collect`): the tiny model
generates `--tokens` tokens per sample with the HF engine, and the completions are rendered
in the sandboxed pool and scored with the stage-1 rewards. A random tiny model writes no
runnable code, which would make rendering free; so the engine's text is swapped for the
chart's reference script after each real generate call. Generation costs what it costs, and
rendering and scoring cost what real answers cost.

(a) overlapped: each chunk's completions go to the render pool as soon as they exist, and a
    scoring thread scores them, while the next chunk generates (the default,
    rollout.overlap_scoring=true);
(b) sequential: every chunk generates first, then everything renders and scores.
Steps alternate between (a) and (b) so load changes hit both alike. The rewards of both
paths must be identical. The last line is machine-readable:
    overlap_speedup=<(b)/(a) median step time> identical_rewards=<True|False>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class ReferenceAnswers:
    """A RolloutEngine that really generates, then answers with the chart's own script."""

    def __init__(self, engine, code_by_image: dict[int, str]) -> None:
        self.engine, self.code_by_image = engine, code_by_image

    def generate(self, requests, params):
        from vlrl.rollout.base import request_images

        groups = self.engine.generate(requests, params)
        for request, group in zip(requests, groups):
            code = self.code_by_image[id(request_images(request)[0])]
            for c in group:
                c.text = f"```python\n{code}\n```"
        return groups

    def sync_weights(self, model) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per path")
    parser.add_argument("--prompts", type=int, default=8, help="charts per step")
    parser.add_argument("--n", type=int, default=4, help="samples per chart")
    parser.add_argument("--chunk", type=int, default=2, help="charts per generate call")
    parser.add_argument("--tokens", type=int, default=96, help="generated tokens per sample")
    args = parser.parse_args()

    from vlrl.cli import main as cli
    from vlrl.config import load_config
    from vlrl.models.tiny import build_tiny_model
    from vlrl.profiling import PhaseTimer
    from vlrl.rollout.hf_engine import HFEngine
    from vlrl.tasks.chart2code import Chart2CodeTask

    work = Path(tempfile.mkdtemp(prefix="overlap-bench-"))
    corpus = work / "corpus"
    cli(["data", "synth", f"n={args.prompts * 2}", f"out={corpus}", "seed=3", "workers=2"])
    model, processor = build_tiny_model("qwen2_vl", seed=0)
    engine = HFEngine(model, processor)

    def config(overlap: bool):
        return load_config(
            [
                "model=tiny",
                f"data.train={corpus}",
                f"out={work / 'run'}",
                f"rollout.n={args.n}",
                f"data.prompts_per_step={args.prompts}",
                f"rollout.chunk_prompts={args.chunk}",
                f"rollout.max_new_tokens={args.tokens}",
                f"rollout.overlap_scoring={str(overlap).lower()}",
            ]
        )

    tasks = {True: Chart2CodeTask(config(True)), False: Chart2CodeTask(config(False))}
    times: dict[bool, list[float]] = {True: [], False: []}
    splits: dict[bool, PhaseTimer] = {True: PhaseTimer(), False: PhaseTimer()}
    identical = True
    try:
        for task in tasks.values():
            code = {id(task.scorer.image(ex)): ex.code for ex in task.examples}
            task.bench_engine = ReferenceAnswers(engine, code)
            task.collect(0, task.bench_engine, PhaseTimer())  # warm: reference renders, pool, caches
        for step in range(1, args.steps + 1):
            rewards = {}
            for overlap in (True, False) if step % 2 else (False, True):
                task = tasks[overlap]
                start = time.perf_counter()
                samples = task.collect(step, task.bench_engine, splits[overlap])
                times[overlap].append(time.perf_counter() - start)
                splits[overlap].end_step()
                rewards[overlap] = [round(float(a), 9) for a in samples.advantages] + [
                    samples.metrics.get("reward/mean")
                ]
            identical &= rewards[True] == rewards[False]
    finally:
        for task in tasks.values():
            task.close()

    overlapped, sequential = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{args.prompts} charts x {args.n} samples per step, {args.chunk} charts per generate call, "
        f"{args.tokens} tokens per sample, {os.cpu_count()} cores"
    )
    print(f"{'path':<12} {'median s/step':>14} {'generate s':>11} {'score wait s':>13}")
    for name, key in (("overlapped", True), ("sequential", False)):
        t = splits[key].totals
        print(
            f"{name:<12} {statistics.median(times[key]):14.2f} {t['generate'] / args.steps:11.2f} "
            f"{t['score'] / args.steps:13.2f}"
        )
    print(f"overlap_speedup={sequential / overlapped:.2f} identical_rewards={identical}")


if __name__ == "__main__":
    main()
