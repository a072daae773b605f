"""Rule-based chart rewards: format, execution, ChartMimic low-level, MSRL textual."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rewards.base import RewardInput, RewardOutput, register
from rewards.chartmimic import METRICS, low_level_metrics, visible_view
from rewards.critique import chart_critique, kind_name, layout_diagnosis, type_diagnosis


def _python_block(text: str) -> str | None:
    from renderers.code import extract_code

    return extract_code(text or "", strict=True)


@register("format")
class FormatReward:
    """1 when the completion holds a ```python block that parses, else 0."""

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            code = _python_block(item.completion)
            has_block = code is not None
            parses = False
            problem = "no ```python code block"
            if has_block:
                try:
                    ast.parse(code)
                    parses = True
                except (SyntaxError, ValueError) as exc:
                    problem = (
                        f"the code does not parse (line {getattr(exc, 'lineno', '?')}: {getattr(exc, 'msg', exc)})"
                    )
            outs.append(
                RewardOutput(
                    float(parses),
                    {"has_block": float(has_block), "parses": float(parses)},
                    "" if parses else f"Format: {problem}.",
                )
            )
        return outs


@register("exec")
class ExecReward:
    """1 when the code ran and its figure shows something, else 0 (MSRL's execution reward).

    visible_only (default, for training): a figure that draws nothing visible (no bars,
    lines, markers, wedges...) earns 0 unless the reference draws nothing either. An empty
    figure is the cheapest script that runs, and with exec paying for it RL learned to
    answer every chart with `plt.title(...)` alone (docs/rewards.md). False: ChartMimic's
    sense, the code ran and made a figure (the demo's "ran" column).
    """

    def __init__(self, visible_only: bool = True) -> None:
        self.visible_only = bool(visible_only)

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            r = item.render
            ran = bool(r is not None and r.ok)
            shows = ran and (not self.visible_only or not _shows_nothing(_view(r.trace), _reference_view(item)))
            if shows:
                critique = ""
            elif ran:
                critique = "The code ran, but its figure shows nothing (no visible bars, lines, markers or wedges)."
            elif r is not None:
                critique = f"The code failed ({r.error_kind}: {r.error})."
            else:
                critique = "No code was rendered."
            outs.append(RewardOutput(float(shows), {"ran": float(ran)}, critique))
        return outs


def _shows_nothing(gen: dict, ref: dict | None) -> bool:
    """The answer shows no plotted element while the reference shows one (a missing
    reference counts as showing one: a chart is what every task asks for). Both traces are
    seen the same way, both visible views or both as the scripts call."""
    return (ref is None or bool(ref.get("types"))) and not gen.get("types")


def _view(trace: dict) -> dict:
    if not isinstance(trace, dict):  # fail closed: the composite scores this reward 0 and names it
        raise TypeError("the exec reward needs the render's trace to see what the figure shows (tracing off?)")
    return visible_view(trace)


def _reference_view(item: RewardInput) -> dict | None:
    trace = _reference_trace(item)
    return None if trace is None else _view(trace)


def _reference_trace(item: RewardInput) -> dict | None:
    ref = item.reference_render
    return item.meta.get("reference_trace") if ref is None else (ref.trace if ref.ok else None)


def _ref_trace(item: RewardInput, reward: str) -> dict:
    """The reference chart's trace, which every trace-based reward needs."""
    trace = _reference_trace(item)
    if trace is None:
        raise ValueError(
            f"the {reward} reward needs the reference's render (reference_render or meta['reference_trace'])"
        )
    return trace


@register("chartmimic")
class ChartMimicReward:
    """Mean F1 of ChartMimic's text, layout, type and colour metrics (0..1).

    visible_only (default, for training): only what the rendered images show counts, so
    hidden copies of the reference's texts, colours and calls earn nothing. False gives
    the official metric, which scores what the scripts call whether it shows or not.
    """

    def __init__(self, visible_only: bool = True) -> None:
        self.visible_only = bool(visible_only)

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            ref = _ref_trace(item, "chartmimic")
            r = item.render
            ok = bool(r is not None and r.ok)
            gen = r.trace if ok else None
            if self.visible_only:
                ref, gen = visible_view(ref), None if gen is None else visible_view(gen)
            scores = low_level_metrics(gen, ref, gen_ok=ok, graph=item.meta.get("graph", False))
            comps = {m: scores[m].f1 for m in METRICS}
            critique = chart_critique(gen, ref, gen_ok=ok, error=None if r is None else f"{r.error_kind}: {r.error}")
            outs.append(RewardOutput(float(np.mean(list(comps.values()))), comps, critique))
        return outs


# --------------------------------------------------------------------------- MSRL textual


# Bounds on what one comparison may cost, far above what real charts hold (docs/rewards.md).
MAX_TEXT_CHARS = 5000  # characters of each string compared by edit distance
MAX_SERIES = 100  # data series per chart, in drawing order


def levenshtein(a: str, b: str) -> int:
    """Edit distance by Hyyro's bit-parallel algorithm: one pass over `a` with Python
    integers as bit vectors as long as `b`, so thousands of characters take milliseconds
    (the textbook table took a minute for a long title). Exact."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << i)
    full, top = (1 << m) - 1, 1 << (m - 1)
    vp, vn, dist = full, 0, m
    for c in a:
        x = peq.get(c, 0) | vn
        d0 = ((((x & vp) + vp) & full) ^ vp) | x
        hn = vp & d0
        hp = (vn | ~(vp | d0)) & full
        if hp & top:
            dist += 1
        elif hn & top:
            dist -= 1
        hp = ((hp << 1) | 1) & full
        hn = (hn << 1) & full
        vp = (hn | ~(d0 | hp)) & full
        vn = hp & d0
    return dist


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): 1 for equal strings, 1 when both are empty.
    Both strings are cut to MAX_TEXT_CHARS first."""
    a, b = a[:MAX_TEXT_CHARS], b[:MAX_TEXT_CHARS]
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def _is_data_line(line: dict) -> bool:
    # Traces mark the lines matplotlib adds around the data (error-bar caps, box-plot
    # parts); older traces do not, and there those lines are the '_nolegend_' ones. An
    # unlabelled line ('_childN') is data like any other.
    return not line.get("helper", line.get("label") == "_nolegend_")


def data_series(trace: dict) -> list[list[float]]:
    """The numbers a chart shows, one list per series, in drawing order (MAX_SERIES at most)."""
    series: list[list[float]] = []
    for ax in trace.get("axes", []):
        for bar in ax.get("bars", []):
            series.append([v for v in bar.get("values", []) if v is not None])
        if ax.get("wedges"):
            series.append([w["fraction"] for w in ax["wedges"] if w.get("fraction") is not None])
        for line in ax.get("lines", []):
            ys = [v for v in line.get("y", []) if v is not None]
            if len(ys) >= 2 and _is_data_line(line):
                series.append(ys)
        for coll in ax.get("collections", []):
            if coll.get("type") == "PathCollection" and coll.get("y"):
                series.append([v for v in coll["y"] if v is not None])
    return [s for s in series if s][:MAX_SERIES]


def series_match(gen: Sequence[float], ref: Sequence[float], rel_tol: float) -> float:
    """Fraction of positions where the values agree within rel_tol (relative to the reference)."""
    n = max(len(gen), len(ref))
    if n == 0:
        return 1.0
    g = np.asarray(gen[: len(ref)], dtype=float)
    r = np.asarray(ref[: len(g)], dtype=float)
    scale = np.maximum(np.abs(r), 1e-9 + 1e-6 * (np.abs(r).max() if r.size else 0))
    hits = np.abs(g - r) <= rel_tol * scale
    return float(hits.sum()) / n


def _match_matrix(gen: list[list[float]], ref: list[list[float]], rel_tol: float) -> np.ndarray:
    """series_match for every (gen, ref) pair, one numpy pass per generated series."""
    lens = np.array([len(r) for r in ref])
    width = max(max(lens), max(len(g) for g in gen))
    table = np.full((len(ref), width), np.nan)
    for j, r in enumerate(ref):
        table[j, : len(r)] = r
    absr = np.abs(table)
    # series_match scales by the largest |value| among the positions both series have
    prefix_max = np.fmax.accumulate(absr, axis=1)
    sim = np.zeros((len(gen), len(ref)))
    with np.errstate(invalid="ignore", over="ignore"):
        for i, g in enumerate(gen):
            k = np.minimum(len(g), lens)  # positions compared with each reference
            top = prefix_max[np.arange(len(ref)), k - 1]
            cols = table[:, : len(g)]
            scale = np.maximum(absr[:, : len(g)], (1e-9 + 1e-6 * top)[:, None])
            hits = np.abs(np.asarray(g, float)[None, :] - cols) <= rel_tol * scale
            sim[i] = hits.sum(axis=1) / np.maximum(len(g), lens)
    return sim


def data_score(gen_trace: dict, ref_trace: dict, rel_tol: float = 0.05) -> float:
    """Series aligned one-to-one (best total match); extra or missing series count against."""
    gen, ref = data_series(gen_trace), data_series(ref_trace)
    if not ref and not gen:
        return 1.0
    if not ref or not gen:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    sim = _match_matrix(gen, ref, rel_tol)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].sum()) / max(len(gen), len(ref))


def _titles(trace: dict) -> str:
    parts = [ax.get("title", "") for ax in trace.get("axes", [])]
    return "\n".join([trace.get("suptitle", "")] + parts).strip()


def _labels(trace: dict) -> dict[str, str]:
    axes = trace.get("axes", [])
    return {
        "x": "\n".join(ax.get("xlabel", "") for ax in axes).strip(),
        "y": "\n".join(ax.get("ylabel", "") for ax in axes).strip(),
        "legend": "\n".join("\n".join(ax.get("legend", [])) for ax in axes).strip(),
    }


@dataclass
class TextualWeights:
    data: float = 0.3
    type: float = 0.2
    layout: float = 0.1
    title: float = 0.2
    labels: float = 0.2


@register("msrl_text")
class MSRLTextReward:
    """MSRL's rule-based textual reward: a weighted sum of data, type, layout, title, labels.

    data: series aligned and matched within +-rel_tol relative; type: the set of plotting
    functions is exactly the reference's; layout: the subplot grid is exactly the
    reference's; title and labels: normalised edit-distance similarity.
    """

    def __init__(
        self, weights: dict[str, float] | None = None, rel_tol: float = 0.05, visible_only: bool = True
    ) -> None:
        self.weights = TextualWeights(**(weights or {}))
        self.rel_tol = rel_tol
        self.visible_only = bool(visible_only)  # training default: see ChartMimicReward

    def components(self, gen: dict, ref: dict) -> dict[str, float]:
        labels_g, labels_r = _labels(gen), _labels(ref)
        fields = [k for k in labels_r if labels_r[k] or labels_g[k]]
        # A figure that draws nothing agrees with a one-axes reference on its grid and on
        # having no axis labels, without showing anything: RL found that a title-only answer
        # earned 0.53 of stage 1's 1.0, more than honest attempts that sometimes crash. Such
        # vacuous agreement earns nothing; texts it does show (title, labels) still count.
        draws = not _shows_nothing(gen, ref)
        return {
            "data": data_score(gen, ref, self.rel_tol),
            "type": float(set(gen.get("types", {})) == set(ref.get("types", {})) and bool(ref.get("types"))),
            "layout": float(
                draws and sorted(map(tuple, gen.get("layout", []))) == sorted(map(tuple, ref.get("layout", [])))
            ),
            "title": edit_similarity(_titles(gen), _titles(ref)),
            "labels": float(np.mean([edit_similarity(labels_g[k], labels_r[k]) for k in fields]))
            if fields
            else float(draws),
        }

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        w = self.weights
        weights = {"data": w.data, "type": w.type, "layout": w.layout, "title": w.title, "labels": w.labels}
        total_w = sum(weights.values()) or 1.0
        outs = []
        for item in batch:
            ref = _ref_trace(item, "msrl_text")
            r = item.render
            if r is None or not r.ok:
                outs.append(RewardOutput(0.0, {k: 0.0 for k in weights}, "No chart to compare."))
                continue
            gen = r.trace
            if self.visible_only:
                gen, ref = visible_view(gen), visible_view(ref)
            comps = self.components(gen, ref)
            score = sum(weights[k] * comps[k] for k in weights) / total_w
            outs.append(RewardOutput(score, comps, self._critique(comps, gen, ref)))
        return outs

    @staticmethod
    def _critique(comps: dict[str, float], gen: dict, ref: dict) -> str:
        notes = []
        if _shows_nothing(gen, ref):
            notes.append("the chart draws nothing that shows (no visible bars, lines, markers or wedges)")
        else:
            if comps["type"] < 1:
                notes.append(type_diagnosis(gen.get("types", {}), ref.get("types", {})) or "chart type differs")
            if comps["layout"] < 1:
                notes.append(layout_diagnosis(gen.get("layout", []), ref.get("layout", [])) or "layout differs")
            if comps["data"] < 0.999:
                notes.append(f"data: {comps['data']:.0%} of the values match within 5%")
        if comps["title"] < 1:
            want = _titles(ref).replace("\n", " / ") or "none"
            notes.append(f"title should read '{want[:60]}'")
        if comps["labels"] < 1:
            notes.append("axis or legend labels differ")
        return ("; ".join(notes) + ".") if notes else ""


__all__ = [
    "FormatReward",
    "ExecReward",
    "ChartMimicReward",
    "MSRLTextReward",
    "edit_similarity",
    "levenshtein",
    "data_series",
    "data_score",
    "kind_name",
]
