"""Legacy-API compatibility: chart code written for older matplotlib, numpy and pandas.

The models we train learned from code written for matplotlib 3.5-3.9, numpy 1.x and pandas
1.x-2.x, and the benchmarks' reference scripts were written for the same releases (their
evaluators pin them). With today's libraries that code fails on renamed or removed calls,
not on its own faults: `cm.get_cmap`, `boxplot(labels=...)`, `np.float`, `freq="M"`,
`DataFrame.append`... A script that ran in the benchmark's environment must run here.

`install()` (the render server calls it before forking anything when `compat="legacy"`,
the default) puts each removed API back as a thin adapter onto its replacement. Every shim
names the release that removed the API; one whose API still exists is not installed, so
the layer is a no-op on older libraries. `compat="current"` leaves the libraries untouched.

One shim acts on the script's own code, not on a library: its `float(x)`, `int(x)` and
`complex(x)` calls of a one-element array (numpy 1.x returned the element; numpy >= 2.4
raises) are rewritten by `legacy_scalar_calls` before it runs; library code is untouched.

Nothing here holds or reaches job data: the shims are plain functions over the libraries.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from typing import Any, Callable

MODES = ("legacy", "current")


@dataclass(frozen=True)
class Shim:
    name: str  # the API as chart code writes it
    removed_in: str  # the release that removed or renamed it
    install: Callable[[], bool]  # puts it back; False when the API still exists (nothing done)


def _missing(owner: Any, attr: str) -> bool:
    try:
        return attr not in vars(owner) and not hasattr(owner, attr)
    except Exception:  # noqa: BLE001 - numpy's module __getattr__ raises for removed names
        return True


def _set_missing(owner: Any, attr: str, value: Any) -> bool:
    if not _missing(owner, attr):
        return False
    setattr(owner, attr, value)
    return True


def _renamed_keywords(func: Callable, renames: dict[str, str], *, drop: tuple[str, ...] = ()) -> Callable:
    """`func` accepting old keyword names (mapped to the new ones) and ignoring dropped ones."""
    import functools

    @functools.wraps(func)
    def adapter(*args, **kwargs):
        for old, new in renames.items():
            # pyplot wrappers pass the new name explicitly as None (plt.grid(b=True))
            if old in kwargs and kwargs.get(new) is None:
                kwargs[new] = kwargs.pop(old)
        for name in drop:
            kwargs.pop(name, None)
        return func(*args, **kwargs)

    adapter._vlrl_compat = True
    return adapter


def _wrap_keywords(
    owner: Any,
    attr: str,
    renames: dict[str, str],
    *,
    drop: tuple[str, ...] = (),
    probe: Callable[[], Any] | None = None,
) -> bool:
    """Install a keyword adapter on owner.attr when `probe` (an old-style call) fails."""
    func = getattr(owner, attr, None)
    if func is None or getattr(func, "_vlrl_compat", False):
        return False
    if probe is not None:
        try:
            probe()
            return False  # the old keyword still works here
        except TypeError:
            pass
        except Exception:  # noqa: BLE001 - any other failure: the adapter cannot hurt
            pass
    setattr(owner, attr, _renamed_keywords(func, renames, drop=drop))
    return True


# --------------------------------------------------------------------------- matplotlib


def _cm_get_cmap() -> bool:
    import matplotlib
    import matplotlib.cm as cm
    from matplotlib.colors import Colormap

    def get_cmap(name=None, lut=None):
        cmap = name if isinstance(name, Colormap) else matplotlib.colormaps[name or matplotlib.rcParams["image.cmap"]]
        return cmap.resampled(lut) if lut is not None else cmap

    return _set_missing(cm, "get_cmap", get_cmap)


def _register_cmap() -> bool:
    import matplotlib
    import matplotlib.cm as cm
    import matplotlib.pyplot as plt

    def register_cmap(name=None, cmap=None, *, override_builtin=False):
        if name is not None and not isinstance(name, str):  # register_cmap(cmap) positional
            name, cmap = None, name
        matplotlib.colormaps.register(cmap, name=name or cmap.name, force=override_builtin)

    done = _set_missing(cm, "register_cmap", register_cmap)
    return _set_missing(plt, "register_cmap", register_cmap) or done


def _boxplot_labels() -> bool:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    def probe():
        import matplotlib.figure

        matplotlib.figure.Figure().add_subplot().boxplot([[1.0, 2.0]], labels=["a"])

    done = _wrap_keywords(Axes, "boxplot", {"labels": "tick_labels"}, probe=probe)
    if done:
        _wrap_keywords(plt, "boxplot", {"labels": "tick_labels"})
    return done


def _seaborn_styles() -> bool:
    import matplotlib.style as style

    added = False
    for name in list(style.library):
        if name.startswith("seaborn-v0_8"):
            old = "seaborn" + name[len("seaborn-v0_8") :]
            if old not in style.library:
                style.library[old] = style.library[name]
                added = True
    if added:
        style.available[:] = sorted(style.library)
    return added


def _grid_b() -> bool:
    from matplotlib.axes import Axes

    def probe():
        import matplotlib.figure

        matplotlib.figure.Figure().add_subplot().grid(b=True)

    return _wrap_keywords(Axes, "grid", {"b": "visible"}, probe=probe)


def _legend_handles() -> bool:
    from matplotlib.legend import Legend

    return _set_missing(Legend, "legendHandles", property(lambda self: self.legend_handles))


def _w_axes() -> bool:
    from mpl_toolkits.mplot3d import Axes3D

    done = False
    for axis in ("x", "y", "z"):
        done = _set_missing(Axes3D, f"w_{axis}axis", property(lambda self, a=axis: getattr(self, f"{a}axis"))) or done
    return done


def _plot_date() -> bool:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    def plot_date(self, x, y, fmt="o", tz=None, xdate=True, ydate=False, **kwargs):
        if xdate:
            self.xaxis_date(tz)
        if ydate:
            self.yaxis_date(tz)
        return self.plot(x, y, fmt, **kwargs)

    def pyplot_plot_date(x, y, fmt="o", tz=None, xdate=True, ydate=False, **kwargs):
        return plt.gca().plot_date(x, y, fmt, tz, xdate, ydate, **kwargs)

    done = _set_missing(Axes, "plot_date", plot_date)
    return _set_missing(plt, "plot_date", pyplot_plot_date) or done


_SCALE_KEYWORDS = {
    "nonposx": "nonpositive",
    "nonposy": "nonpositive",
    "nonposz": "nonpositive",
    "basex": "base",
    "basey": "base",
    "basez": "base",
    "subsx": "subs",
    "subsy": "subs",
    "linthreshx": "linthresh",
    "linthreshy": "linthresh",
    "linscalex": "linscale",
    "linscaley": "linscale",
}


def _scale_keywords() -> bool:
    from matplotlib.axes import Axes

    def probe():
        import matplotlib.figure

        matplotlib.figure.Figure().add_subplot().set_yscale("log", nonposy="clip")

    done = _wrap_keywords(Axes, "set_yscale", _SCALE_KEYWORDS, probe=probe)
    if done:
        _wrap_keywords(Axes, "set_xscale", _SCALE_KEYWORDS)
        try:
            from mpl_toolkits.mplot3d import Axes3D

            for attr in ("set_xscale", "set_yscale", "set_zscale"):
                if attr in vars(Axes3D):
                    _wrap_keywords(Axes3D, attr, _SCALE_KEYWORDS)
        except ImportError:
            pass
    return done


def _colorbar_draw_all() -> bool:
    from matplotlib.colorbar import Colorbar

    return _set_missing(Colorbar, "draw_all", lambda self: self._draw_all())


def _scalar_line_data() -> bool:
    import numpy as np
    from matplotlib.lines import Line2D

    def probe():
        Line2D([0], [0]).set_xdata(1)

    try:
        probe()
        return False
    except Exception:  # noqa: BLE001 - 3.7+ raises RuntimeError: x must be a sequence
        pass
    for attr in ("set_xdata", "set_ydata"):
        original = vars(Line2D)[attr]

        def setter(self, values, _original=original):
            return _original(self, [values] if np.ndim(values) == 0 else values)

        setter._vlrl_compat = True
        setattr(Line2D, attr, setter)
    return True


def _mpl_deprecation() -> bool:
    import matplotlib
    import matplotlib.cbook as cbook

    return _set_missing(cbook, "mplDeprecation", matplotlib.MatplotlibDeprecationWarning)


def _tostring_rgb() -> bool:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return _set_missing(FigureCanvasAgg, "tostring_rgb", lambda self: np.asarray(self.buffer_rgba())[..., :3].tobytes())


def _set_window_title() -> bool:
    from matplotlib.backend_bases import FigureCanvasBase

    def set_window_title(self, title):
        if self.manager is not None:
            self.manager.set_window_title(title)

    return _set_missing(FigureCanvasBase, "set_window_title", set_window_title)


# --------------------------------------------------------------------------- numpy

# name -> what it meant (numpy 1.20 deprecated the builtin aliases, 1.24 removed them;
# numpy 2.0 removed the rest).
_NUMPY_ALIASES_124 = {
    "float": "builtins.float",
    "int": "builtins.int",
    "object": "builtins.object",
    "str": "builtins.str",
    "complex": "builtins.complex",
}
_NUMPY_ALIASES_20 = {
    "NaN": "nan",
    "NAN": "nan",
    "Inf": "inf",
    "Infinity": "inf",
    "infty": "inf",
    "PINF": "inf",
    "float_": "float64",
    "complex_": "complex128",
    "cfloat": "complex128",
    "string_": "bytes_",
    "unicode_": "str_",
    "longfloat": "longdouble",
    "singlecomplex": "complex64",
    "longcomplex": "clongdouble",
    "clongfloat": "clongdouble",
    "int0": "intp",
    "uint0": "uintp",
    "bool8": "bool_",
    "product": "prod",
    "cumproduct": "cumprod",
    "alltrue": "all",
    "sometrue": "any",
    "round_": "round",
    "mat": "asmatrix",
}
_NUMPY_ALIASES_24 = {"trapz": "trapezoid", "in1d": "isin"}  # deprecated in 2.0


def _numpy_aliases(table: dict[str, str]) -> Callable[[], bool]:
    def install() -> bool:
        import numpy as np

        done = False
        for old, new in table.items():
            value = getattr(builtins, new.split(".")[1]) if new.startswith("builtins.") else getattr(np, new)
            done = _set_missing(np, old, value) or done
        return done

    return install


def _numpy_functions_20() -> bool:
    import numpy as np

    done = _set_missing(np, "NINF", -np.inf)
    done = _set_missing(np, "PZERO", 0.0) or done
    done = _set_missing(np, "NZERO", -0.0) or done
    done = (
        _set_missing(
            np,
            "asfarray",
            lambda a, dtype=np.float64: np.asarray(a, dtype=dtype if np.issubdtype(dtype, np.inexact) else np.float64),
        )
        or done
    )
    done = _set_missing(np, "msort", lambda a: np.sort(a, axis=0)) or done
    done = _set_missing(np, "issubclass_", lambda a, b: isinstance(a, type) and issubclass(a, b)) or done
    done = _set_missing(np, "sctype2char", lambda sctype: np.dtype(sctype).char) or done
    done = (
        _set_missing(
            np,
            "find_common_type",
            lambda array_types, scalar_types: (
                np.result_type(*array_types, *scalar_types) if (array_types or scalar_types) else np.dtype(None)
            ),
        )
        or done
    )
    return done


def _legacy_scalar(real: type) -> Callable[..., Any]:
    def convert(*args, **kwargs):
        if len(args) == 1 and not kwargs and getattr(args[0], "ndim", 0) and getattr(args[0], "size", 0) == 1:
            args = (args[0].reshape(()).item(),)  # numpy 1.x: a one-element array is its element
        return real(*args, **kwargs)

    convert.__name__ = real.__name__
    return convert


_SCALAR_CALLS: dict[str, Callable[..., Any]] = {}  # filled by the shim when numpy refuses


def _one_element_scalars() -> bool:
    import numpy as np

    try:
        float(np.array([1.0]))
        return False
    except TypeError:
        pass
    _SCALAR_CALLS.update({f"__vlrl_legacy_{t.__name__}__": _legacy_scalar(t) for t in (float, int, complex)})
    return True


def legacy_scalar_calls(tree: ast.Module) -> dict[str, Any]:
    """Rewrite the script's own `float(x)`, `int(x)`, `complex(x)` calls so a one-element
    array converts as in numpy 1.x; returns the names the rewritten code needs. The names
    themselves stay the real types (`dtype=float` must reach numpy as float), and a script
    that binds any of them itself is left as it is."""
    if not _SCALAR_CALLS:
        return {}
    names = {"float", "int", "complex"}
    calls = []  # one walk: the calls to rewrite, unless the script binds a name somewhere
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            calls.append(node)
        elif (
            (isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in names)
            or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names)
            or (isinstance(node, ast.alias) and (node.asname or node.name) in names)
            or (isinstance(node, ast.arg) and node.arg in names)
        ):
            return {}
    for node in calls:
        node.func = ast.copy_location(ast.Name(id=f"__vlrl_legacy_{node.func.id}__", ctx=ast.Load()), node.func)
    return dict(_SCALAR_CALLS)


# --------------------------------------------------------------------------- pandas

# pandas 2.2 deprecated, and 3.0 removed, these frequency aliases
_FREQ_RENAMES = {
    "M": "ME",
    "BM": "BME",
    "SM": "SME",
    "CBM": "CBME",
    "Q": "QE",
    "BQ": "BQE",
    "Y": "YE",
    "A": "YE",
    "BY": "BYE",
    "BA": "BYE",
    "AS": "YS",
    "BAS": "BYS",
    "H": "h",
    "BH": "bh",
    "CBH": "cbh",
    "T": "min",
    "S": "s",
    "L": "ms",
    "U": "us",
    "N": "ns",
}
_FREQ = re.compile(r"^(-?\d*\.?\d*)([A-Za-z]+)(-[A-Za-z]{3})?$")


def legacy_freq(freq: Any) -> Any:
    """'M' -> 'ME', '2H' -> '2h', 'A-DEC' -> 'YE-DEC'; anything else unchanged."""
    if not isinstance(freq, str):
        return freq
    match = _FREQ.match(freq.strip())
    if not match or match.group(2) not in _FREQ_RENAMES:
        return freq
    count, base, anchor = match.groups()
    return f"{count}{_FREQ_RENAMES[base]}{anchor or ''}"


def _pandas_frequencies() -> bool:
    import sys

    import pandas as pd
    from pandas._libs.tslibs import offsets

    try:
        pd.date_range("2020-01-31", periods=2, freq="M")
        return False
    except ValueError:
        pass
    original = offsets.to_offset

    def to_offset(freq, *args, **kwargs):
        is_period = kwargs.get("is_period", args[0] if args else False)
        return original(freq if is_period else legacy_freq(freq), *args, **kwargs)

    # Python modules of pandas hold their own reference to the Cython function.
    for name, module in list(sys.modules.items()):
        if name.startswith("pandas") and getattr(module, "to_offset", None) is original:
            module.to_offset = to_offset
    return True


def _pandas_methods() -> bool:
    import datetime

    import pandas as pd
    from pandas.core.generic import NDFrame

    done = _set_missing(
        pd.DataFrame, "applymap", lambda self, func, na_action=None, **kw: self.map(func, na_action=na_action, **kw)
    )  # removed in 3.0
    done = _set_missing(pd.DataFrame, "iteritems", lambda self: self.items()) or done  # 2.0
    done = _set_missing(pd.Series, "iteritems", lambda self: self.items()) or done  # 2.0
    done = (
        _set_missing(
            pd.Series,
            "mad",
            lambda self, axis=None, skipna=True, level=None: (
                (self - self.mean(skipna=skipna)).abs().mean(skipna=skipna)
            ),
        )
        or done
    )  # 2.0
    for cls in (pd.DataFrame, pd.Series):
        done = _set_missing(cls, "pad", lambda self, **kw: self.ffill(**kw)) or done  # 2.0
        done = _set_missing(cls, "backfill", lambda self, **kw: self.bfill(**kw)) or done  # 2.0
    done = _set_missing(pd, "datetime", datetime.datetime) or done  # 2.0
    done = _set_missing(pd, "value_counts", lambda values, **kw: pd.Series(values).value_counts(**kw)) or done  # 3.0

    def append(self, other, ignore_index=False, verify_integrity=False, sort=False):  # removed in 2.0
        if isinstance(other, (dict, pd.Series)) and isinstance(self, pd.DataFrame):
            other = pd.Series(other) if isinstance(other, dict) else other
            if other.name is None and not ignore_index:
                raise TypeError("Can only append a Series if ignore_index=True or if the Series has a name")
            other = other.to_frame().T.infer_objects()
        elif (
            isinstance(other, list)
            and other
            and isinstance(self, pd.DataFrame)
            and not isinstance(other[0], pd.DataFrame)
        ):
            other = pd.DataFrame(other)
        frames = [self, *other] if isinstance(other, (list, tuple)) else [self, other]
        return pd.concat(frames, ignore_index=ignore_index, verify_integrity=verify_integrity, sort=sort)

    done = _set_missing(pd.DataFrame, "append", append) or done
    done = _set_missing(pd.Series, "append", append) or done

    fillna = vars(NDFrame).get("fillna")
    if fillna is not None and not getattr(fillna, "_vlrl_compat", False):
        try:
            pd.Series([1.0, None]).fillna(method="ffill")
        except TypeError:  # method= removed in 3.0
            fills = {"ffill": "ffill", "pad": "ffill", "bfill": "bfill", "backfill": "bfill"}

            def legacy_fillna(self, value=None, *args, method=None, **kwargs):
                if method in fills:
                    kept = {k: v for k, v in kwargs.items() if k in ("axis", "inplace", "limit")}
                    return getattr(self, fills[method])(**kept)
                return fillna(self, value, *args, **kwargs)

            legacy_fillna._vlrl_compat = True
            NDFrame.fillna = legacy_fillna
            done = True
    return done


def _pandas_keywords() -> bool:
    import pandas as pd

    def closed_probe():
        pd.date_range("2020-01-01", periods=2, closed="left")

    done = _wrap_keywords(pd, "date_range", {"closed": "inclusive"}, probe=closed_probe)  # 2.0
    done = (
        _wrap_keywords(
            pd,
            "to_datetime",
            {},
            drop=("infer_datetime_format",),
            probe=lambda: pd.to_datetime(["2020-01-01"], infer_datetime_format=True),
        )
        or done
    )  # 3.0
    import io

    def whitespace_probe():
        pd.read_csv(io.StringIO("a b\n1 2"), delim_whitespace=True)

    try:
        whitespace_probe()
    except TypeError:  # delim_whitespace= removed in 3.0
        read_csv = pd.read_csv

        def legacy_read_csv(*args, delim_whitespace=False, infer_datetime_format=None, **kwargs):
            if delim_whitespace:
                kwargs.setdefault("sep", r"\s+")
            return read_csv(*args, **kwargs)

        legacy_read_csv._vlrl_compat = True
        pd.read_csv = legacy_read_csv
        done = True
    return done


def _pandas_numeric_only() -> bool:
    """pandas < 2.0 dropped text columns from DataFrame and groupby means; 2.0 raises."""
    import functools

    import pandas as pd
    from pandas.core.groupby.groupby import GroupBy

    try:
        pd.DataFrame({"a": ["x"], "b": [1.0]}).groupby("a").mean()
        pd.DataFrame({"b": [1.0], "c": ["u"]}).mean()
        return False
    except TypeError:
        pass
    for owner in (pd.DataFrame, GroupBy):
        for attr in ("mean", "median", "std", "var"):
            original = getattr(owner, attr)

            @functools.wraps(original)
            def reduce(self, *args, _original=original, **kwargs):
                try:
                    return _original(self, *args, **kwargs)
                except TypeError:
                    if "numeric_only" in kwargs:
                        raise
                    return _original(self, *args, numeric_only=True, **kwargs)

            reduce._vlrl_compat = True
            setattr(owner, attr, reduce)
    return True


SHIMS: tuple[Shim, ...] = (
    Shim("matplotlib.cm.get_cmap", "matplotlib 3.9", _cm_get_cmap),
    Shim("matplotlib.cm.register_cmap / pyplot.register_cmap", "matplotlib 3.9", _register_cmap),
    Shim("Axes.boxplot(labels=...) -> tick_labels", "matplotlib 3.11 (renamed in 3.9)", _boxplot_labels),
    Shim("plt.style.use('seaborn-...') -> 'seaborn-v0_8-...'", "matplotlib 3.8 (renamed in 3.6)", _seaborn_styles),
    Shim("Axes.grid(b=...) -> visible", "matplotlib 3.7 (renamed in 3.5)", _grid_b),
    Shim("Legend.legendHandles -> legend_handles", "matplotlib 3.9", _legend_handles),
    Shim("Axes3D.w_xaxis / w_yaxis / w_zaxis", "matplotlib 3.8", _w_axes),
    Shim("Axes.plot_date / pyplot.plot_date", "matplotlib 3.11 (deprecated in 3.9)", _plot_date),
    Shim("set_xscale/set_yscale(nonposy=, basey=, subsy=, linthreshy=...)", "matplotlib 3.5", _scale_keywords),
    Shim("Colorbar.draw_all", "matplotlib 3.9", _colorbar_draw_all),
    Shim("Line2D.set_xdata/set_ydata with a scalar", "matplotlib 3.7", _scalar_line_data),
    Shim("matplotlib.cbook.mplDeprecation", "matplotlib 3.8", _mpl_deprecation),
    Shim("FigureCanvasAgg.tostring_rgb", "matplotlib 3.10", _tostring_rgb),
    Shim("FigureCanvas.set_window_title", "matplotlib 3.6", _set_window_title),
    Shim("np.float / np.int / np.object / np.str / np.complex", "numpy 1.24", _numpy_aliases(_NUMPY_ALIASES_124)),
    Shim(
        "np.NaN, np.Inf, np.float_, np.string_, np.product, np.alltrue, np.round_, np.mat ...",
        "numpy 2.0",
        _numpy_aliases(_NUMPY_ALIASES_20),
    ),
    Shim("np.trapz, np.in1d", "numpy 2.4 (deprecated in 2.0)", _numpy_aliases(_NUMPY_ALIASES_24)),
    Shim("np.NINF, np.asfarray, np.msort, np.find_common_type ...", "numpy 2.0", _numpy_functions_20),
    Shim(
        "float()/int()/complex() of a one-element array (the script's own calls)",
        "numpy 2.4 (deprecated in 1.25)",
        _one_element_scalars,
    ),
    Shim(
        "pandas frequency aliases 'M', 'Q', 'Y', 'A', 'H', 'T', 'S' ...",
        "pandas 3.0 (deprecated in 2.2)",
        _pandas_frequencies,
    ),
    Shim(
        "DataFrame.applymap / append / iteritems / pad, Series.append / mad, pd.datetime, pd.value_counts, "
        "fillna(method=...)",
        "pandas 2.0 and 3.0",
        _pandas_methods,
    ),
    Shim(
        "date_range(closed=), to_datetime/read_csv(infer_datetime_format=), read_csv(delim_whitespace=)",
        "pandas 2.0 and 3.0",
        _pandas_keywords,
    ),
    Shim("DataFrame/groupby mean, median, std, var skipping text columns", "pandas 2.0", _pandas_numeric_only),
)


def install(mode: str = "legacy") -> list[str]:
    """Apply every shim whose API is missing (mode "legacy"); returns the names installed."""
    if mode not in MODES:
        raise ValueError(f"render compat must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "current":
        return []
    installed = []
    for shim in SHIMS:
        try:
            if shim.install():
                installed.append(shim.name)
        except ImportError:
            continue  # a library the server could not import: its shims do not apply
    return installed
