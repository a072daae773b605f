"""ChartMimic's four low-level metrics (text, layout, type, colour), computed from traces.

The rules follow the evaluation code ChartMimic publishes with its benchmark:
- each metric is a precision/recall/F1 between what the generated and the reference
  script draw; 0 when either side has nothing, and 0 for a script that failed;
- text and layout are multiset exact matches (tick labels were removed from the texts
  by the renderer);
- type compares call counts per plotting function;
- colour pairs colours within each plotting-function group by an optimal assignment of
  CIEDE2000 similarities (the original enumerates permutations; the maximum is the same),
  after the >10-colour greedy filter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from rewards.colors import hex_similarity_matrix, lab_array

COLOR_FILTER_THRESHOLD = 0.7  # colours more similar than this to a kept one are dropped...
COLOR_FILTER_MIN_COUNT = 10  # ...but only when a script draws more than this many
# Colours considered per trace, in first-drawn order. Real charts draw dozens; the cap
# bounds the greedy filter and the assignment whatever a script draws (docs/rewards.md).
MAX_COLORS = 1000


@dataclass(frozen=True)
class PRF:
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0

    @classmethod
    def from_pr(cls, precision: float, recall: float) -> "PRF":
        if precision + recall == 0:
            return cls(precision, recall, 0.0)
        return cls(precision, recall, 2 * precision * recall / (precision + recall))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


ZERO = PRF()


def multiset_prf(generated: Sequence[Any], reference: Sequence[Any]) -> tuple[PRF, int]:
    """Exact-match precision/recall of two multisets; also returns the match count."""
    if not generated or not reference:
        return ZERO, 0
    gen = Counter(generated)
    ref = Counter(reference)
    matched = sum(min(gen[k], n) for k, n in ref.items())
    return PRF.from_pr(matched / len(generated), matched / len(reference)), matched


def text_metric(gen_trace: dict, ref_trace: dict) -> PRF:
    return multiset_prf(gen_trace.get("texts", []), ref_trace.get("texts", []))[0]


def _layout_rows(trace: dict, graph: bool) -> list[tuple[int, ...]]:
    if graph:
        # ChartMimic scores network charts ("graph_*") as one cell per axes, grid or not.
        return [(1, 1, 0, 1, 0, 1)] * int(trace.get("figure", {}).get("n_axes", 0))
    return [tuple(row) for row in trace.get("layout", [])]


def layout_metric(gen_trace: dict, ref_trace: dict, *, graph: bool = False) -> PRF:
    return multiset_prf(_layout_rows(gen_trace, graph), _layout_rows(ref_trace, graph))[0]


def type_metric(gen_trace: dict, ref_trace: dict) -> PRF:
    gen = gen_trace.get("types", {})
    ref = ref_trace.get("types", {})
    total_gen, total_ref = sum(gen.values()), sum(ref.values())
    if total_gen == 0 or total_ref == 0:
        return ZERO
    correct = sum(min(n, ref.get(kind, 0)) for kind, n in gen.items())
    return PRF.from_pr(correct / total_gen, correct / total_ref)


def filter_colors(colors: Sequence[Sequence[str]]) -> list[list[str]]:
    """Greedy near-duplicate filter applied when a script draws more than 10 colours.

    Walks the list in order and keeps a colour unless it is more than 0.7 similar to one
    already kept, whatever plotting function drew either. (The original walks a Python
    set, so its order, and for a few charts its result, depends on the hash seed; ours
    walks the trace's first-drawn order.) Only the first MAX_COLORS colours are looked at.
    """
    colors = [list(c) for c in colors[:MAX_COLORS]]
    if len(colors) <= COLOR_FILTER_MIN_COUNT:
        return colors
    kept: list[list[str]] = []
    # A colormap name is similar (1) only to the same name, a hex colour only to hex colours.
    names: set[str] = set()
    labs = np.zeros((0, 3))
    for group, color in colors:
        if not color.startswith("#"):
            if color in names:
                continue
            names.add(color)
        else:
            if len(labs) and (hex_similarity_matrix([color], [], labs=labs) > COLOR_FILTER_THRESHOLD).any():
                continue
            labs = np.vstack([labs, lab_array([color])])
        kept.append([group, color])
    return kept


def _best_total_similarity(gen: list[str], ref: list[str]) -> float:
    """Maximum total similarity over one-to-one pairings (Hungarian algorithm).

    Hex colours and colormap names are never similar to each other, so the best pairing
    splits: names pair by equality (a multiset intersection), hex colours by assignment."""
    if not gen or not ref:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    gen, ref = gen[:MAX_COLORS], ref[:MAX_COLORS]
    names = sum(
        (Counter(c for c in gen if not c.startswith("#")) & Counter(c for c in ref if not c.startswith("#"))).values()
    )
    sim = hex_similarity_matrix([c for c in gen if c.startswith("#")], [c for c in ref if c.startswith("#")])
    if not sim.size:
        return float(names)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].sum()) + names


def _group(colors: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, color in colors:
        groups.setdefault(group, []).append(color)
    return groups


def color_metric(gen_trace: dict, ref_trace: dict) -> PRF:
    gen = filter_colors(gen_trace.get("colors", []))
    ref = filter_colors(ref_trace.get("colors", []))
    if not gen or not ref:
        return ZERO
    gen_groups, ref_groups = _group(gen), _group(ref)
    total = sum(
        _best_total_similarity(gen_groups.get(g, []), ref_groups.get(g, [])) for g in set(gen_groups) | set(ref_groups)
    )
    return PRF.from_pr(total / len(gen), total / len(ref))


METRICS = ("text", "layout", "type", "color")


def visible_view(trace: dict) -> dict:
    """The trace as its image shows it: trace["visible"] (renderers/visibility.py) applied
    to the official keys. A trace without that entry (an old cached one) is returned as is.
    Training rewards score this view; ChartMimic's evaluation scores the trace itself."""
    vis = trace.get("visible")
    if not isinstance(vis, dict):
        return trace
    out = dict(trace)
    for key in ("texts", "types", "colors", "layout"):
        out[key] = vis.get(key, type(trace.get(key, []))())
    out["suptitle"] = trace.get("suptitle", "") if vis.get("suptitle") else ""
    out["figure"] = {**trace.get("figure", {}), "n_axes": vis.get("n_axes", 0)}
    flags = vis.get("axes", [])
    out["axes"] = [_visible_axes(ax, flags[i] if i < len(flags) else {}) for i, ax in enumerate(trace.get("axes", []))]
    return out


def _keep(items: list, flags: list) -> list:
    return [x for x, f in zip(items, flags) if f]


def _visible_axes(ax: dict, flags: dict) -> dict:
    out = dict(ax)
    for key in ("title", "title_left", "title_right", "xlabel", "ylabel", "zlabel"):
        if key in out and not flags.get(key):
            out[key] = ""
    for key in ("legend", "lines", "wedges", "collections", "images"):
        out[key] = _keep(ax.get(key, []), flags.get(key, []))
    bars = []
    for bar, bar_flags in zip(ax.get("bars", []), flags.get("bars", [])):
        if 2 in bar_flags:  # a series shows when one of its bars does; its zero bars read as 0
            bars.append({**bar, **{k: _keep(bar.get(k, []), bar_flags) for k in ("values", "x", "y", "colors")}})
    out["bars"] = bars
    return out


def low_level_metrics(
    gen_trace: dict | None, ref_trace: dict, *, gen_ok: bool = True, graph: bool = False, visible_only: bool = False
) -> dict[str, PRF]:
    """All four metrics for one (generated, reference) pair; a failed script scores 0.

    visible_only scores what both images show (visible_view) instead of what the scripts
    drew: off by default, which is ChartMimic's official evaluation."""
    if not gen_ok or gen_trace is None:
        return {m: ZERO for m in METRICS}
    if visible_only:
        gen_trace, ref_trace = visible_view(gen_trace), visible_view(ref_trace)
    return {
        "text": text_metric(gen_trace, ref_trace),
        "layout": layout_metric(gen_trace, ref_trace, graph=graph),
        "type": type_metric(gen_trace, ref_trace),
        "color": color_metric(gen_trace, ref_trace),
    }
