"""Rule-based chart rewards: format, execution, ChartMimic low-level, MSRL textual."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rewards.base import RewardInput, RewardOutput, register
from rewards.chartmimic import METRICS, low_level_metrics
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
                    problem = f"the code does not parse (line {getattr(exc, 'lineno', '?')}: {getattr(exc, 'msg', exc)})"
            outs.append(RewardOutput(float(parses), {"has_block": float(has_block), "parses": float(parses)},
                                     "" if parses else f"Format: {problem}."))
        return outs


@register("exec")
class ExecReward:
    """1 when the code ran and produced a figure, else 0 (MSRL's execution reward)."""

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            r = item.render
            ok = bool(r is not None and r.ok)
            critique = "" if ok else (
                f"The code failed ({r.error_kind}: {r.error})." if r is not None else "No code was rendered.")
            outs.append(RewardOutput(float(ok), {}, critique))
        return outs


def _ref_trace(item: RewardInput, reward: str) -> dict:
    """The reference chart's trace, which every trace-based reward needs."""
    ref = item.reference_render
    trace = item.meta.get("reference_trace") if ref is None else (ref.trace if ref.ok else None)
    if trace is None:
        raise ValueError(f"the {reward} reward needs the reference's render (reference_render or meta['reference_trace'])")
    return trace


@register("chartmimic")
class ChartMimicReward:
    """Mean F1 of ChartMimic's text, layout, type and colour metrics (0..1)."""

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            ref = _ref_trace(item, "chartmimic")
            r = item.render
            ok = bool(r is not None and r.ok)
            scores = low_level_metrics(r.trace if ok else None, ref, gen_ok=ok, graph=item.meta.get("graph", False))
            comps = {m: scores[m].f1 for m in METRICS}
            critique = chart_critique(r.trace if ok else None, ref, gen_ok=ok,
                                      error=None if r is None else f"{r.error_kind}: {r.error}")
            outs.append(RewardOutput(float(np.mean(list(comps.values()))), comps, critique))
        return outs


# --------------------------------------------------------------------------- MSRL textual


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): 1 for equal strings, 1 when both are empty."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def data_series(trace: dict) -> list[list[float]]:
    """The numbers a chart shows, one list per series, in drawing order."""
    series: list[list[float]] = []
    for ax in trace.get("axes", []):
        for bar in ax.get("bars", []):
            series.append([v for v in bar.get("values", []) if v is not None])
        if ax.get("wedges"):
            series.append([w["fraction"] for w in ax["wedges"] if w.get("fraction") is not None])
        for line in ax.get("lines", []):
            ys = [v for v in line.get("y", []) if v is not None]
            if len(ys) >= 2 and not line.get("label", "").startswith("_child"):
                series.append(ys)
        for coll in ax.get("collections", []):
            if coll.get("type") == "PathCollection" and coll.get("y"):
                series.append([v for v in coll["y"] if v is not None])
    return [s for s in series if s]


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


def data_score(gen_trace: dict, ref_trace: dict, rel_tol: float = 0.05) -> float:
    """Series aligned one-to-one (best total match); extra or missing series count against."""
    gen, ref = data_series(gen_trace), data_series(ref_trace)
    if not ref and not gen:
        return 1.0
    if not ref or not gen:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    sim = np.array([[series_match(g, r, rel_tol) for r in ref] for g in gen])
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

    def __init__(self, weights: dict[str, float] | None = None, rel_tol: float = 0.05) -> None:
        self.weights = TextualWeights(**(weights or {}))
        self.rel_tol = rel_tol

    def components(self, gen: dict, ref: dict) -> dict[str, float]:
        labels_g, labels_r = _labels(gen), _labels(ref)
        fields = [k for k in labels_r if labels_r[k] or labels_g[k]]
        return {
            "data": data_score(gen, ref, self.rel_tol),
            "type": float(set(gen.get("types", {})) == set(ref.get("types", {})) and bool(ref.get("types"))),
            "layout": float(sorted(map(tuple, gen.get("layout", []))) == sorted(map(tuple, ref.get("layout", [])))),
            "title": edit_similarity(_titles(gen), _titles(ref)),
            "labels": float(np.mean([edit_similarity(labels_g[k], labels_r[k]) for k in fields])) if fields else 1.0,
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
            comps = self.components(r.trace, ref)
            score = sum(weights[k] * comps[k] for k in weights) / total_w
            outs.append(RewardOutput(score, comps, self._critique(comps, r.trace, ref)))
        return outs

    @staticmethod
    def _critique(comps: dict[str, float], gen: dict, ref: dict) -> str:
        notes = []
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


__all__ = ["FormatReward", "ExecReward", "ChartMimicReward", "MSRLTextReward", "edit_similarity",
           "data_series", "data_score", "kind_name"]
