"""Which recorded chart elements show in the saved image (trace["visible"]).

Training rewards pay only for what a reader of the PNG can see; docs/rewards.md states
the rule. The official trace keys keep ChartMimic's meaning; this module, run on the
drawing side right after the final draw (at the saved size, with the renderer that drew
the figure), says which of their elements are visible.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import matplotlib.colors as mcolors
import matplotlib.patches as mpatches
import numpy as np
from matplotlib.collections import Collection, PathCollection
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.text import Text

from renderers.instrument import (
    MAX_POINTS,
    RECORDS,
    _backs,
    _count_types,
    _reread,
    _verify_colors,
    color_records,
    data_artists,
    drawn_artists,
    to_hex,
    type_call_records,
)
from renderers.trace import _layout_rows_of, _text, bar_extent

MIN_ALPHA = 1 / 255  # fainter than one 8-bit step never reaches the PNG
MIN_PIXELS = 0.5  # what shows must span this much of the canvas in width and in height
# matplotlib raises a font size under 1 pt (size 0 included) to 1 pt, which Agg still
# draws as a smudge about a pixel tall: a font under 3 pixels is no text to a reader.
MIN_FONT_PIXELS = 3.0
_NO_LINE = ("None", "none", "", " ")


def _alpha_ok(color: Any, alpha: Any = None) -> bool:
    try:
        return mcolors.to_rgba(color, alpha)[3] >= MIN_ALPHA
    except (ValueError, TypeError):
        return False


def _fits(x0, y0, x1, y1, pad: float, canvas: tuple[float, float], clip: Any) -> Any:
    """Whether boxes (arrays or numbers, pixels) padded by `pad` cover enough of the canvas
    and, when clipped, of the clip box."""
    x0, y0 = np.maximum(np.asarray(x0, float) - pad, 0), np.maximum(np.asarray(y0, float) - pad, 0)
    x1, y1 = np.minimum(np.asarray(x1, float) + pad, canvas[0]), np.minimum(np.asarray(y1, float) + pad, canvas[1])
    if clip is not None:
        x0, y0 = np.maximum(x0, clip[0]), np.maximum(y0, clip[1])
        x1, y1 = np.minimum(x1, clip[2]), np.minimum(y1, clip[3])
    with np.errstate(invalid="ignore"):
        return (x1 - x0 >= MIN_PIXELS) & (y1 - y0 >= MIN_PIXELS)


def text_region(renderer, gc, x, y, s, prop, angle, ismath) -> tuple[int, int, int, int] | None:
    """Where one line of text about to be drawn may change pixels, as (row0, row1, col0,
    col1) of the renderer's buffer; None when it cannot show: blank, too small a font,
    transparent, or its box off the canvas or outside its clip rectangle."""
    # Agg draws any font at least a pixel or so tall, whatever its size: judge the size itself.
    if (
        not str(s).strip()
        or renderer.points_to_pixels(prop.get_size_in_points()) < MIN_FONT_PIXELS
        or gc.get_rgb()[3] < MIN_ALPHA
    ):
        return None
    w, h, d = renderer.get_text_width_height_descent(s, prop, ismath)
    y = renderer.height - y  # Agg is handed y from the top
    c, n = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    xs = [x + u * c - v * n for u, v in ((0, -d), (w, -d), (w, h - d), (0, h - d))]
    ys = [y + u * n + v * c for u, v in ((0, -d), (w, -d), (w, h - d), (0, h - d))]
    clip = gc.get_clip_rectangle()
    canvas = (renderer.width, renderer.height)
    box = (min(xs), min(ys), max(xs), max(ys))
    if not _fits(*box, 0, canvas, None if clip is None else clip.extents):
        return None
    # a margin for Agg's rounding and glyph offsets; rows count from the top
    height = int(renderer.height)
    r0, r1 = max(0, math.floor(height - box[3]) - 2), min(height, math.ceil(height - box[1]) + 2)
    c0, c1 = max(0, math.floor(box[0]) - 2), min(int(renderer.width), math.ceil(box[2]) + 2)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


def pixels(renderer, region: tuple[int, int, int, int] | None) -> np.ndarray | None:
    """A copy of the renderer's pixels in `region`."""
    if region is None:
        return None
    r0, r1, c0, c1 = region
    return np.asarray(renderer.buffer_rgba())[r0:r1, c0:c1].copy()


def changed(renderer, region: tuple[int, int, int, int] | None, before: np.ndarray | None) -> bool:
    """Whether drawing changed a pixel in `region`: text in the colour of what is behind
    it (white on white), or drawn where it is clipped away, changes none."""
    if region is None or before is None:
        return False
    r0, r1, c0, c1 = region
    return bool((np.asarray(renderer.buffer_rgba())[r0:r1, c0:c1] != before).any())


def _shown(artist: Any) -> bool:
    """Drawn at all: it, its axes and its figure are visible and not animated."""
    for a in (artist, getattr(artist, "axes", None), getattr(artist, "figure", None)):
        if a is not None and (not a.get_visible() or a.get_animated()):
            return False
    return True


def _artist_on_canvas(a: Any, renderer, canvas: tuple[float, float]) -> bool:
    clip = a.get_clip_box().extents if a.get_clip_on() and a.get_clip_box() is not None else None
    px = renderer.points_to_pixels
    if isinstance(a, Line2D):
        xy = np.asarray(a.get_transform().transform(np.asarray(a.get_xydata(), float)[:100_000]), float)
        xy = xy[np.isfinite(xy).all(axis=1)] if xy.ndim == 2 else np.zeros((0, 2))
        lw, ms = px(a.get_linewidth()), px(a.get_markersize())
        stroke = (
            len(xy) >= 2 and lw > 0 and a.get_linestyle() not in _NO_LINE and _alpha_ok(a.get_color(), a.get_alpha())
        )
        mark = (
            len(xy) >= 1
            and ms > 0
            and a.get_marker() not in (None, *_NO_LINE)
            and (
                _alpha_ok(a.get_markerfacecolor(), a.get_alpha())
                or (a.get_markeredgewidth() > 0 and _alpha_ok(a.get_markeredgecolor(), a.get_alpha()))
            )
        )
        if stroke and _fits(*xy.min(0), *xy.max(0), lw / 2, canvas, clip):
            return True  # a polyline crosses the canvas when its extent does
        return bool(mark and _fits(xy[:, 0], xy[:, 1], xy[:, 0], xy[:, 1], ms / 2, canvas, clip).any())
    if isinstance(a, mpatches.Patch):
        face = a.get_fill() and _alpha_ok(a.get_facecolor())
        lw = px(a.get_linewidth())
        edge = lw > 0 and a.get_linestyle() not in _NO_LINE and _alpha_ok(a.get_edgecolor())
        box = a.get_window_extent(renderer).extents
        return bool((face and _fits(*box, 0, canvas, clip)) or (edge and _fits(*box, lw / 2, canvas, clip)))
    if isinstance(a, Collection):
        fc, ec = np.asarray(a.get_facecolors(), float), np.asarray(a.get_edgecolors(), float)
        lw = px(max(np.asarray(a.get_linewidths(), float).max(initial=0), 0))
        face = fc.ndim == 2 and len(fc) and (fc[:, 3] >= MIN_ALPHA).any()
        edge = lw > 0 and ec.ndim == 2 and len(ec) and (ec[:, 3] >= MIN_ALPHA).any()
        if not (face or edge):
            return False
        sizes = np.asarray(a.get_sizes(), float) if isinstance(a, PathCollection) else np.zeros(0)
        if isinstance(a, PathCollection) and len(a.get_offsets()):
            if not len(sizes) or not (sizes > 0).any():
                return False  # size-0 markers
            xy = np.asarray(a.get_offset_transform().transform(np.asarray(a.get_offsets(), float)[:100_000]))
            xy = xy[np.isfinite(xy).all(axis=1)]
            pad = px(math.sqrt(max(sizes.max(), 0))) / 2 + (lw / 2 if edge else 0)
            return bool(len(xy) and _fits(xy[:, 0], xy[:, 1], xy[:, 0], xy[:, 1], pad, canvas, clip).any())
        box = _collection_box(a, renderer)
        return bool((face and _fits(*box, 0, canvas, clip)) or (edge and _fits(*box, lw / 2, canvas, clip)))
    if isinstance(a, AxesImage):
        return bool(
            _alpha_ok("k", a.get_alpha())
            and np.asarray(a.get_array()).size
            and _fits(*a.get_window_extent(renderer).extents, 0, canvas, clip)
        )
    if isinstance(a, Text):
        return False  # texts are judged line by line as they are drawn
    return bool(_fits(*a.get_window_extent(renderer).extents, 0, canvas, clip))


def _collection_box(a: Any, renderer) -> np.ndarray:
    box = np.asarray(a.get_window_extent(renderer).extents, float)
    if np.isfinite(box).all():
        return box
    # Line collections report no extent: take their vertices (a bounded number of them).
    verts = [p.vertices for p in a.get_paths()[:10_000]]
    xy = np.concatenate(verts)[:100_000] if verts else np.zeros((0, 2))
    xy = np.asarray(a.get_transform().transform(xy), float)
    xy = xy[np.isfinite(xy).all(axis=1)]
    return np.concatenate([xy.min(0), xy.max(0)]) if len(xy) else np.full(4, np.nan)


def visible_artists(placed: dict[int, Any], renderer) -> set[int]:
    """ids of the data artists (instrument.data_artists) the figure just drawn shows."""
    canvas = (float(renderer.width), float(renderer.height))
    seen: set[int] = set()
    for key, a in placed.items():
        try:
            if _shown(a) and _artist_on_canvas(a, renderer, canvas):
                seen.add(key)
        except Exception:  # noqa: BLE001 - an artist we cannot measure earns nothing
            pass
    return seen


def _visible_color_values(rule: str, key_color: str, artist: Any) -> list[str | None]:
    """_reread, but without the colours that are fully transparent where they are used."""
    if rule in ("facecolor", "original_facecolor"):
        ok = artist.get_fill() and _alpha_ok(artist.get_facecolor())
        return _reread(rule, key_color, artist) if ok else []
    if rule == "patch_facecolors":
        return [to_hex(p.get_facecolor()) for p in artist if p.get_fill() and _alpha_ok(p.get_facecolor())]
    if rule in ("first_facecolor", "all_facecolors", "all_edgecolors"):
        get = (
            artist.get_edgecolors
            if rule == "all_edgecolors"
            else getattr(artist, "get_facecolors", artist.get_facecolor)
        )
        rows = np.atleast_2d(np.asarray(get(), float))
        rows = rows[:1] if rule == "first_facecolor" else rows
        return [to_hex(list(c)) for c in rows if len(c) == 4 and c[3] >= MIN_ALPHA]
    return _reread(rule, key_color, artist)


def _visible_colors(records: list, placed: dict[int, Any], shown: dict[int, Any], calls: list) -> list[list[str]]:
    """Colours as final_colors reads them, from visible artists only. A colour record keeps
    the last artist drawn in that colour (ChartMimic's quirk), which may be a bar of value
    0: then the other artists the same call drew, in the same final colour, stand for it."""
    siblings: dict[int, list[Any]] = {}
    for _, artists in calls:
        for a in artists:
            siblings.setdefault(id(a), artists)
    seen: dict[tuple[str, str], None] = {}
    for group, key_color, rule, artist in _verify_colors(records, placed):
        try:
            if rule == "patch_facecolors":
                colors = _visible_color_values(rule, key_color, [p for p in artist if id(p) in shown])
            elif id(artist) in shown:
                colors = _visible_color_values(rule, key_color, artist)
            elif rule in ("facecolor", "original_facecolor", "color"):
                final = set(_reread(rule, key_color, artist))
                colors = [
                    c
                    for other in siblings.get(id(artist), [])
                    if id(other) in shown and _backs(group, other) and type(other) is type(artist)
                    for c in _visible_color_values(rule, key_color, other)
                    if c in final
                ]
            else:
                colors = []
        except Exception:  # noqa: BLE001 - an artist the script broke after drawing it
            continue
        for color in colors:
            if color is not None:
                seen.setdefault((group, color), None)
    return [[g, c] for g, c in seen]


def helper_lines(fig, calls: list) -> set[int]:
    """ids of the lines matplotlib adds around the data (error-bar caps, stem baselines,
    box-plot parts, ...): they are labelled '_nolegend_' or come from boxplot, except an
    error bar's or stem's own data line."""
    data, helpers = set(), {id(a) for kind, artists in calls if kind == "boxplot" for a in artists}
    for ax in fig.axes:
        for c in ax.containers:
            line = (
                getattr(c, "markerline", None)
                if hasattr(c, "markerline")
                else (c.lines[0] if type(c).__name__ == "ErrorbarContainer" and c.lines else None)
            )
            if line is not None:
                data.add(id(line))
        helpers |= {id(line) for line in ax.lines if _text(line.get_label()) == "_nolegend_"}
    return helpers - data


def visible_entry(fig, texts: list, tick_ids: set[int]) -> dict[str, Any]:
    """trace["visible"]: what the official keys hold, cut to what the image shows."""
    owner, fig_seen = RECORDS.seen if RECORDS.seen is not None else (None, set())
    axes_ids = {id(ax) for ax in fig.axes}
    # An axes counts (squarify's type, the layout) only when something in it shows: below.
    shown_ids = (fig_seen - axes_ids) if owner is fig else set()
    placed = data_artists(fig)
    seen_texts = {id(info[0]) for _, _, info in texts if info[0] is not None and info[1]}
    calls = RECORDS.checked_calls if RECORDS.checked_calls is not None else type_call_records()
    colors = RECORDS.checked_colors if RECORDS.checked_colors is not None else color_records()
    axes_flags, rows, n_shown = [], [], 0
    for ax in fig.axes:
        tree = drawn_artists(ax)
        frame = (
            ax.axison
            and ax.get_frame_on()
            and any(
                sp.get_visible() and sp.get_linewidth() > 0 and _alpha_ok(sp.get_edgecolor())
                for sp in ax.spines.values()
            )
        )
        own = any(k in tree for k in shown_ids) or any(k in tree for k in seen_texts)
        ax_on = (
            _shown(ax) and bool(_fits(*ax.bbox.extents, 0, (fig.bbox.width, fig.bbox.height), None))
            if owner is fig
            else False
        )
        flags = _axes_flags(ax, shown_ids, seen_texts)
        flags["shown"] = bool(ax_on and (frame or own))
        n_shown += flags["shown"]
        axes_flags.append(flags)
        if flags["shown"] and id(ax) in fig_seen:
            shown_ids = shown_ids | {id(ax)}
        if flags["shown"] and ax.get_subplotspec() is not None:
            rows.extend(_layout_rows_of([ax]))
    suptitle = getattr(fig, "_suptitle", None)
    shown = {k: a for k, a in placed.items() if k in shown_ids}
    return {
        "texts": [_text(t[0]) for t in texts if id(t[1]) not in tick_ids and len(t) > 2 and t[2][1]],
        "types": _count_types(calls, shown),
        "colors": _visible_colors(colors, placed, shown, calls),
        "layout": rows,
        "n_axes": n_shown,
        "suptitle": suptitle is not None and id(suptitle) in seen_texts,
        "axes": axes_flags,
    }


def _axes_flags(ax, shown_ids: set[int], seen_texts: set[int]) -> dict[str, Any]:
    legend = ax.get_legend()
    flags: dict[str, Any] = {
        name: id(t) in seen_texts
        for name, t in (
            ("title", ax.title),
            ("title_left", ax._left_title),
            ("title_right", ax._right_title),
            ("xlabel", ax.xaxis.label),
            ("ylabel", ax.yaxis.label),
        )
    }
    if hasattr(ax, "zaxis"):
        flags["zlabel"] = id(ax.zaxis.label) in seen_texts
    flags["legend"] = [id(t) in seen_texts for t in legend.get_texts()] if legend else []
    flags["lines"] = [id(line) in shown_ids for line in ax.get_lines()]
    bars = []
    for c in ax.containers:
        if type(c).__name__ == "BarContainer":
            horizontal = getattr(c, "orientation", None) == "horizontal"
            # 1: a bar of value 0, which is drawn but has no size; it still reads as a 0
            bars.append(
                [
                    2
                    if id(p) in shown_ids
                    else int(bar_extent(p, "width" if horizontal else "height") == 0 and _shown(p))
                    for p in list(c)[:MAX_POINTS]
                ]
            )
    flags["bars"] = bars
    flags["wedges"] = [id(p) in shown_ids for p in ax.patches if isinstance(p, mpatches.Wedge)]
    flags["collections"] = [id(c) in shown_ids for c in ax.collections]
    flags["images"] = [id(im) in shown_ids for im in ax.images]
    return flags


from renderers import instrument as _instrument  # noqa: E402 - registered once this module is complete

_instrument.use_visibility(sys.modules[__name__])
