"""Metadata: a JSON-serialisable summary of a chart spec (labels, series, colours, sizes, grid)."""

from __future__ import annotations

from vlrl.datasets.synth.conventions import _DIST_FAMILIES, _GRID_SHAPES, _PIE_FAMILIES


def _metadata(family: str, p: dict) -> dict:
    if family in _GRID_SHAPES:
        return _grid_metadata(family, p)
    series, colors, cats, n_points = _series_summary(family, p)
    return {
        "family": family,
        "title": p.get("title"),
        "xlabel": p.get("xlabel"),
        "ylabel": p.get("ylabel"),
        "series": series,
        "colors": colors,
        "categories": cats,
        "n_series": len(series),
        "n_points": n_points,
        "nrows": 1,
        "ncols": 1,
        "panels": [],
    }


def _series_summary(family: str, p: dict) -> tuple[list, list, list | None, int]:
    """(colour-owning names, their colours, tick categories, points per series).

    "Series" means whatever owns a colour: legend entries, pie wedges, boxes;
    keeping names and colours aligned is what swap_colors descriptions rely on.
    """
    if family in _PIE_FAMILIES:
        return list(p["labels"]), list(p["colors"]), list(p["labels"]), len(p["values"])
    if family in _DIST_FAMILIES:
        return list(p["labels"]), list(p["colors"]), list(p["labels"]), max(len(d) for d in p["data"])
    if family == "heatmap":
        return [], [], list(p["cols"]), len(p["rows"]) * len(p["cols"])
    names = [s["name"] for s in p["series"]]
    colors = [s["color"] for s in p["series"]]
    if family == "scatter":
        return names, colors, None, max(len(s["x"]) for s in p["series"])
    if family == "radar":
        return names, colors, list(p["labels"]), len(p["labels"])
    if family == "hist":
        return names, colors, None, max(len(s["values"]) for s in p["series"])
    return names, colors, list(p["categories"]), len(p["categories"])


def _grid_metadata(family: str, p: dict) -> dict:
    nrows, ncols = _GRID_SHAPES[family]
    panels = [_metadata(panel["family"], panel["params"]) for panel in p["panels"]]
    return {
        "family": family,
        "title": p.get("suptitle"),
        "xlabel": None,
        "ylabel": None,
        "series": [s for m in panels for s in m["series"]],
        "colors": [c for m in panels for c in m["colors"]],
        "categories": None,
        "n_series": sum(m["n_series"] for m in panels),
        "n_points": sum(m["n_points"] for m in panels),
        "nrows": nrows,
        "ncols": ncols,
        "panels": panels,
    }
