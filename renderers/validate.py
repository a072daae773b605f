"""Checks at the boundary: nothing a job process sends is read before it passes here.

The drawer never runs user code, but it does load a hostile pickle; if that ever went
wrong, what it returns must still be plain, bounded data and a real PNG of the size the
figure says. The runner's own report (stdout, error, violations) is untrusted text and
is only cut to size.
"""

from __future__ import annotations

import io
import math
from typing import Any

from renderers.result import ERROR_KINDS

MAX_NODES = 400_000  # JSON values in one trace
MAX_STRING = 100_000  # characters in one string
MAX_DEPTH = 8
_TRACE_KEYS = {"types", "colors", "texts", "tick_labels", "layout", "axes", "suptitle", "figure", "visible"}
_VISIBLE_KEYS = {"texts", "types", "colors", "layout", "n_axes", "suptitle", "axes"}
_AXES_FLAGS = {"shown", "title", "title_left", "title_right", "xlabel", "ylabel", "zlabel"}
_AXES_FLAG_LISTS = {"legend", "lines", "wedges", "collections", "images"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Rejected(ValueError):
    """What a job returned is not what a render produces."""


def _check_json(value: Any, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise Rejected(f"the trace holds over {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise Rejected("the trace is nested too deeply")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise Rejected("an integer in the trace is out of range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected("a number in the trace is not finite")
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise Rejected(f"a string in the trace is over {MAX_STRING} characters")
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1, budget)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > 200:
                raise Rejected("a key in the trace is not a short string")
            _check_json(item, depth + 1, budget)
        return
    raise Rejected(f"a {type(value).__name__} in the trace")


def check_trace(trace: Any) -> dict[str, Any]:
    """The trace itself when it has the shape instrument.collect_trace gives; else Rejected."""
    if trace == {}:
        return trace  # rendered without a trace
    if not isinstance(trace, dict) or set(trace) != _TRACE_KEYS:
        raise Rejected("the trace does not have the keys a trace has")
    _check_json(trace, 0, [MAX_NODES])
    _check_common(trace, "texts", "tick_labels")
    if not isinstance(trace["axes"], list) or not all(isinstance(a, dict) for a in trace["axes"]):
        raise Rejected("axes are not objects")
    for ax in trace["axes"]:
        if not all(
            isinstance(line, dict) and isinstance(line.get("helper", False), bool) for line in ax.get("lines", [])
        ):
            raise Rejected("a line entry is malformed")
    figure = trace["figure"]
    if not isinstance(figure, dict) or not isinstance(trace["suptitle"], str):
        raise Rejected("the figure entry is malformed")
    _check_visible(trace["visible"], trace["axes"])
    return trace


def _check_common(trace: dict[str, Any], *text_keys: str) -> None:
    types = trace["types"]
    if not isinstance(types, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 10**6 for v in types.values()
    ):
        raise Rejected("chart-type counts are not positive integers")
    if not isinstance(trace["colors"], list) or not all(
        isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in trace["colors"]
    ):
        raise Rejected("colours are not [group, colour] pairs")
    for key in text_keys:
        if not isinstance(trace[key], list) or not all(isinstance(t, str) for t in trace[key]):
            raise Rejected(f"trace {key} are not strings")
    if not isinstance(trace["layout"], list) or not all(
        isinstance(r, list) and len(r) == 6 and all(isinstance(x, int) for x in r) for r in trace["layout"]
    ):
        raise Rejected("layout rows are not six integers")


def _flags(value: Any, n: int, allowed: tuple = (False, True)) -> bool:
    return isinstance(value, list) and len(value) == n and all(type(v) in (bool, int) and v in allowed for v in value)


def _check_visible(visible: Any, axes: list[dict[str, Any]]) -> None:
    """trace["visible"] (renderers/visibility.py): flags that line up one to one with the
    official entries, and nothing more visible than the official keys hold."""
    if not isinstance(visible, dict) or set(visible) != _VISIBLE_KEYS:
        raise Rejected("the visible entry does not have the keys it has")
    _check_common(visible, "texts")
    flags = visible["axes"]
    if not isinstance(flags, list) or len(flags) != len(axes) or not isinstance(visible["suptitle"], bool):
        raise Rejected("visibility flags do not match the axes")
    n = visible["n_axes"]
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= len(axes) or len(visible["layout"]) > n:
        raise Rejected("the number of visible axes is out of range")
    for f, ax in zip(flags, axes):
        if not isinstance(f, dict) or not set(f) <= _AXES_FLAGS | _AXES_FLAG_LISTS | {"bars"}:
            raise Rejected("an axes' visibility flags are malformed")
        if not all(isinstance(f.get(k, False), bool) for k in _AXES_FLAGS):
            raise Rejected("an axes' visibility flags are not booleans")
        for k in _AXES_FLAG_LISTS:
            if not _flags(f.get(k, []), len(ax.get(k, []))):
                raise Rejected(f"visibility flags for {k} do not match the axes' {k}")
        bars, official = f.get("bars", []), ax.get("bars", [])
        if (
            not isinstance(bars, list)
            or len(bars) != len(official)
            or not all(
                isinstance(b, dict) and _flags(fl, len(b.get("values", [])), (0, 1, 2)) for fl, b in zip(bars, official)
            )
        ):
            raise Rejected("visibility flags for bars do not match the bars")


def check_png(png: Any, size_px: Any, max_pixels: int) -> bytes:
    """A PNG that decodes, has the size the figure was drawn at and at most `max_pixels`."""
    from PIL import Image

    if not isinstance(png, bytes) or not png.startswith(PNG_SIGNATURE):
        raise Rejected("the image is not a PNG")
    if not (isinstance(size_px, list) and len(size_px) == 2 and all(isinstance(x, int) for x in size_px)):
        raise Rejected("the figure's pixel size is missing")
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
            width, height = im.size
            # Checked before decoding: the header alone may claim a decompression bomb.
            if width * height > max_pixels * 1.01 + 4:
                raise Rejected(f"the image is {width}x{height}, over {max_pixels} pixels")
            if abs(width - size_px[0]) > 1 or abs(height - size_px[1]) > 1:
                raise Rejected(f"the image is {width}x{height}, the figure {size_px[0]}x{size_px[1]}")
            im.load()
    except Rejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder error means a broken image
        raise Rejected(f"the image does not decode: {type(exc).__name__}") from None
    return png


def bounded_phases(phases: Any) -> dict[str, float]:
    """A job's timings as at most 20 named, finite numbers."""
    if not isinstance(phases, dict):
        return {}
    return {
        str(k)[:40]: float(v) for k, v in list(phases.items())[:20] if isinstance(v, (int, float)) and math.isfinite(v)
    }


def runner_report(meta: dict[str, Any]) -> dict[str, Any]:
    """The fields of the runner's own report a result may carry, as bounded plain values."""
    kind = meta.get("error_kind")
    violations = meta.get("violations")
    isolation = meta.get("isolation")
    return {
        "error_kind": kind if kind in ERROR_KINDS else "crashed",
        "error": str(meta.get("error"))[:2000] if meta.get("error") is not None else None,
        "stdout": str(meta.get("stdout", ""))[:100_000],
        "violations": [str(v)[:300] for v in violations][:20] if isinstance(violations, list) else [],
        "phases": bounded_phases(meta.get("phases")),
        "isolation": {str(k)[:40]: str(v)[:200] for k, v in list(isolation.items())[:10]}
        if isinstance(isolation, dict)
        else {},
    }
