"""Charts per second: subprocess-per-chart vs the sandboxed pool vs in-process (no isolation).

    python benchmarks/render_bench.py [--workers 2] [--synthetic 200]

(a) one fresh `python script.py` per chart, saving a PNG, `workers` at a time;
(b) RenderPool(workers) rendering the same scripts, with the full trace recorded;
(c) the same render + trace in this process, one chart after another, no isolation:
    the physical floor of the work itself.
(a) and (b) run at the same parallelism; (b) is compared with (c) per core. Measured
separately on the shared ChartMimic samples and on synthetic charts. The last line is
machine-readable (ratios of throughput on the ChartMimic samples):
    pool_vs_subprocess=<ratio> pool_vs_inprocess=<ratio> charts=<n>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from renderers import RenderPool, strip_output_calls  # noqa: E402
from renderers.execute import render_in_process  # noqa: E402


class PeakRSS:
    """Samples the summed RSS of a process tree every 20 ms."""

    def __init__(self, root_pid: int, include_root: bool = True) -> None:
        self.root_pid, self.include_root = root_pid, include_root
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        root = psutil.Process(self.root_pid)
        while not self._stop.is_set():
            try:
                procs = root.children(recursive=True) + ([root] if self.include_root else [])
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def chartmimic_codes() -> list[str]:
    return [strip_output_calls(p.read_text()) for p in sorted((ROOT / "data" / "chartmimic_samples").glob("*.py"))]


def synthetic_codes(n: int) -> list[str]:
    from vlrl.datasets.synth import generate_specs

    return [strip_output_calls(s.to_code()) for s in generate_specs(n, seed=0)]


def run_subprocesses(codes: list[str], workers: int) -> tuple[float, int, int]:
    tmp = Path(tempfile.mkdtemp(prefix="render-bench-"))
    scripts = []
    for i, code in enumerate(codes):
        path = tmp / f"chart_{i}.py"
        path.write_text(
            "import matplotlib\nmatplotlib.use('Agg')\n"
            + code
            + f"\nimport matplotlib.pyplot as plt\nplt.savefig({str(tmp / f'chart_{i}.png')!r})\n"
        )
        scripts.append(path)
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

    def one(path: Path) -> bool:
        return subprocess.run([sys.executable, str(path)], env=env, capture_output=True).returncode == 0

    with PeakRSS(os.getpid(), include_root=False) as mem:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            ok = sum(ex.map(one, scripts))
        seconds = time.perf_counter() - t0
    return seconds, ok, mem.peak


def run_pool(pool: RenderPool, codes: list[str]) -> tuple[float, int, int]:
    pool.render_many(codes[:2])  # the pool is warm by design; this only touches it once
    with PeakRSS(pool._proc.pid) as mem:
        t0 = time.perf_counter()
        results = pool.render_many(codes)
        seconds = time.perf_counter() - t0
    return seconds, sum(r.ok for r in results), mem.peak


def run_in_process(codes: list[str]) -> tuple[float, int, int]:
    render_in_process(codes[0])  # import and warm up outside the timing, like the pool's server
    t0 = time.perf_counter()
    ok = sum(bool(render_in_process(c)["ok"]) for c in codes)
    seconds = time.perf_counter() - t0
    return seconds, ok, psutil.Process().memory_info().rss


def bench(name: str, codes: list[str], pool: RenderPool, workers: int) -> dict[str, float]:
    n = len(codes)
    a_s, a_ok, a_mem = run_subprocesses(codes, workers)
    b_s, b_ok, b_mem = run_pool(pool, codes)
    c_s, c_ok, c_mem = run_in_process(codes)
    a, b, c = n / a_s, n / b_s, n / c_s
    print(f"\n{name}: {n} charts, parallelism {workers}")
    print(f"  {'mode':<38} {'charts/s':>9} {'ms/chart':>9} {'ok':>5} {'peak MiB':>9}")
    print(
        f"  {'(a) subprocess per chart, x' + str(workers):<38} {a:9.2f} {1000 / a:9.1f} {a_ok:5d} {a_mem / 2**20:9.0f}"
    )
    print(
        f"  {'(b) RenderPool, x' + str(workers) + ' (sandbox + trace)':<38} {b:9.2f} {1000 / b:9.1f} {b_ok:5d} {b_mem / 2**20:9.0f}"
    )
    print(f"  {'(c) in-process, 1 core (no isolation)':<38} {c:9.2f} {1000 / c:9.1f} {c_ok:5d} {c_mem / 2**20:9.0f}")
    per_core = (b / workers) / c
    print(
        f"  pool / subprocess = {b / a:.2f}x    pool per core / in-process = {per_core:.2f} "
        f"(sandbox overhead {1 / per_core:.2f}x)"
    )
    return {"pool_vs_subprocess": b / a, "pool_vs_inprocess": per_core, "charts": n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synthetic", type=int, default=200, help="number of synthetic charts")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pool = RenderPool(workers=args.workers, timeout=60)
    print(f"pool start-up: {time.perf_counter() - t0:.1f} s (seccomp {'on' if pool.seccomp else 'off'})")
    try:
        synth = bench("synthetic corpus", synthetic_codes(args.synthetic), pool, args.workers)
        cm = bench("ChartMimic samples", chartmimic_codes(), pool, args.workers)
    finally:
        pool.close()
    print(f"\nsynthetic: pool_vs_subprocess={synth['pool_vs_subprocess']:.2f}")
    print(
        f"pool_vs_subprocess={cm['pool_vs_subprocess']:.2f} pool_vs_inprocess={cm['pool_vs_inprocess']:.2f} "
        f"charts={cm['charts']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
