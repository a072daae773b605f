"""Running one chart script and turning its figure into an image plus a trace.

In the pool, the runner does `run_script` and the drawer, another process, `draw_figure`
(see renderers/zygote.py); `render_in_process` runs both steps here with no isolation (used
by benchmarks as the physical floor and by trusted callers).
"""

from __future__ import annotations

import ast
import builtins
import io
import math
import sys
import time
import traceback
from typing import Any

# Imported here, not inside the functions: in the runner our own modules leave sys.modules
# before the script runs (and the sandbox refuses to read them again).
from renderers import compat, instrument, visibility  # noqa: F401 - visibility hooks into instrument
from renderers.trace import collect_trace

USER_FILENAME = "<chart>"


class SandboxViolation(PermissionError):
    """Raised by the sandbox's audit hook when user code attempts something refused."""

    __module__ = "builtins"  # tracebacks then read "SandboxViolation: ..." without our path


class BoundedWriter(io.TextIOBase):
    """stdout/stderr stand-in that keeps the first `limit` characters and drops the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            s = str(s)
        room = self.limit - self.size
        if room > 0:
            kept = s[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.dropped += len(s) - len(kept)
        else:
            self.dropped += len(s)
        return len(s)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters dropped]"
        return text


def _user_error(exc: BaseException) -> str:
    """'line N: ExcType: message' for the deepest frame of the user's own code."""
    lineno = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == USER_FILENAME:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if len(last) > 500:
        last = last[:500] + "..."
    return f"line {lineno}: {last}" if lineno is not None else last


# Attributes that reach interpreter internals without raising an audit event; chart code
# never needs them, and through them a script could rewrite its own trace.
INTROSPECTION_NAMES = frozenset(
    {
        "__globals__",
        "__closure__",
        "cell_contents",
        "f_back",
        "f_locals",
        "f_globals",
        "f_builtins",
        "__wrapped__",
        "_getframe",
        "tb_frame",
        "gi_frame",
        "cr_frame",
        "__code__",
        "__subclasses__",
        "__getattribute__",
        "get_objects",
        "get_referrers",
        "get_referents",
    }
)


def find_introspection(tree: ast.AST) -> tuple[int, str] | None:
    """(line, name) of the first use of an introspection name, as attribute or string."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in INTROSPECTION_NAMES:
            return node.lineno, node.attr
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in INTROSPECTION_NAMES:
            return node.lineno, node.value
    return None


def _restore_builtins(saved: dict[str, Any]) -> None:
    """User code may rebind builtins (print, open, isinstance...); ours must not see that."""
    current = builtins.__dict__
    for name in [n for n in current if n not in saved]:
        del current[name]
    for name, value in saved.items():
        if current.get(name) is not value:
            current[name] = value


def _capped_dpi(fig, dpi: float, max_pixels: int) -> float:
    width, height = fig.get_size_inches()
    area = max(width * height, 1e-6)
    if area * dpi * dpi > max_pixels:
        dpi = math.sqrt(max_pixels / area)
    # matplotlib refuses images over 2**16 pixels on a side
    longest = max(width, height, 1e-6)
    return max(1.0, min(dpi, 65000 / longest))


def run_script(code: str, *, is_violation=lambda: False, check_introspection: bool = True) -> dict[str, Any]:
    """Execute `code`. On success `out["figure"]` is the current figure, not yet drawn.

    Returns a plain dict: ok, error_kind, error, seconds (see RenderResult).
    """
    import matplotlib.pyplot as plt

    t0 = time.perf_counter()
    out: dict[str, Any] = {"ok": False, "error_kind": None, "error": None}

    def fail(kind: str, error: str) -> dict[str, Any]:
        out.update(error_kind=kind, error=error, seconds=time.perf_counter() - t0)
        return out

    try:
        tree = ast.parse(code, USER_FILENAME)
        found = find_introspection(tree) if check_introspection else None
        # float()/int() of one-element arrays as numpy 1.x did (only with legacy compatibility)
        legacy_names = compat.legacy_scalar_calls(tree) if found is None else {}
        compiled = compile(tree, USER_FILENAME, "exec")
    except (SyntaxError, ValueError) as exc:
        lineno = getattr(exc, "lineno", None)
        msg = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"
        return fail("syntax", f"line {lineno}: {msg}" if lineno else msg)
    if found is not None:
        return fail("forbidden", f"line {found[0]}: the script uses '{found[1]}', which inspects interpreter internals")

    saved_builtins = dict(builtins.__dict__)
    namespace = {"__name__": "__main__", "__builtins__": builtins, **legacy_names}
    try:
        exec(compiled, namespace)
        error = None
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
        error = exc
    finally:
        _restore_builtins(saved_builtins)

    if error is not None:
        # Inside the sandbox a PermissionError can only come from a refusal (the audit hook,
        # or the kernel layers: Landlock answers EACCES, seccomp EPERM).
        if isinstance(error, (SandboxViolation, PermissionError)) or is_violation():
            return fail("forbidden", _user_error(error))
        if isinstance(error, MemoryError):
            return fail("memory", _user_error(error) or "MemoryError")
        return fail("runtime", _user_error(error))
    if is_violation():
        return fail("forbidden", "the script attempted an operation the sandbox refuses")
    if not plt.get_fignums():
        return fail("no_figure", "the script ran but created no figure")
    out["ok"] = True
    out["figure"] = plt.gcf()
    out["seconds"] = time.perf_counter() - t0
    return out


def draw_figure(
    fig,
    *,
    dpi: float = 100,
    max_pixels: int = 4_000_000,
    with_trace: bool = True,
    calls: list | None = None,
    colors: list | None = None,
) -> tuple[bytes, dict[str, Any], list[int]]:
    """Draw `fig` as a PNG and record its trace from what is drawn.

    `calls` and `colors` are the call records of the process that ran the script (see
    instrument.type_call_records / color_records); only those backed by artists in `fig`
    count. Returns the PNG, the trace and the image size in pixels; raises whatever drawing
    raises.
    """
    png = io.BytesIO()
    drawn = instrument.drawn_artists(fig)
    instrument.refresh_caches(drawn)
    instrument.RECORDS.drawn_texts = []
    instrument.RECORDS.capturing_text = True
    dpi = _capped_dpi(fig, dpi, max_pixels)
    size_px = [int(x * dpi) for x in fig.get_size_inches()]  # how Agg sizes its canvas
    try:
        # zlib level 1: a chart's PNG is 5-30% larger than at the default 6, and encoding
        # (the largest step after drawing) and the boundary's full decode are 30-40% faster.
        fig.savefig(png, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    finally:
        instrument.RECORDS.capturing_text = False
    trace: dict[str, Any] = {}
    if with_trace:
        placed = instrument.data_artists(fig)
        types = instrument.verified_type_counts(calls or [], placed)
        colors = instrument.final_colors(instrument.verified_color_records(colors or [], placed))
        # One figure is drawn, whatever else the script opened (its own count is its claim).
        trace = collect_trace(fig, instrument.RECORDS.drawn_texts, types, colors, n_figures=1)
    return png.getvalue(), trace, size_px


def draw_failure(exc: BaseException) -> tuple[str, str]:
    """(error_kind, error) for an exception raised while drawing a figure."""
    if isinstance(exc, MemoryError):
        return "memory", "while drawing: " + _user_error(exc)
    if isinstance(exc, SandboxViolation):
        return "forbidden", "while drawing: " + _user_error(exc)
    return "runtime", "while drawing: " + _user_error(exc)


def run_code(
    code: str,
    *,
    dpi: float = 100,
    max_pixels: int = 4_000_000,
    with_trace: bool = True,
    is_violation=lambda: False,
    check_introspection: bool = True,
) -> dict[str, Any]:
    """Run a script and draw its figure in this process. Returns a plain dict (see RenderResult)."""
    t0 = time.perf_counter()
    out = run_script(code, is_violation=is_violation, check_introspection=check_introspection)
    fig = out.pop("figure", None)
    out.update(png=None, trace={})
    if not out["ok"]:
        return out
    try:
        out["png"], out["trace"], _ = draw_figure(
            fig,
            dpi=dpi,
            max_pixels=max_pixels,
            with_trace=with_trace,
            calls=instrument.type_call_records(),
            colors=instrument.color_records(),
        )
    except BaseException as exc:  # noqa: BLE001 - a figure can fail only when drawn
        out.update(ok=False, png=None)
        out["error_kind"], out["error"] = draw_failure(exc)
    out["seconds"] = time.perf_counter() - t0
    return out


def render_in_process(code: str, **kwargs: Any) -> dict[str, Any]:
    """Run in this process with no isolation: only for trusted code and for benchmarks."""
    import matplotlib.pyplot as plt

    instrument.install()
    instrument.RECORDS.reset()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = BoundedWriter(8192)
    try:
        return run_code(code, **kwargs)
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        plt.close("all")
        import matplotlib

        matplotlib.rcdefaults()
        matplotlib.use("Agg")
