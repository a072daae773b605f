"""ChartMimic's four low-level metrics per (generated, reference) pair: ours vs the original's architecture.

    python benchmarks/eval_bench.py [--workers 2] [--pairs 30]

Baseline: ChartMimic runs every metric as its own Python process per script, i.e. 8 fresh
processes per pair (text, layout, type, colour x generated, reference), each importing
matplotlib and the chart libraries, executing the script with that metric's hooks and
saving the figure as PDF. We reproduce that cost faithfully: each baseline process runs
benchmarks/_one_metric_process.py (the same hooks as ours, installed per process).

Ours: one sandboxed execution per generated script in the warm RenderPool; reference
traces come from the cache (`vlrl eval` keeps them across runs), so they are computed
once, outside the timing, as in any repeated evaluation.

Both sides run `workers` at a time on the parity predictions (data/chartmimic_parity). The
last line is machine-readable: `speedup=<ratio> pairs=<n>`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from renderers import RenderPool, prepare_code, strip_output_calls  # noqa: E402
from rewards.chartmimic import low_level_metrics  # noqa: E402

METRICS = ("text", "layout", "type", "color")


def load_pairs(n: int) -> list[tuple[str, str, str]]:
    """(name, generated code, reference code) for the first n parity predictions."""
    pairs = []
    for seed in (0, 1, 2):
        for line in (ROOT / "data" / "chartmimic_parity" / f"predictions_seed{seed}.jsonl").read_text().splitlines():
            row = json.loads(line)
            name = row["file"][:-3]
            ref = strip_output_calls((ROOT / "data" / "chartmimic_samples" / f"{name}.py").read_text())
            pairs.append((name, prepare_code(row["response"], strict=True) or "", ref))
    return pairs[:n]


def baseline(pairs, workers: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    jobs = []
    for i, (name, gen, ref) in enumerate(pairs):
        for side, code in (("gen", gen), ("ref", ref)):
            script = tmp / f"{i}_{side}.py"
            script.write_text(code)
            for metric in METRICS:
                jobs.append((metric, script, tmp / f"{i}_{side}_{metric}.json"))

    def one(job) -> None:
        metric, script, out = job
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "_one_metric_process.py"), metric, str(script), str(out)],
            capture_output=True,
            cwd=tmp,
        )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, jobs))
    for i, _ in enumerate(pairs):  # combine the per-metric outputs into scores, as the original does
        traces = {}
        for side in ("gen", "ref"):
            trace = {}
            for metric in METRICS:
                path = tmp / f"{i}_{side}_{metric}.json"
                if path.exists():
                    trace.update(json.loads(path.read_text()))
            traces[side] = trace
        low_level_metrics(traces["gen"], traces["ref"])
    return time.perf_counter() - t0


def ours(pairs, workers: int) -> float:
    with RenderPool(workers=workers) as pool:
        refs = pool.render_many([ref for _, _, ref in pairs])  # the reference cache, filled beforehand
        pool.render_many([pairs[0][1]])
        t0 = time.perf_counter()
        gens = pool.render_many([gen for _, gen, _ in pairs])
        for g, r in zip(gens, refs):
            low_level_metrics(g.trace if g.ok else None, r.trace, gen_ok=g.ok)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=30)
    args = ap.parse_args()
    pairs = load_pairs(args.pairs)
    t_ours = ours(pairs, args.workers)
    t_base = baseline(pairs, args.workers)
    n = len(pairs)
    print(f"{n} pairs, parallelism {args.workers}")
    print(f"  original architecture (8 processes per pair): {t_base:7.1f} s  {1000 * t_base / n:7.0f} ms/pair")
    print(f"  vlrl (1 sandboxed run per pair, cached refs): {t_ours:7.1f} s  {1000 * t_ours / n:7.0f} ms/pair")
    print(f"speedup={t_base / t_ours:.1f} pairs={n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
