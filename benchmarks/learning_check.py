"""Learning check: stage-1 RL raises the SFT'd tiny model's reward on held-out charts.

    python benchmarks/learning_check.py [--out runs/learning_check] [--threads 1] [--rl KEY=VALUE ...]

The recipe, each step the `vlrl` command a user would type (README, "Learning check"):

    vlrl data synth n=600 out=OUT/train seed=1 families=bar,pie
    vlrl data synth n=64 out=OUT/held_out seed=2 families=bar,pie
    vlrl sft model=tiny-learn data.train=OUT/train out=OUT
    vlrl train stage=1 model=tiny-learn data.train=OUT/train out=OUT

`model=tiny-learn` is a wider tiny Qwen2-VL with its preset (vlrl/configs/tiny-learn.yaml:
SFT and RL settings sized for 2 CPU cores). Bar and pie charts are the two synthetic
families whose scripts fit in ~220 tokens of the tiny tokenizer, so a few minutes of SFT
teach the template and some completions execute: RL has signal from the first step.

Then the SFT weights (before) and the RL weights (after) each write code for the held-out
charts (another seed, never trained on) with greedy decoding, scored by the stage-1 reward.
The table gives every reward component and the exec rate before and after, and the per-chart
paired difference with its standard error and a bootstrap 95% interval: the margin is
"clear" when that interval excludes zero. Wall and CPU time (this process and all its
children) are reported per phase, since on a shared machine wall time overstates the cost.
The last line is machine-readable: `reward_gain=... ci_low=... total_cpu_s=... total_wall_s=...`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The stage-1 reward's parts as the composite names them, in table order.
COMPONENTS = (
    "reward",
    "format",
    "exec",
    "msrl_text",
    "msrl_text/data",
    "msrl_text/type",
    "msrl_text/layout",
    "msrl_text/title",
    "msrl_text/labels",
)


@dataclass
class Recipe:
    families: str = "bar,pie"
    train_charts: int = 600
    train_seed: int = 1
    held_out_charts: int = 64
    held_out_seed: int = 2
    model: str = "tiny-learn"
    sft_overrides: list[str] = field(default_factory=list)
    rl_overrides: list[str] = field(default_factory=list)
    max_new_tokens: int = 320  # the eval's completion limit; the preset's rollout limit is the same

    def commands(self, out: Path) -> list[tuple[str, list[str]]]:
        """(phase, argv after `vlrl`) in order: the recipe as a user would type it."""
        return [
            (
                "corpus",
                [
                    "data",
                    "synth",
                    f"n={self.train_charts}",
                    f"out={out / 'train'}",
                    f"seed={self.train_seed}",
                    f"families={self.families}",
                ],
            ),
            (
                "corpus",
                [
                    "data",
                    "synth",
                    f"n={self.held_out_charts}",
                    f"out={out / 'held_out'}",
                    f"seed={self.held_out_seed}",
                    f"families={self.families}",
                ],
            ),
            ("sft", ["sft", f"model={self.model}", f"data.train={out / 'train'}", f"out={out}", *self.sft_overrides]),
            (
                "rl",
                [
                    "train",
                    "stage=1",
                    f"model={self.model}",
                    f"data.train={out / 'train'}",
                    f"out={out}",
                    *self.rl_overrides,
                ],
            ),
        ]


# --------------------------------------------------------------------------- timing


@dataclass
class Clock:
    """Wall and CPU seconds (user + system, this process and every child it has reaped)."""

    wall: float = 0.0
    cpu: float = 0.0

    @staticmethod
    def cpu_now() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def measure(self, fn, *args, **kwargs):
        w0, c0 = time.perf_counter(), self.cpu_now()
        try:
            return fn(*args, **kwargs)
        finally:
            self.wall += time.perf_counter() - w0
            self.cpu += self.cpu_now() - c0


def run_vlrl(argv: list[str], log: Path, env: dict[str, str]) -> None:
    """One `vlrl` command in a child process, its output appended to `log`."""
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ vlrl {' '.join(argv)}\n")
        fh.flush()
        done = subprocess.run(
            [sys.executable, "-m", "vlrl.cli", *argv],
            check=False,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    if done.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"`vlrl {' '.join(argv)}` failed with exit status {done.returncode}; "
            f"last lines of {log}:\n" + "\n".join(tail)
        )


# --------------------------------------------------------------------------- evaluation


def evaluate(model_dir: Path, held_out: Path, max_new_tokens: int, *, batch: int = 16) -> list[dict[str, float]]:
    """Per held-out chart: every stage-1 reward component of the model's greedy answer."""
    import yaml

    from renderers import RenderPool
    from rewards import CompositeReward
    from vlrl.datasets.charts import load_chart_examples
    from vlrl.models.loading import load_model_and_processor
    from vlrl.rollout.base import SamplingParams
    from vlrl.rollout.hf_engine import HFEngine
    from vlrl.tasks.chart_scorer import ChartScorer

    weights = yaml.safe_load((ROOT / "vlrl" / "configs" / "stage1.yaml").read_text())["reward"]["weights"]
    model, processor = load_model_and_processor(str(model_dir))  # pixel bounds come saved with the processor
    examples = load_chart_examples(held_out).examples
    with RenderPool(timeout=20) as pool:
        task = ChartScorer(pool, CompositeReward(weights))
        engine = HFEngine(model, processor)
        greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
        texts, renders = [], []
        for start in range(0, len(examples), batch):
            chunk = task.prompt_messages(examples[start : start + batch])
            answers = [group[0].text for group in engine.generate(chunk, greedy)]
            renders += task.start_renders(answers)  # rendered while the next chunk decodes
            texts += answers
        scored = task.score(examples, texts, renders)
    rows = []
    for ex, text, out, render in zip(examples, texts, scored.outputs, scored.renders):
        row = {
            "id": ex.id,
            "family": ex.meta.get("family", ""),
            "reward": float(out.score),
            "exec_rate": float(render.ok),
        }
        row.update({k: float(out.components.get(k, 0.0)) for k in COMPONENTS[1:]})
        row["answer"] = text
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- statistics


def paired_stats(before: list[float], after: list[float], *, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Means, the mean per-chart difference, its standard error and a bootstrap 95% interval."""
    import numpy as np

    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.size < 2:
        raise ValueError(f"paired statistics need two equal lists of >= 2 values, got {b.size} and {a.size}")
    diff = a - b
    stderr = float(diff.std(ddof=1) / np.sqrt(diff.size))
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "before": float(b.mean()),
        "after": float(a.mean()),
        "diff": float(diff.mean()),
        "stderr": stderr,
        "ci_low": float(low),
        "ci_high": float(high),
    }


def compare(before: list[dict[str, float]], after: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Row name -> paired statistics, charts matched by id."""
    by_id = {r["id"]: r for r in after}
    missing = [r["id"] for r in before if r["id"] not in by_id]
    if missing:
        raise ValueError(f"charts scored before but not after: {missing[:5]}")
    pairs = [(r, by_id[r["id"]]) for r in before]
    return {
        key: paired_stats([b[key] for b, _ in pairs], [a[key] for _, a in pairs]) for key in (*COMPONENTS, "exec_rate")
    }


def table(stats: dict[str, dict[str, float]], n: int) -> str:
    lines = [
        f"| held-out charts: {n} | before (SFT) | after (SFT + RL) | paired diff | std err | 95% CI |",
        "|---|---|---|---|---|---|",
    ]
    for key, s in stats.items():
        lines.append(
            f"| {key} | {s['before']:.3f} | {s['after']:.3f} | {s['diff']:+.3f} | {s['stderr']:.3f} "
            f"| [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}] |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the check


def run_check(out: Path, recipe: Recipe | None = None, *, threads: int | None = None, echo=print) -> dict[str, Any]:
    """The whole recipe in `out`; returns (and writes to out/learning_check.json) the results."""
    recipe = recipe or Recipe()
    out = Path(out).resolve()  # the commands run from the repository root
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    clocks: dict[str, Clock] = {}
    for phase, argv in recipe.commands(out):
        echo(f"[{phase}] vlrl {' '.join(argv)}")
        clocks.setdefault(phase, Clock()).measure(run_vlrl, argv, log, env)
    if threads:
        import torch

        torch.set_num_threads(threads)
    rows = {}
    for name, weights in (("before", out / "sft" / "final"), ("after", out / "stage1" / "final")):
        echo(f"[eval] {name}: greedy answers of {weights} on {out / 'held_out'}")
        rows[name] = clocks.setdefault("eval", Clock()).measure(
            evaluate, weights, out / "held_out", recipe.max_new_tokens
        )
    stats = compare(rows["before"], rows["after"])
    timing = {phase: {"wall_s": round(c.wall, 1), "cpu_s": round(c.cpu, 1)} for phase, c in clocks.items()}
    timing["total"] = {
        "wall_s": round(sum(c.wall for c in clocks.values()), 1),
        "cpu_s": round(sum(c.cpu for c in clocks.values()), 1),
    }
    result = {
        "recipe": asdict(recipe),
        "stats": stats,
        "timing": timing,
        "per_chart": rows,
        "commands": ["vlrl " + " ".join(argv) for _, argv in recipe.commands(out)],
    }
    (out / "learning_check.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def drawn_kind(answer: str) -> str:
    """What an answer draws: the first bar or pie call in its code (collapse shows up here)."""
    calls = {kind: answer.find(f"{kind}(") for kind in ("pie", "barh", "bar")}
    found = sorted((pos, kind) for kind, pos in calls.items() if pos >= 0)
    return found[0][1] if found else "other"


def family_table(per_chart: dict[str, list[dict[str, Any]]]) -> str:
    """Per chart family: mean reward before and after, and what the answers draw."""
    after = {r["id"]: r for r in per_chart["after"]}
    families = sorted({r["family"] for r in per_chart["before"]})
    lines = [
        "| family | charts | reward before | reward after | answers drawn before | answers drawn after |",
        "|---|---|---|---|---|---|",
    ]
    for family in families:
        rows = [(b, after[b["id"]]) for b in per_chart["before"] if b["family"] == family]

        def drawn(side: int) -> str:
            counts: dict[str, int] = {}
            for pair in rows:
                kind = drawn_kind(pair[side]["answer"])
                counts[kind] = counts.get(kind, 0) + 1
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

        mean = [sum(pair[side]["reward"] for pair in rows) / len(rows) for side in (0, 1)]
        lines.append(f"| {family} | {len(rows)} | {mean[0]:.3f} | {mean[1]:.3f} | {drawn(0)} | {drawn(1)} |")
    return "\n".join(lines)


def timing_table(timing: dict[str, dict[str, float]]) -> str:
    lines = ["| phase | wall (s) | CPU (s) |", "|---|---|---|"]
    lines += [f"| {phase} | {t['wall_s']:.0f} | {t['cpu_s']:.0f} |" for phase, t in timing.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/learning_check", help="working directory (rebuilt from scratch)")
    # One torch thread by default: the figures are then reproducible bit for bit (thread
    # count changes float summation order), and the render pool has the second core.
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (0: torch's default)")
    parser.add_argument(
        "--rl",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra `vlrl train` option for the RL phase, e.g. --rl algo.beta=0.04 (repeatable)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        # a stale check would be resumed, not re-measured; but only a folder this script made
        # is removed, never whatever --out happens to name
        if not ((out / "commands.log").exists() or (out / "learning_check.json").exists()):
            raise SystemExit(
                f"--out {out} is not empty and holds no earlier learning check "
                f"(commands.log): give an empty or new folder"
            )
        import shutil

        shutil.rmtree(out)
    result = run_check(out, Recipe(rl_overrides=args.rl), threads=args.threads or None)
    n = len(result["per_chart"]["before"])
    print(table(result["stats"], n))
    print()
    print(family_table(result["per_chart"]))
    print()
    print(timing_table(result["timing"]))
    s = result["stats"]["reward"]
    print(
        f"reward_gain={s['diff']:.4f} ci_low={s['ci_low']:.4f} total_cpu_s={result['timing']['total']['cpu_s']} "
        f"total_wall_s={result['timing']['total']['wall_s']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
