"""Plain-words explanations of how a generated chart differs from its reference.

Built from the same traces the metrics use, so a critique never disagrees with a score:
"chart type: expected bar, got line; title 'Sales 2023' missing; 2 of 5 colours off".
The demo shows them and critique-guided refinement feeds them back to the model.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from rewards.colors import similarity_matrix

MAX_COLORS = 1000  # colours compared per side, as in rewards.chartmimic

_FRIENDLY = {
    "plot": "line",
    "plot_polar": "polar line",
    "Ellipse": "circle/ellipse",
    "squarify.plot": "treemap",
    "3d.scatter": "3D scatter",
    "3d.plot": "3D line",
    "3d.plot_surface": "3D surface",
    "3d.bar3d": "3D bar",
    "3d.bar": "3D bar",
    "fill_between": "filled area",
    "fill_betweenx": "filled area",
    "imshow": "heatmap/image",
}

COLOR_OFF_BELOW = 0.9  # a reference colour counts as "off" when nothing drawn is this similar


def kind_name(kind: str) -> str:
    return _FRIENDLY.get(kind, kind)


def _quote_list(items: Sequence[str], limit: int = 2) -> str:
    shown = ", ".join(f"'{s[:40]}'" for s in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def type_diagnosis(gen_types: dict[str, int], ref_types: dict[str, int]) -> str | None:
    if set(gen_types) == set(ref_types):
        return None
    exp = ", ".join(kind_name(k) for k in sorted(ref_types)) or "nothing"
    got = ", ".join(kind_name(k) for k in sorted(gen_types)) or "nothing"
    return f"chart type: expected {exp}, got {got}"


def text_diagnosis(gen_texts: Sequence[str], ref_texts: Sequence[str], titles: Sequence[str] = ()) -> list[str]:
    missing = list((Counter(ref_texts) - Counter(gen_texts)).elements())
    extra = list((Counter(gen_texts) - Counter(ref_texts)).elements())
    notes = []
    missing_set = set(missing)  # sets: a chart may carry thousands of texts and of axes
    missing_titles = [t for t in titles if t in missing_set]
    if missing_titles:
        notes.append(f"title {_quote_list(missing_titles, 1)} missing")
        title_set = set(missing_titles)
        missing = [t for t in missing if t not in title_set]
    if missing:
        notes.append(f"text {_quote_list(missing)} missing")
    if extra:
        notes.append(f"unexpected text {_quote_list(extra)}")
    return notes


def layout_diagnosis(gen_layout: Sequence[Sequence[int]], ref_layout: Sequence[Sequence[int]]) -> str | None:
    def grid(rows):
        shapes = sorted({(r[0], r[1]) for r in rows})
        return ", ".join(f"{a}x{b}" for a, b in shapes) or "no grid"

    if sorted(map(tuple, gen_layout)) == sorted(map(tuple, ref_layout)):
        return None
    return f"layout: expected {len(ref_layout)} panel(s) in {grid(ref_layout)}, got {len(gen_layout)} in {grid(gen_layout)}"


def color_diagnosis(gen_colors: Sequence[Sequence[str]], ref_colors: Sequence[Sequence[str]]) -> str | None:
    ref = [c for _, c in ref_colors][:MAX_COLORS]
    gen = [c for _, c in gen_colors][:MAX_COLORS]
    if not ref:
        return None
    sim = similarity_matrix(ref, gen)
    off = int((~(sim >= COLOR_OFF_BELOW).any(axis=1)).sum()) if gen else len(ref)
    if off == 0:
        return None
    return f"{off} of {len(ref)} colours off"


def chart_critique(gen_trace: dict | None, ref_trace: dict, *, gen_ok: bool, error: str | None = None) -> str:
    """One or two sentences on what to fix; empty when the chart matches on every metric."""
    if not gen_ok or gen_trace is None:
        return f"The code did not produce a chart ({error or 'it failed'})."
    titles = [ax.get("title", "") for ax in ref_trace.get("axes", []) if ax.get("title")]
    if ref_trace.get("suptitle"):
        titles.append(ref_trace["suptitle"])
    notes = []
    t = type_diagnosis(gen_trace.get("types", {}), ref_trace.get("types", {}))
    if t:
        notes.append(t)
    lay = layout_diagnosis(gen_trace.get("layout", []), ref_trace.get("layout", []))
    if lay:
        notes.append(lay)
    notes += text_diagnosis(gen_trace.get("texts", []), ref_trace.get("texts", []), titles)
    col = color_diagnosis(gen_trace.get("colors", []), ref_trace.get("colors", []))
    if col:
        notes.append(col)
    if not notes:
        return ""
    return "; ".join(notes[:5]) + ("; ..." if len(notes) > 5 else "") + "."
