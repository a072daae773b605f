"""What one reward call costs on a normal trace and on worst cases a policy can produce.

Every case is a hand-built trace of the shape renderers/instrument.collect_trace gives,
no rendering involved, sized to what passes the sandbox boundary (renderers/validate:
strings up to 100,000 characters, 400,000 values in all). Prints, per reward and case,
the seconds per item and the ratio to the normal case.

    python benchmarks/reward_cost_bench.py            # this checkout
    python benchmarks/reward_cost_bench.py --scale 0.1  # smaller worst cases
    REWARD_BENCH_ROOT=/path/to/other/checkout python benchmarks/reward_cost_bench.py

REWARD_BENCH_ROOT scores with another copy of the code (for before/after figures); a
version without the visible_only option is run with its defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("REWARD_BENCH_ROOT") or str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from rewards import RewardInput, build_reward  # noqa: E402


class _Render:
    ok, error_kind, error = True, None, None

    def __init__(self, trace: dict) -> None:
        self.trace = trace


def _axes(title="Sales", n_lines=2, n_points=12, seed=0, **extra) -> dict:
    rng = np.random.default_rng(seed)
    lines = [
        {
            "label": f"s{i}",
            "x": list(range(n_points)),
            "y": rng.normal(size=n_points).round(3).tolist(),
            "color": "#1F77B4",
            "marker": "None",
            "linestyle": "-",
            "helper": False,
        }
        for i in range(n_lines)
    ]
    ax = {
        "projection": "rectilinear",
        "title": title,
        "title_left": "",
        "title_right": "",
        "xlabel": "Quarter",
        "ylabel": "Units",
        "xscale": "linear",
        "yscale": "linear",
        "xlim": [0, 1],
        "ylim": [0, 1],
        "legend": [f"s{i}" for i in range(n_lines)],
        "xticklabels": [],
        "yticklabels": [],
        "lines": lines,
        "bars": [
            {
                "label": "b",
                "orientation": "vertical",
                "values": [3, 4, 5],
                "x": [0, 1, 2],
                "y": [1.5, 2, 2.5],
                "colors": ["#2CA02C"] * 3,
            }
        ],
        "wedges": [],
        "collections": [],
        "images": [],
        "texts": [],
    }
    ax.update(extra)
    return ax


def _trace(axes: list[dict], texts=None, colors=None, types=None) -> dict:
    texts = ["Sales", "Stock", "Quarter", "Units", "s0", "s1"] if texts is None else texts
    colors = [["line", "#1F77B4"], ["line", "#D62728"], ["bar", "#2CA02C"]] if colors is None else colors
    types = {"plot": 2, "bar": 1} if types is None else types
    layout = [[1, len(axes), 0, 0, i, i] for i in range(len(axes))]
    trace = {
        "types": types,
        "colors": colors,
        "texts": texts,
        "tick_labels": [],
        "layout": layout,
        "axes": axes,
        "suptitle": "",
        "figure": {"width_in": 8, "height_in": 3, "n_axes": len(axes), "n_figures": 1},
    }
    # every element shows (the costs measured here do not depend on visibility)
    trace["visible"] = {
        "texts": texts,
        "types": types,
        "colors": colors,
        "layout": layout,
        "n_axes": len(axes),
        "suptitle": True,
        "axes": [_all_visible(ax) for ax in axes],
    }
    return trace


def _all_visible(ax: dict) -> dict:
    flags = {k: True for k in ("shown", "title", "title_left", "title_right", "xlabel", "ylabel")}
    for k in ("legend", "lines", "wedges", "collections", "images"):
        flags[k] = [True] * len(ax[k])
    flags["bars"] = [[2] * len(b["values"]) for b in ax["bars"]]
    return flags


def cases(scale: float) -> dict[str, dict]:
    n = lambda x: max(1, int(x * scale))  # noqa: E731
    normal = _trace([_axes("Sales 2023"), _axes("Stock", seed=1)])
    return {
        "normal": normal,
        # 30 axes x 100,000-character titles: 3 million characters once joined
        "huge titles": _trace([_axes("T" * n(100_000), seed=i) for i in range(30)]),
        "many texts": _trace([_axes()], texts=[f"text {i}" for i in range(n(100_000))]),
        "many colours": _trace(
            [_axes()], colors=[["bar", f"#{(i * 2654435761) % 16**6:06X}"] for i in range(n(6_000))]
        ),
        "colormap names": _trace([_axes()], colors=[["imshow", f"cmap_{i}"] for i in range(n(6_000))]),
        "many series": _trace([_axes(n_lines=n(180), n_points=2_000)]),
        "many short series": _trace([_axes(n_lines=n(5_000), n_points=5)]),
        "huge numbers": _trace([_axes(lines=[{"label": "x", "y": [1e308, -1e308] * 1000, "helper": False}])]),
    }


def _reward(name: str, visible_only: bool):
    try:
        return build_reward(name, visible_only=visible_only)
    except TypeError:  # a version without the option
        return build_reward(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of the worst cases (1 = full)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case (best is kept)")
    args = parser.parse_args()
    traces = cases(args.scale)
    normal = traces["normal"]
    print(f"{'reward':<26}{'case':<20}{'s/item':>10}{'x normal':>12}")
    for name, visible_only in (("msrl_text", True), ("msrl_text", False), ("chartmimic", True), ("chartmimic", False)):
        reward = _reward(name, visible_only)
        label = f"{name} visible={visible_only}"
        reward([RewardInput("", render=_Render(normal), reference_render=_Render(normal))])  # imports, caches
        base = None
        for case, trace in traces.items():
            # the worst case as the policy's answer, scored against a normal reference
            item = RewardInput("", render=_Render(trace), reference_render=_Render(normal))
            best = float("inf")
            for _ in range(args.repeat if case == "normal" else 1):
                t0 = time.perf_counter()
                reward([item])
                best = min(best, time.perf_counter() - t0)
            base = best if case == "normal" else base
            print(f"{label:<26}{case:<20}{best:>10.4f}{best / base:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
