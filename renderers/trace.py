"""The trace: what a drawn figure holds, as plain JSON data for rewards and metrics.

Read from the figure after the final draw (renderers.execute.draw_figure), from the
artists themselves and from the records of renderers.instrument; the visible view comes
from renderers.visibility through instrument's hooks.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np

from renderers import instrument
from renderers.instrument import MAX_POINTS, RECORDS, final_colors, to_hex, type_call_records


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return float(f"{v:.6g}")


def _nums(values: Any) -> list[float | None]:
    try:
        arr = np.asarray(values, dtype=float).ravel()[:MAX_POINTS]
    except (TypeError, ValueError):
        return [_num(v) for v in list(values)[:MAX_POINTS]]
    return [_num(v) for v in arr]


def _text(s: Any) -> str:
    return "" if s is None else str(s)


def _layout(fig) -> list[list[int]]:
    return _layout_rows_of(fig.axes)


def _layout_rows_of(axes) -> list[list[int]]:
    rows = []
    for ax in axes:
        spec = ax.get_subplotspec()
        if spec is None:
            continue
        nrows, ncols = spec.get_gridspec().get_geometry()
        rows.append(
            [nrows, ncols, spec.rowspan.start, spec.rowspan.stop - 1, spec.colspan.start, spec.colspan.stop - 1]
        )
    return rows


def _major_tick_texts(fig) -> set[int]:
    """ids of the texts ChartMimic removes before capturing: x/y major tick labels and offsets."""
    ids: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.majorTicks:
                ids.add(id(tick.label1))
                ids.add(id(tick.label2))
            ids.add(id(axis.offsetText))
    return ids


def bar_extent(patch: Any, name: str) -> float:
    """A bar's x, y, width or height (Axes3D.bar's Patch3D keeps a Rectangle's attributes, not its getters)."""
    getter = getattr(patch, f"get_{name}", None)
    return getter() if getter is not None else getattr(patch, {"x": "_x0", "y": "_y0"}.get(name, f"_{name}"), 0.0)


def _series_of_axes(ax, helpers: frozenset[int] | set[int] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "projection": getattr(ax, "name", "rectilinear"),
        "title": _text(ax.get_title()),
        "title_left": _text(ax.get_title(loc="left")),
        "title_right": _text(ax.get_title(loc="right")),
        "xlabel": _text(ax.get_xlabel()),
        "ylabel": _text(ax.get_ylabel()),
        "xscale": ax.get_xscale(),
        "yscale": ax.get_yscale(),
        "xlim": _nums(ax.get_xlim()),
        "ylim": _nums(ax.get_ylim()),
    }
    if hasattr(ax, "get_zlabel"):
        out["zlabel"] = _text(ax.get_zlabel())
    legend = ax.get_legend()
    out["legend"] = [_text(t.get_text()) for t in legend.get_texts()] if legend else []
    out["xticklabels"] = [_text(t.get_text()) for t in ax.get_xticklabels()]
    out["yticklabels"] = [_text(t.get_text()) for t in ax.get_yticklabels()]
    out["lines"] = [
        {
            "label": _text(line.get_label()),
            "x": _nums(line.get_xdata(orig=False)),
            "y": _nums(line.get_ydata(orig=False)),
            "color": to_hex(line.get_color()),
            "marker": _text(line.get_marker()),
            "linestyle": _text(line.get_linestyle()),
            "helper": id(line) in helpers,  # drawn by matplotlib around the data, not data
        }
        for line in ax.get_lines()
    ]
    bars = []
    for container in ax.containers:
        if type(container).__name__ != "BarContainer":
            continue
        patches = list(container)
        bars.append(
            {
                "label": _text(container.get_label()),
                "orientation": getattr(container, "orientation", None) or "vertical",
                # read from the bars as drawn: `datavalues` is a plain attribute anyone can set
                "values": _nums(
                    [
                        bar_extent(p, "width")
                        if getattr(container, "orientation", None) == "horizontal"
                        else bar_extent(p, "height")
                        for p in patches
                    ]
                ),
                "x": _nums([bar_extent(p, "x") + bar_extent(p, "width") / 2 for p in patches]),
                "y": _nums([bar_extent(p, "y") + bar_extent(p, "height") / 2 for p in patches]),
                "colors": [to_hex(p.get_facecolor()) for p in patches[:MAX_POINTS]],
            }
        )
    out["bars"] = bars
    wedges = [p for p in ax.patches if isinstance(p, mpatches.Wedge)]
    out["wedges"] = [
        {
            "label": _text(w.get_label()),
            "fraction": _num((w.theta2 - w.theta1) / 360.0),
            "color": to_hex(w.get_facecolor()),
        }
        for w in wedges
    ]
    collections = []
    for coll in ax.collections:
        entry: dict[str, Any] = {"type": type(coll).__name__, "label": _text(coll.get_label())}
        offsets = coll.get_offsets()
        if len(offsets):
            arr = np.asarray(offsets, dtype=float)[:MAX_POINTS]
            entry["x"] = _nums(arr[:, 0])
            entry["y"] = _nums(arr[:, 1])
        fc = coll.get_facecolors()
        entry["colors"] = [to_hex(list(c)) for c in fc[:20]]
        collections.append(entry)
    out["collections"] = collections
    images = []
    for im in ax.images:
        arr = np.asarray(im.get_array(), dtype=float)
        images.append(
            {
                "shape": list(arr.shape),
                "min": _num(np.nanmin(arr)) if arr.size else None,
                "max": _num(np.nanmax(arr)) if arr.size else None,
                "cmap": im.get_cmap().name,
            }
        )
    out["images"] = images
    out["texts"] = [_text(t.get_text()) for t in ax.texts]
    return out


def collect_trace(
    fig,
    texts: list[tuple[str, Any]],
    types: dict[str, int] | None = None,
    colors: list[list[str]] | None = None,
    n_figures: int | None = None,
) -> dict[str, Any]:
    """Everything the rewards and the benchmark metrics need, as plain JSON data.

    `texts` are the strings drawn during the final draw, each with its Text artist and
    (the Text being drawn, whether that line shows on the canvas);
    `types` and `colors` default to this process's own records (in-process rendering).
    """
    tick_ids = _major_tick_texts(fig)
    texts = [t if len(t) > 2 else (t[0], t[1], (None, False)) for t in texts]
    drawn, ticks = [], []
    for s, artist, _ in texts:
        (ticks if id(artist) in tick_ids else drawn).append(_text(s))
    width, height = fig.get_size_inches()
    suptitle = getattr(fig, "_suptitle", None)
    calls = RECORDS.checked_calls if RECORDS.checked_calls is not None else type_call_records()
    helpers = instrument._visibility.helper_lines(fig, calls)
    visible = instrument._visibility.visible_entry(fig, texts, tick_ids)
    RECORDS.seen = RECORDS.checked_calls = RECORDS.checked_colors = None  # one trace per draw
    return {
        "types": dict(RECORDS.type_counts) if types is None else types,
        "colors": final_colors() if colors is None else colors,
        "texts": drawn,
        "tick_labels": ticks,
        "layout": _layout(fig),
        "axes": [_series_of_axes(ax, helpers) for ax in fig.axes],
        "suptitle": _text(suptitle.get_text()) if suptitle is not None else "",
        "figure": {
            "width_in": _num(width),
            "height_in": _num(height),
            "n_axes": len(fig.axes),
            "n_figures": len(plt.get_fignums()) if n_figures is None else n_figures,
        },
        "visible": visible,
    }
