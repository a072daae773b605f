"""Random generation of chart specs: a corpus is a pure function of its seed.

Everything is driven by an explicit ``random.Random``; the order of draws is part of the
contract (a seed must keep producing the same corpus), so reordering calls here changes
every corpus built from then on.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Callable, Sequence

from vlrl.datasets.synth.conventions import _GRID_SHAPES, FAMILIES, _rotation, _round
from vlrl.datasets.synth.spec import ChartSpec
from vlrl.datasets.synth.vocabulary import (
    _DARK_CMAPS,
    _DIMENSIONS,
    _DIST_DOMAINS,
    _ERRORBAR_GROUPS,
    _ERRORBAR_X,
    _ERRORBAR_Y,
    _FIGSIZES,
    _HEATMAP_DOMAINS,
    _LEGEND_LOCS,
    _METRICS,
    _PIE_TITLES,
    _RADAR_DOMAINS,
    _SCATTER_DOMAINS,
    _SERIES_GROUPS,
    _SQUARE_FIGSIZES,
    _SUPTITLES,
    LINESTYLES,
    MARKERS,
    PALETTES,
    _Dim,
    _DistDomain,
    _Metric,
    _ScatterDomain,
    _title,
)

# Radar needs a polar axes, which plt.subplots(r, c) cannot mix in, so it stays out of grids.
_PANEL_FAMILIES = (
    "bar",
    "barh",
    "grouped_bar",
    "stacked_bar",
    "line",
    "area",
    "errorbar",
    "scatter",
    "pie",
    "donut",
    "hist",
    "box",
    "violin",
    "heatmap",
)


def generate_specs(n: int, seed: int, families: Sequence[str] | None = None) -> list[ChartSpec]:
    """``n`` specs, a pure function of ``(n, seed, families)``.

    Families are drawn in rounds, each a fresh seeded shuffle, so every family
    appears once ``n >= len(families)`` while the order still varies.
    """
    fams = list(FAMILIES if families is None else families)
    for f in fams:
        _check_family(f)
    if not fams:
        raise ValueError("families must not be empty")
    rng = random.Random(seed)
    specs: list[ChartSpec] = []
    order: list[str] = []
    while len(specs) < n:
        if not order:
            order = list(fams)
            rng.shuffle(order)
        specs.append(make_spec(order.pop(0), rng))
    return specs


def make_spec(family: str, rng: random.Random) -> ChartSpec:
    """One random spec of ``family``."""
    _check_family(family)
    return ChartSpec(family, _build(family, rng, compact=False))


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown chart family {family!r}; expected one of {', '.join(FAMILIES)}")


def _build(family: str, rng: random.Random, compact: bool) -> dict:
    """Params for ``family``; ``compact`` is for grid panels (less data, no figsize)."""
    if family in _GRID_SHAPES:
        return _build_grid(family, rng)
    params = _BUILDERS[family](rng, compact)
    if compact:
        params.pop("figsize", None)
    return params


def _figsize(rng: random.Random, square: bool = False) -> list[float]:
    return list(rng.choice(_SQUARE_FIGSIZES if square else _FIGSIZES))


def _colors(rng: random.Random, k: int) -> list[str]:
    palette = PALETTES[rng.choice(sorted(PALETTES))]
    # People mostly take a palette in order; sometimes they hand-pick from it.
    return list(palette[:k]) if rng.random() < 0.6 else rng.sample(palette, k)


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _reflect(v: float, lo: float, hi: float) -> float:
    """Fold ``v`` back into [lo, hi]; clamping would pile values up on the bound."""
    span = hi - lo
    t = (v - lo) % (2 * span)
    return lo + (t if t <= span else 2 * span - t)


def _window(rng: random.Random, values: list, n: int, ordered: bool) -> list:
    n = min(n, len(values))
    if ordered:
        start = rng.randint(0, len(values) - n)
        return list(values[start : start + n])
    return rng.sample(list(values), n)


def _series_values(rng: random.Random, metric: _Metric, n: int, ordered: bool) -> list:
    lo, hi = metric.lo, metric.hi
    span = hi - lo
    if not ordered:
        raw = [rng.uniform(lo, hi) for _ in range(n)]
    else:
        raw = _time_series(rng, lo, span, n)
    return [_round(_reflect(v, lo, hi), metric.decimals) for v in raw]


def _time_series(rng: random.Random, lo: float, span: float, n: int) -> list[float]:
    shape = rng.choice(("trend", "seasonal", "walk"))
    start = lo + rng.uniform(0.15, 0.6) * span
    noise = 0.05 * span
    if shape == "trend":
        slope = rng.uniform(-0.5, 0.7) * span / max(n - 1, 1)
        return [start + slope * i + rng.gauss(0, noise) for i in range(n)]
    if shape == "seasonal":
        amp, phase = rng.uniform(0.15, 0.35) * span, rng.uniform(0, 2 * math.pi)
        period = rng.choice((4, 6, 12))
        return [start + amp * math.sin(2 * math.pi * i / period + phase) + rng.gauss(0, noise) for i in range(n)]
    out, v = [], start
    for _ in range(n):
        out.append(v)
        v += rng.gauss(0, 0.1 * span)
    return out


# Only quantities that add up to a meaningful whole belong in a pie.
_PART_OF_WHOLE = (
    "Revenue",
    "Units sold",
    "Website visitors",
    "Energy consumption",
    "Headcount",
    "Market share",
    "Budget",
)


def _metric(rng: random.Random, nonneg: bool = False, additive: bool = False) -> _Metric:
    pool = [m for m in _METRICS if (m.lo >= 0 or not nonneg) and (m.name in _PART_OF_WHOLE or not additive)]
    return rng.choice(pool)


def _dimension(rng: random.Random, temporal: bool | None = None) -> _Dim:
    pool = [d for d in _DIMENSIONS if temporal is None or d.temporal == temporal]
    return rng.choice(pool)


def _series_names(rng: random.Random, k: int, dim: _Dim) -> tuple[str, list[str]]:
    # A "2023" series over a year axis would read as a category, so skip that pairing.
    pool = [g for g in _SERIES_GROUPS if g[0] != dim.label and len(g[1]) >= k]
    label, names = rng.choice(pool)
    return label, _window(rng, names, k, ordered=True)


def _category_base(rng: random.Random, dim: _Dim, n: int, metric: _Metric, k: int) -> dict:
    """Shared layout of every category family (see _CATEGORY_FAMILIES)."""
    cats = _window(rng, dim.values, n, dim.ordered)
    group, names = _series_names(rng, k, dim) if k > 1 else (None, [metric.name])
    colors = _colors(rng, k)
    series = [
        {"name": name, "values": _series_values(rng, metric, len(cats), dim.ordered), "color": c}
        for name, c in zip(names, colors)
    ]
    params = {
        "title": _title(rng, metric.name, dim.label, group),
        "xlabel": dim.label if rng.random() < 0.85 else None,
        "ylabel": metric.label,
        "categories": cats,
        "cat_var": dim.var,
        "series": series,
        "grid": rng.random() < 0.5,
        "rotate": _rotation(cats),
        "legend_loc": rng.choice(_LEGEND_LOCS),
        "legend_title": group if k > 1 and rng.random() < 0.4 else None,
        "figsize": _figsize(rng),
    }
    return params


def _n_cats(rng: random.Random, compact: bool, hi: int = 12) -> int:
    return rng.randint(3, 6 if compact else hi)


def _build_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    p = _category_base(rng, dim, _n_cats(rng, compact), _metric(rng), 1)
    p["bar_labels"] = len(p["categories"]) <= 8 and rng.random() < 0.4
    p["edgecolor"] = rng.choice((None, None, "black", "white"))
    return p


def _build_barh(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=False)
    p = _category_base(rng, dim, _n_cats(rng, compact), _metric(rng), 1)
    if rng.random() < 0.5:  # ranked bar charts are the usual reason to go horizontal
        p["series"][0]["values"], p["categories"] = _sorted_pair(p["series"][0]["values"], p["categories"])
    p["xlabel"], p["ylabel"] = p["ylabel"], p["xlabel"]
    p["rotate"] = 0
    p["invert"] = rng.random() < 0.5
    p["bar_labels"] = len(p["categories"]) <= 8 and rng.random() < 0.4
    return p


def _sorted_pair(values: list, cats: list) -> tuple[list, list]:
    pairs = sorted(zip(values, cats), key=lambda t: t[0], reverse=True)
    return [v for v, _ in pairs], [c for _, c in pairs]


def _build_grouped_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    k = rng.randint(2, 3 if compact else 4)
    return _category_base(rng, dim, _n_cats(rng, compact, 8), _metric(rng), k)


def _build_stacked_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    k = rng.randint(2, 3 if compact else 4)
    # Stacks of negative segments are unreadable, hence non-negative metrics only.
    return _category_base(rng, dim, _n_cats(rng, compact, 10), _metric(rng, nonneg=True), k)


def _line_styles(rng: random.Random, series: list[dict], n_points: int) -> None:
    use_markers = n_points <= 24 and rng.random() < 0.7
    markers = rng.sample(MARKERS[:6], len(series))
    for i, s in enumerate(series):
        s["marker"] = markers[i] if use_markers else None
        s["linestyle"] = "-" if i == 0 or rng.random() < 0.5 else rng.choice(LINESTYLES[1:])


def _build_line(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=True)
    n = rng.randint(5, 8 if compact else 24)
    k = rng.randint(1, 3 if compact else 4)
    p = _category_base(rng, dim, n, _metric(rng), k)
    _line_styles(rng, p["series"], len(p["categories"]))
    p["linewidth"] = rng.choice((1.5, 2, 2, 2.5))
    return p


def _build_area(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=True)
    n = rng.randint(5, 8 if compact else 24)
    k = rng.randint(1, 2 if compact else 3)
    p = _category_base(rng, dim, n, _metric(rng, nonneg=True), k)
    p["stacked"] = k > 1 and rng.random() < 0.5
    p["alpha"] = rng.choice((0.3, 0.4, 0.5)) if not p["stacked"] else 0.8
    return p


def _build_errorbar(rng: random.Random, compact: bool) -> dict:
    xlabel, var, xs = rng.choice(_ERRORBAR_X)
    metric = rng.choice(_ERRORBAR_Y)
    dim = _Dim(xlabel, var, xs, True, True)
    k = rng.randint(1, 2 if compact else 3)
    n = rng.randint(4, min(len(xs), 6 if compact else 10))
    p = _category_base(rng, dim, n, metric, k)
    names = rng.choice([g for g in _ERRORBAR_GROUPS if len(g) >= k])[:k] if k > 1 else [metric.name]
    span = metric.hi - metric.lo
    for s, name in zip(p["series"], names):
        s["name"] = name
        s["errors"] = [_round(rng.uniform(0.03, 0.1) * span, metric.decimals) or 1 for _ in p["categories"]]
    noun = xlabel.split(" (")[0].lower()
    p["title"] = rng.choice(
        (f"{metric.name} vs. {noun}", f"{metric.name} by {noun} (mean ± SD)", f"Mean {metric.name.lower()} per {noun}")
    )
    p["xlabel"] = xlabel
    p["legend_title"] = None
    p["rotate"] = 0
    p["capsize"] = rng.choice((3, 4, 5))
    for s, marker in zip(p["series"], rng.sample(MARKERS[:6], k)):
        s["marker"] = marker
        s["linestyle"] = rng.choice(LINESTYLES)
    return p


def _build_scatter(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_SCATTER_DOMAINS)
    k = rng.randint(1, min(len(dom.groups), 2 if compact else 3))
    names = _window(rng, dom.groups, k, ordered=True) if k > 1 else ["Observations"]
    colors = _colors(rng, k)
    markers = ["o"] * k if rng.random() < 0.5 else rng.sample(MARKERS[:6], k)
    n = rng.randint(5, 15 if compact else 40)
    series = [
        _scatter_series(rng, dom, name, c, m, n, shift=i) for i, (name, c, m) in enumerate(zip(names, colors, markers))
    ]
    return {
        "title": dom.title,
        "xlabel": dom.xlabel,
        "ylabel": dom.ylabel,
        "series": series,
        "alpha": rng.choice((0.6, 0.7, 0.8, 1.0)),
        "grid": rng.random() < 0.5,
        "legend_loc": rng.choice(_LEGEND_LOCS),
        "figsize": _figsize(rng),
    }


def _scatter_series(
    rng: random.Random, dom: _ScatterDomain, name: str, color: str, marker: str, n: int, shift: int
) -> dict:
    (x0, x1), (y0, y1) = dom.xrange, dom.yrange
    xdec = 2 if x1 - x0 < 10 else 1
    ydec = 2 if y1 - y0 < 10 else 1
    offset = (shift * 0.12 - 0.1) * (y1 - y0)  # groups sit at slightly different levels
    xs, ys = [], []
    for _ in range(n):
        t = rng.random()
        trend = 0.5 + dom.slope * (t - 0.5) * 0.8
        y = y0 + trend * (y1 - y0) + offset + rng.gauss(0, 0.08 * (y1 - y0))
        xs.append(_round(x0 + t * (x1 - x0), xdec))
        ys.append(_round(_clamp(y, y0, y1), ydec))
    return {"name": name, "x": xs, "y": ys, "color": color, "marker": marker, "size": rng.choice((20, 30, 40, 60, 80))}


def _build_pie(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=False)
    labels = _window(rng, dim.values, rng.randint(3, 5 if compact else 8), ordered=False)
    metric = _metric(rng, nonneg=True, additive=True)
    decimals = rng.choice((0, 1))
    values = [_round(rng.uniform(5, 40), decimals) for _ in labels]
    title = rng.choice(_PIE_TITLES).format(m=metric.name, d=dim.label.lower(), y=rng.randint(2019, 2024))
    return {
        "title": title[0].upper() + title[1:],
        "labels": labels,
        "values": values,
        "colors": _colors(rng, len(labels)),
        "value_var": rng.choice(("sizes", "shares", "values")),
        "autopct": rng.random() < 0.7,
        "legend": rng.random() < 0.3,
        "startangle": rng.choice((90, 90, 140, 0)),
        "figsize": _figsize(rng, square=True),
    }


def _build_donut(rng: random.Random, compact: bool) -> dict:
    p = _build_pie(rng, compact)
    p["hole"] = rng.choice((0.3, 0.4, 0.5))
    return p


def _build_hist(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_DIST_DOMAINS)
    k = rng.randint(1, 2)
    names = _window(rng, dom.groups, k, ordered=False) if k > 1 else [dom.label.split(" (")[0]]
    n = rng.randint(20, 40 if compact else 60)
    colors = _colors(rng, k)
    series = [
        {"name": name, "values": _samples(rng, dom, n, i), "color": c} for i, (name, c) in enumerate(zip(names, colors))
    ]
    return {
        "title": f"Distribution of {dom.label.split(' (')[0].lower()}" if rng.random() < 0.5 else dom.title,
        "xlabel": dom.label,
        "ylabel": rng.choice((dom.count_label, "Frequency", "Count")),
        "series": series,
        "bins": rng.randint(6, 15),
        "alpha": 0.6 if k > 1 else rng.choice((0.7, 0.85, 1.0)),
        "edgecolor": rng.choice(("white", "black")),
        "grid": rng.random() < 0.4,
        "legend_loc": rng.choice(_LEGEND_LOCS),
        "figsize": _figsize(rng),
    }


def _samples(rng: random.Random, dom: _DistDomain, n: int, group: int) -> list:
    span = dom.hi - dom.lo
    centre = dom.lo + rng.uniform(0.3, 0.7) * span + group * 0.05 * span
    sd = rng.uniform(0.08, 0.16) * span
    return [_round(_clamp(rng.gauss(centre, sd), dom.lo, dom.hi), dom.decimals) for _ in range(n)]


def _build_box(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_DIST_DOMAINS)
    labels = _window(rng, dom.groups, rng.randint(3, min(len(dom.groups), 4 if compact else 6)), True)
    n = rng.randint(8, 15 if compact else 25)
    return {
        "title": dom.title,
        "xlabel": dom.groups_label if rng.random() < 0.7 else None,
        "ylabel": dom.label,
        "labels": labels,
        "data": [_samples(rng, dom, n, 0) for _ in labels],
        "colors": _colors(rng, len(labels)),
        "grid": rng.random() < 0.5,
        "rotate": _rotation(labels),
        "figsize": _figsize(rng),
    }


def _build_violin(rng: random.Random, compact: bool) -> dict:
    p = _build_box(rng, compact)
    p["show_medians"] = rng.random() < 0.7
    return p


def _build_heatmap(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_HEATMAP_DOMAINS)
    correlation = dom.get("correlation", False)
    rows = _window(rng, dom["rows"], rng.randint(3, 5 if compact else len(dom["rows"])), True)
    cols = rows if correlation else _window(rng, dom["cols"], rng.randint(3, 6 if compact else 10), True)
    matrix = (
        _correlation(rng, len(rows))
        if correlation
        else [[_round(rng.uniform(dom["lo"], dom["hi"]), dom["decimals"]) for _ in cols] for _ in rows]
    )
    cmap = rng.choice(dom["cmaps"])
    return {
        "title": dom["title"],
        "xlabel": dom["xlabel"] or None,
        "ylabel": dom["ylabel"] or None,
        "rows": list(rows),
        "cols": list(cols),
        "matrix": matrix,
        "cmap": cmap,
        "vmin": -1 if correlation else None,
        "vmax": 1 if correlation else None,
        "cbar_label": dom["cbar"],
        "decimals": dom["decimals"],
        "annotate": len(rows) * len(cols) <= 60 and rng.random() < 0.7,
        "annot_color": "white" if cmap in _DARK_CMAPS else "black",
        "rotate": _rotation(cols),
        "figsize": _figsize(rng),
    }


def _correlation(rng: random.Random, n: int) -> list[list[float]]:
    m = [[1.0] * n for _ in range(n)]
    for i, j in itertools.combinations(range(n), 2):
        m[i][j] = m[j][i] = round(rng.uniform(-0.8, 0.9), 2)
    return m


def _build_radar(rng: random.Random, compact: bool) -> dict:
    title, spokes, names = rng.choice(_RADAR_DOMAINS)
    labels = rng.sample(spokes, rng.randint(5, len(spokes)))
    k = rng.randint(1, 3)
    chosen = rng.sample(names, k)
    rmax, decimals = rng.choice(((10, 1), (100, 0), (5, 1)))
    colors = _colors(rng, k)
    marker = rng.choice(("o", None, "s"))
    series = [
        {
            "name": name,
            "color": c,
            "marker": marker,
            "linestyle": "-" if i == 0 else rng.choice(LINESTYLES),
            "values": [_round(rng.uniform(0.25, 0.95) * rmax, decimals) for _ in labels],
        }
        for i, (name, c) in enumerate(zip(chosen, colors))
    ]
    if k > 1 and rng.random() < 0.5:
        title = f"{title}: {' vs. '.join(chosen)}"
    return {
        "title": title,
        "labels": labels,
        "series": series,
        "rmax": rmax,
        "fill_alpha": rng.choice((0.1, 0.2, 0.25, 0.3)),
        "figsize": _figsize(rng, square=True),
    }


def _build_grid(family: str, rng: random.Random) -> dict:
    nrows, ncols = _GRID_SHAPES[family]
    kinds = rng.sample(_PANEL_FAMILIES, nrows * ncols)
    return {
        "suptitle": rng.choice(_SUPTITLES) if rng.random() < 0.7 else None,
        "figsize": [rng.choice((9, 10)), rng.choice((3.5, 4, 4.5, 5) if nrows == 1 else (5.5, 6))],
        "panels": [{"family": f, "params": _build(f, rng, compact=True)} for f in kinds],
    }


_BUILDERS: dict[str, Callable[[random.Random, bool], dict]] = {
    "bar": _build_bar,
    "barh": _build_barh,
    "grouped_bar": _build_grouped_bar,
    "stacked_bar": _build_stacked_bar,
    "line": _build_line,
    "area": _build_area,
    "errorbar": _build_errorbar,
    "scatter": _build_scatter,
    "pie": _build_pie,
    "donut": _build_donut,
    "hist": _build_hist,
    "box": _build_box,
    "violin": _build_violin,
    "heatmap": _build_heatmap,
    "radar": _build_radar,
}
