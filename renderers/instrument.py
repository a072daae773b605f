"""Recording what a chart script draws, for ChartMimic's metrics and MSRL's rewards.

ChartMimic measures a script by running it four times, each time with a different
set of monkeypatches (chart-type counting, colour logging, text capture at PDF save,
gridspec layout). We install equivalent patches once, in the renderer's warm server,
and read everything in a single execution. Two patch layers are kept apart on purpose:
the type layer and the colour layer each have their own "already inside a patched
call" flag, exactly as the original's separate processes did, so a call nested inside
another patched call is skipped by each layer under that layer's own rules.

Every child forked from the server starts with empty records, because the server
itself never runs user code after `reset()`.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.cbook as cbook  # noqa: E402
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.patches as mpatches  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.axes._base import _process_plot_var_args  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.collections import Collection, LineCollection, PathCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage, NonUniformImage  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Circle, Ellipse  # noqa: E402
from matplotlib.projections.polar import PolarAxes  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from mpl_toolkits.mplot3d import Axes3D  # noqa: E402

MAX_POINTS = 2000  # per data series kept in the trace; enough for every reward, small as JSON


class _Records:
    """Mutable state the patches write into (one per process)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.type_counts: dict[str, int] = {}
        # [kind, what the call returned] per counted call: the drawing side keeps a call only
        # when something it returned is really in the figure (see verified_type_counts).
        self.type_calls: list[list[Any]] = []
        self.type_busy = False
        # (group, colour at draw time) -> (group, re-read rule, artist); the last artist
        # drawn with a given colour wins, as in the original's dict.
        self.color_objects: dict[tuple[str, str], tuple[str, str, Any]] = {}
        self.color_busy = False
        self.capturing_text = False
        # (string, mtext, (Text being drawn, shows on the canvas)) per drawn line of text
        self.drawn_texts: list[tuple[str, Any, Any]] = []
        self.current_text: Any = None
        # Set by the final draw and the drawing side's checks; read once by collect_trace.
        self.seen: tuple[Any, set[int]] | None = None
        self.checked_calls: list | None = None
        self.checked_colors: list | None = None


RECORDS = _Records()
_installed = False


# --------------------------------------------------------------------------- colours


def to_hex(color: Any) -> str | None:
    """ChartMimic's colour normalisation: '#RRGGBB' upper case (an 8-digit hex string keeps alpha)."""
    try:
        if isinstance(color, str):
            if color.startswith("#") and len(color) in (7, 9):
                return color.upper()
            return mcolors.to_hex(mcolors.to_rgba(color)).upper()
        if isinstance(color, (list, tuple, np.ndarray)) and len(color) in (3, 4):
            return mcolors.to_hex(color).upper()
    except (ValueError, TypeError):
        return None
    return None


def _cmap_name(kwargs: dict) -> str | None:
    cmap = kwargs.get("cmap")
    if cmap is None:
        return None
    return cmap if isinstance(cmap, str) else getattr(cmap, "name", str(cmap))


def _remember(group: str, color: str | None, rule: str, artist: Any) -> None:
    if color is not None:
        RECORDS.color_objects[(group, color)] = (group, rule, artist)


def _first(colors: Any) -> Any:
    return colors[0] if len(colors) else None


def _remember_all_keyed_last(group: str, colors: Any, rule: str, artist: Any) -> None:
    """Multi-colour artists are stored once, under their last colour (the original's quirk)."""
    colors = list(colors)
    if colors:
        _remember(group, to_hex(list(colors[-1])), rule, artist)


def _log_colors(kind: str, args: tuple, kwargs: dict, result: Any) -> None:
    """What the colour layer records right after a patched call returns."""
    first = args[0] if args else None
    if kind == "line":  # _process_plot_var_args._make_line -> (Line2D, kw)
        _remember("line", to_hex(result[1].get("color")), "color", result[0])
    elif kind in ("axhline", "axvline"):
        _remember(kind, to_hex(result.get_color()), "color", result)
    elif kind == "fill_between":
        fc = result.get_facecolors()
        if len(fc):
            _remember(kind, to_hex(list(fc[0])), "first_facecolor", result)
    elif kind == "bar":
        for patch in result:
            _remember(kind, to_hex(list(patch._original_facecolor)), "original_facecolor", patch)
    elif kind == "scatter":
        group = "scatter_polar" if type(first) is PolarAxes else "scatter"
        name = _cmap_name(kwargs)
        if name is not None:
            _remember(group, name, "fixed", result)
        elif len(result.get_facecolor()):
            _remember(group, to_hex(list(result.get_facecolor()[0])), "first_facecolor", result)
    elif kind in ("pie",):
        for wedge in result[0]:
            _remember(kind, to_hex(wedge.get_facecolor()), "facecolor", wedge)
    elif kind in ("axvspan", "axhspan"):
        _remember(kind, to_hex(result.get_facecolor()), "facecolor", result)
    elif kind in ("hlines", "vlines"):
        _remember_all_keyed_last(kind, result.get_edgecolors(), "all_edgecolors", result)
    elif kind == "boxplot":
        for box in result["boxes"]:
            if type(box) is mpatches.PathPatch:
                _remember(kind, to_hex(list(box.get_facecolor())), "facecolor", box)
    elif kind == "violinplot":
        for body in result["bodies"]:
            _remember(kind, to_hex(list(body.get_facecolor()[0])), "first_facecolor", body)
    elif kind == "hist":
        patches = result[2]
        groups = patches if isinstance(patches, cbook.silent_list) else [patches]
        for container in groups:
            for patch in container:
                _remember(kind, to_hex(list(patch.get_facecolor())), "facecolor", patch)
    elif kind in ("quiver", "broken_barh", "3d.add_collection3d", "draw_networkx_nodes"):
        _remember_all_keyed_last(kind, result.get_facecolors(), "all_facecolors", result)
    elif kind == "plot_polar":
        for line in result:
            _remember(kind, to_hex(line.get_color()), "color", line)
    elif kind == "squarify":
        for container in result.containers:
            for patch in container:
                _remember(kind, to_hex(list(patch.get_facecolor())), "facecolor", patch)
    elif kind in ("imshow", "pcolor", "contour", "contourf", "tripcolor"):
        _remember(kind, result.get_cmap().name, "cmap", result)
    elif kind == "fill":
        for patch in result:
            _remember(kind, to_hex(list(patch.get_facecolor())), "facecolor", patch)
    elif kind == "NonUniformImage" and type(first) is NonUniformImage:
        _remember(kind, first.get_cmap().name, "cmap", first)
    elif kind == "Ellipse" and type(first) in (Ellipse, Circle):
        # Ellipse and Circle share one group: both were logged as patches.py/__init__.
        _remember(kind, to_hex(first.get_facecolor()), "facecolor", first)
    elif kind == "VennDiagram" and type(first).__name__ == "VennDiagram":
        patches = [p for p in first.patches if p is not None]
        _remember_all_keyed_last(kind, [p.get_facecolor() for p in patches], "patch_facecolors", patches)
    elif kind == "3d.scatter":
        name = _cmap_name(kwargs)
        if name is not None:
            _remember(kind, name, "fixed", result)
        else:
            _remember_all_keyed_last(kind, result.get_facecolors(), "all_facecolors", result)
    elif kind == "3d.plot":
        for line in result:
            _remember(kind, to_hex(line.get_color()), "color", line)
    elif kind == "3d.plot_surface":
        name = _cmap_name(kwargs)
        if name is not None:
            _remember(kind, name, "fixed", result)
        else:
            fc = result.get_facecolors()
            if len(fc):
                _remember(kind, to_hex(list(fc[0])), "first_facecolor", result)
    elif kind == "3d.bar3d":
        fc = result.get_facecolors()
        if len(fc):
            _remember(kind, to_hex(list(fc[0])), "first_facecolor", result)
    elif kind == "3d.bar":
        for patch in result:
            _remember(kind, to_hex(patch.get_facecolor()), "facecolor", patch)
    elif kind == "draw_networkx_labels":
        for text in result.values():
            _remember(kind, to_hex(text.get_color()), "color", text)
    elif kind == "draw_networkx_edges":
        if isinstance(result, list):
            _remember_all_keyed_last(kind, [p.get_facecolor() for p in result], "patch_facecolors", list(result))
        else:
            _remember_all_keyed_last(kind, result.get_edgecolors(), "all_edgecolors", result)


def _reread(rule: str, key_color: str, artist: Any) -> list[str | None]:
    """Colours are read again at the end of the script, so later set_color calls count."""
    if rule == "fixed":
        return [key_color]
    if rule == "cmap":
        return [artist.get_cmap().name]
    if rule == "color":
        return [to_hex(artist.get_color())]
    if rule == "facecolor":
        return [to_hex(list(artist.get_facecolor()))]
    if rule == "original_facecolor":
        return [to_hex(list(artist._original_facecolor))]
    if rule == "first_facecolor":
        fc = artist.get_facecolor() if not hasattr(artist, "get_facecolors") else artist.get_facecolors()
        return [to_hex(list(fc[0]))] if len(fc) else []
    if rule == "all_facecolors":
        return [to_hex(list(c)) for c in artist.get_facecolors()]
    if rule == "all_edgecolors":
        return [to_hex(list(c)) for c in artist.get_edgecolors()]
    if rule == "patch_facecolors":
        return [to_hex(p.get_facecolor()) for p in artist]
    raise ValueError(rule)


COLOR_RULES = frozenset(
    {
        "fixed",
        "cmap",
        "color",
        "facecolor",
        "original_facecolor",
        "first_facecolor",
        "all_facecolors",
        "all_edgecolors",
        "patch_facecolors",
    }
)


def color_records() -> list[tuple[str, str, str, Any]]:
    """(group, colour when drawn, re-read rule, artist) in the order they were logged."""
    return [(group, key_color, rule, artist) for (_, key_color), (group, rule, artist) in RECORDS.color_objects.items()]


def final_colors(records: list[tuple[str, str, str, Any]] | None = None) -> list[list[str]]:
    """[[group, colour], ...] read at the end, duplicates removed, first-seen order kept."""
    seen: dict[tuple[str, str], None] = {}
    for group, key_color, rule, artist in color_records() if records is None else records:
        try:
            colors = _reread(rule, key_color, artist)
        except Exception:  # an artist the script broke after drawing it
            continue
        for color in colors:
            if color is not None:
                seen.setdefault((group, color), None)
    return [[g, c] for g, c in seen]


# --------------------------------------------------------------------------- patches


def _type_layer(func, kind: str):
    def counted(*args, **kwargs):
        if RECORDS.type_busy:
            return func(*args, **kwargs)
        RECORDS.type_busy = True
        name = kind
        if kind == "plot" and args and type(args[0]) is PolarAxes:
            name = "plot_polar"
        RECORDS.type_counts[name] = RECORDS.type_counts.get(name, 0) + 1
        call = [name, None]
        RECORDS.type_calls.append(call)
        result = func(*args, **kwargs)
        call[1] = args[0] if result is None and args else result  # __init__ patches: the artist
        # Deliberately not in a `finally`: ChartMimic's flag stays set after an exception
        # inside a counted call, and scores only match if ours does too.
        RECORDS.type_busy = False
        return result

    counted.__wrapped__ = func
    counted.__name__ = getattr(func, "__name__", kind)
    counted.__doc__ = getattr(func, "__doc__", None)
    return counted


def _color_layer(func, kind: str):
    def logged(*args, **kwargs):
        if RECORDS.color_busy:
            return func(*args, **kwargs)
        RECORDS.color_busy = True
        result = func(*args, **kwargs)
        try:
            _log_colors(kind, args, kwargs, result)
        except Exception:  # logging must never break the user's chart
            pass
        RECORDS.color_busy = False
        return result

    logged.__wrapped__ = func
    logged.__name__ = getattr(func, "__name__", kind)
    logged.__doc__ = getattr(func, "__doc__", None)
    return logged


def _patch(owner: Any, attr: str, layer, kind: str) -> None:
    setattr(owner, attr, layer(getattr(owner, attr), kind))


# (owner, attribute, kind) for ChartMimic's chart-type evaluator
_AXES_TYPE_METHODS = (
    "bar barh plot axhline axvline axvspan axhspan hlines vlines errorbar boxplot violinplot "
    "violin hist fill_between fill_betweenx scatter quiver pie fill imshow pcolor contour "
    "contourf broken_barh tripcolor"
).split()
_AXES3D_TYPE_METHODS = "scatter plot plot_surface bar3d bar add_collection3d".split()
_AXES_COLOR_METHODS = (
    "bar scatter axhline axvline pie axvspan axhspan hlines vlines boxplot violinplot hist "
    "quiver imshow pcolor contour contourf fill broken_barh tripcolor"
).split()


def _optional_modules():
    mods = {}
    try:
        import squarify

        mods["squarify"] = squarify
    except ImportError:
        pass
    try:
        import networkx as nx
        import networkx.drawing.nx_pylab as nx_pylab

        mods["nx"] = nx
        mods["nx_pylab"] = nx_pylab
    except ImportError:
        pass
    try:
        from matplotlib_venn._common import VennDiagram

        mods["VennDiagram"] = VennDiagram
    except ImportError:
        pass
    return mods


# renderers.visibility builds on this module's records and judges what the final draw shows;
# it registers itself here when imported, and the hooks below call back into it.
_visibility: Any = None


def use_visibility(module: Any) -> None:
    global _visibility
    _visibility = module


def install() -> None:
    """Install both layers and the text capture. Idempotent; call before any user code."""
    global _installed
    if _installed:
        return
    if _visibility is None:
        raise RuntimeError("import renderers.visibility before instrument.install(): the trace needs it")
    _installed = True
    visibility = _visibility

    mods = _optional_modules()

    for name in _AXES_TYPE_METHODS:
        _patch(Axes, name, _type_layer, name)
    for name in _AXES3D_TYPE_METHODS:
        _patch(Axes3D, name, _type_layer, "3d." + name)
    if "fill_between" in Axes3D.__dict__:
        # matplotlib >= 3.10 gives 3D axes their own fill_between; on 3.8 (the benchmark's
        # version) the 2D method ran and was counted, so count the override the same way.
        _patch(Axes3D, "fill_between", _type_layer, "fill_between")
    _patch(NonUniformImage, "__init__", _type_layer, "NonUniformImage")
    _patch(Ellipse, "__init__", _type_layer, "Ellipse")
    _patch(Circle, "__init__", _type_layer, "Ellipse")
    if "VennDiagram" in mods:
        _patch(mods["VennDiagram"], "__init__", _type_layer, "VennDiagram")
    if "squarify" in mods:
        _patch(mods["squarify"], "plot", _type_layer, "squarify.plot")
    for mod in ("nx_pylab", "nx"):
        if mod in mods:
            for fn in ("draw_networkx_nodes", "draw_networkx_edges", "draw_networkx_labels"):
                _patch(mods[mod], fn, _type_layer, fn)

    _patch(_process_plot_var_args, "_make_line", _color_layer, "line")
    _patch(Axes, "_fill_between_x_or_y", _color_layer, "fill_between")
    for name in _AXES_COLOR_METHODS:
        _patch(Axes, name, _color_layer, name)
    # Polar plot is a colour group of its own; cartesian lines come through _make_line.
    PolarAxes.plot = _color_layer(Axes.plot, "plot_polar")
    for name in _AXES3D_TYPE_METHODS:
        _patch(Axes3D, name, _color_layer, "3d." + name)
    _patch(NonUniformImage, "__init__", _color_layer, "NonUniformImage")
    _patch(Ellipse, "__init__", _color_layer, "Ellipse")
    _patch(Circle, "__init__", _color_layer, "Ellipse")
    if "VennDiagram" in mods:
        _patch(mods["VennDiagram"], "__init__", _color_layer, "VennDiagram")
    if "squarify" in mods:
        _patch(mods["squarify"], "plot", _color_layer, "squarify")
    for mod in ("nx_pylab", "nx"):
        if mod in mods:
            for fn in ("draw_networkx_nodes", "draw_networkx_edges", "draw_networkx_labels"):
                _patch(mods[mod], fn, _color_layer, fn)

    original_draw_text = RendererAgg.draw_text

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if not RECORDS.capturing_text:
            return original_draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        # A line of text shows when it passes the geometric checks and really changes
        # pixels of the image (see renderers/visibility.py).
        try:
            region = visibility.text_region(self, gc, x, y, s, prop, angle, ismath)
            before = visibility.pixels(self, region)
        except Exception:  # noqa: BLE001 - an unmeasurable text shows nothing we can credit
            region = before = None
        result = original_draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        try:
            seen = visibility.changed(self, region, before)
        except Exception:  # noqa: BLE001
            seen = False
        RECORDS.drawn_texts.append((s, mtext, (RECORDS.current_text, seen)))
        return result

    RendererAgg.draw_text = draw_text

    # A multi-line text reaches draw_text once per line with mtext=None: remember whose
    # line it is, so a title's visibility does not depend on how many lines it has.
    original_text_draw = Text.draw

    def text_draw(self, renderer, *args, **kwargs):
        outer, RECORDS.current_text = RECORDS.current_text, self
        try:
            return original_text_draw(self, renderer, *args, **kwargs)
        finally:
            RECORDS.current_text = outer

    Text.draw = text_draw

    # Data artists are judged right after the final draw, at the saved size and with the
    # renderer that drew them (afterwards savefig restores the figure's own dpi).
    original_figure_draw = Figure.draw

    def figure_draw(self, renderer, *args, **kwargs):
        result = original_figure_draw(self, renderer, *args, **kwargs)
        if RECORDS.capturing_text:
            try:
                RECORDS.seen = (self, visibility.visible_artists(data_artists(self), renderer))
            except Exception:  # noqa: BLE001 - then nothing counts as visible
                RECORDS.seen = (self, set())
        return result

    Figure.draw = figure_draw


# --------------------------------------------------------------------------- verification
#
# The script's own process records which calls it made (ChartMimic counts calls, not
# artists), but that process is hostile. The drawing side keeps a record only when the
# artists it names are really in the figure it draws, and re-reads every colour itself.

TYPE_KINDS = frozenset(
    _AXES_TYPE_METHODS
    + [
        "plot_polar",
        "fill_between",
        "NonUniformImage",
        "Ellipse",
        "VennDiagram",
        "squarify.plot",
        "draw_networkx_nodes",
        "draw_networkx_edges",
        "draw_networkx_labels",
    ]
    + ["3d." + n for n in _AXES3D_TYPE_METHODS]
)
COLOR_GROUPS = frozenset(
    _AXES_COLOR_METHODS
    + [
        "line",
        "fill_between",
        "plot_polar",
        "scatter_polar",
        "NonUniformImage",
        "Ellipse",
        "VennDiagram",
        "squarify",
        "draw_networkx_nodes",
        "draw_networkx_edges",
        "draw_networkx_labels",
    ]
    + ["3d." + n for n in _AXES3D_TYPE_METHODS]
)


# What each counted call (and colour group) draws: a record backs only with these.
_LINES, _BARS = (Line2D,), (mpatches.Rectangle,)
_ARTIST_CLASSES: dict[str, tuple[type, ...]] = {
    "bar": _BARS,
    "barh": _BARS,
    "plot": _LINES,
    "plot_polar": _LINES,
    "line": _LINES,
    "axhline": _LINES,
    "axvline": _LINES,
    "axvspan": (mpatches.Rectangle, mpatches.Polygon),
    "axhspan": (mpatches.Rectangle, mpatches.Polygon),
    "hlines": (LineCollection,),
    "vlines": (LineCollection,),
    "errorbar": (Line2D, LineCollection),
    "boxplot": (Line2D, mpatches.Patch),
    "violinplot": (Collection,),
    "violin": (Collection,),
    "hist": (mpatches.Rectangle, mpatches.Polygon),
    "fill_between": (PolyCollection,),
    "fill_betweenx": (PolyCollection,),
    "scatter": (PathCollection,),
    "scatter_polar": (PathCollection,),
    "quiver": (PolyCollection,),
    "pie": (mpatches.Wedge,),
    "fill": (mpatches.Polygon,),
    "imshow": (AxesImage,),
    "pcolor": (Collection,),
    "contour": (Collection,),
    "contourf": (Collection,),
    "broken_barh": (PolyCollection,),
    "tripcolor": (Collection,),
    "NonUniformImage": (NonUniformImage,),
    "Ellipse": (Ellipse,),
    "VennDiagram": (mpatches.Patch,),
    "squarify.plot": (Axes,),
    "squarify": (mpatches.Rectangle,),
    "draw_networkx_nodes": (PathCollection,),
    "draw_networkx_edges": (LineCollection, mpatches.Patch),
    "draw_networkx_labels": (Text,),
    "3d.scatter": (PathCollection,),
    "3d.plot": _LINES,
    "3d.plot_surface": (PolyCollection,),
    "3d.bar3d": (PolyCollection,),
    "3d.bar": (mpatches.Patch,),
    "3d.add_collection3d": (Collection,),
}


def _backs(kind: str, artist: Any) -> bool:
    return isinstance(artist, _ARTIST_CLASSES.get(kind, ()))


def data_artists(fig) -> dict[int, Any]:
    """What plotting calls add to a figure, by id: every axes' lines, patches, collections,
    images, texts and other artists, and the axes themselves (squarify counts an axes), but
    not their frames, titles, labels, legends or background patch. A background patch is
    kept only when it is an ellipse (a radar chart's round axes): ChartMimic counts those."""
    found: dict[int, Any] = {}
    for ax in fig.get_axes():
        found[id(ax)] = ax
        for group in (ax.lines, ax.patches, ax.collections, ax.images, ax.texts, ax.artists):
            for artist in group:
                found[id(artist)] = artist
        if isinstance(getattr(ax, "patch", None), mpatches.Ellipse):
            found[id(ax.patch)] = ax.patch
    return found


def drawn_artists(fig) -> dict[int, Any]:
    """Every artist in the figure's tree, by id: what drawing the figure can reach."""
    found: dict[int, Any] = {}
    stack = [fig]
    while stack:
        artist = stack.pop()
        if id(artist) in found:
            continue
        found[id(artist)] = artist
        try:
            stack.extend(artist.get_children())
        except Exception:  # noqa: BLE001 - a broken artist has no children to count
            pass
    return found


def refresh_caches(drawn: dict[int, Any]) -> None:
    """Make artists recompute what they cache from the data the trace reads, so the two
    cannot disagree: a line's drawn path comes from its x/y data again, a wedge's from its
    angles."""
    for artist in drawn.values():
        if isinstance(artist, Line2D):
            artist._invalidx = artist._invalidy = True
        elif isinstance(artist, mpatches.Wedge):
            artist._recompute_path()


def artists_of(obj: Any, depth: int = 0) -> list[Any]:
    """The artists inside what a plotting call returned (containers, dicts, tuples)."""
    from matplotlib.artist import Artist

    if isinstance(obj, Artist):
        return [obj]
    if depth > 3:
        return []
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    elif type(obj).__module__.split(".")[0] in ("matplotlib", "matplotlib_venn", "mpl_toolkits"):
        items = list(vars(obj).values()) if hasattr(obj, "__dict__") else []  # PieContainer, VennDiagram
    else:
        items = []
    return [a for item in items for a in artists_of(item, depth + 1)]


def type_call_records() -> list[tuple[str, list[Any]]]:
    """(kind, artists the call returned) for every counted call, in call order."""
    return [(kind, artists_of(result)) for kind, result in RECORDS.type_calls]


def verified_type_counts(calls: list[tuple[str, list[Any]]], drawn: dict[int, Any]) -> dict[str, int]:
    """Count a call only when it returned an artist that is in the figure and that no
    earlier call claimed: calls cannot be invented, and one artist backs one call."""
    RECORDS.checked_calls = calls  # collect_trace counts them again over what is visible
    return _count_types(calls, drawn)


def _count_types(calls: list[tuple[str, list[Any]]], drawn: dict[int, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    claimed: set[int] = set()
    for kind, artists in calls:
        if kind not in TYPE_KINDS:
            continue
        mine = {id(a) for a in artists if id(a) in drawn and _backs(kind, a)} - claimed
        if mine:
            claimed |= mine
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def verified_color_records(records: list[tuple[str, str, str, Any]], drawn: dict[int, Any]) -> list:
    """The colour records whose artists are in the figure (lists are cut to those that are)."""
    RECORDS.checked_colors = records
    return _verify_colors(records, drawn)


def _verify_colors(records: list[tuple[str, str, str, Any]], drawn: dict[int, Any]) -> list:
    kept = []
    for group, key_color, rule, artist in records:
        if group not in COLOR_GROUPS or rule not in COLOR_RULES or not isinstance(key_color, str):
            continue
        if rule == "patch_facecolors":
            artist = [a for a in artist if id(a) in drawn and _backs(group, a)] if isinstance(artist, list) else []
            if not artist:
                continue
        elif id(artist) not in drawn or not _backs(group, artist):
            continue
        if rule == "fixed" and key_color not in matplotlib.colormaps and key_color != _cmap_of(artist):
            continue  # a claimed colormap must exist, or be the one the artist maps with
        kept.append((group, key_color, rule, artist))
    return kept


def _cmap_of(artist: Any) -> str | None:
    try:
        return artist.get_cmap().name
    except Exception:  # noqa: BLE001 - not a mappable
        return None
