"""Handing a finished figure from the process that ran the script to the one that draws it.

The script's process (the runner) is hostile: whatever it sends may be forged. It sends a
pickle of its figure together with its call records (which plotting calls it made, and the
artists they returned). The drawer, a fresh process that never runs user code, loads that
pickle with `load_handover`: only classes of the plotting stack and a handful of vetted
reconstructors may be named, no instance may shadow a method of its class, and the object
graph is bounded. What it then draws and records is, by construction, what the figure holds.

`pack_handover` runs in the runner. A figure that cannot be pickled as it is (a lambda tick
formatter, say) or that holds pandas' own tickers and converters has them frozen to the
labels, positions and numbers they produce now; artists of a class defined inside a function
become their importable base class, and artists that keep such a function are left out (with
a note); what still cannot be pickled fails the job with a clear message.
"""

from __future__ import annotations

import functools
import io
import pickle
import types
from typing import Any

from matplotlib.markers import MarkerStyle

# Imported here, not inside the functions: in the runner our own modules leave sys.modules
# before the script runs (and the sandbox refuses to read them again).
from renderers import instrument

# Classes are allowed from these packages (the plotting stack whose artists a figure holds;
# of numpy only its array, dtype and scalar types, see _FigureUnpickler._find)...
_CLASS_PACKAGES = ("matplotlib", "mpl_toolkits", "numpy", "matplotlib_venn")
# ...except from modules that write files, run programs or exist for tests.
_DENIED_MODULES = (
    "matplotlib.animation",
    "matplotlib.backends",
    "matplotlib.testing",
    "matplotlib.sphinxext",
    "matplotlib.pyplot",
    "matplotlib._api",
    "matplotlib.texmanager",
    "matplotlib.dviread",
    "matplotlib.font_manager",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.ctypeslib",
    "numpy.lib.format",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib._datasource",
    "numpy._pytesttester",
)
# Plain data types of the language itself.
_BUILTIN_TYPES = frozenset(
    {
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "slice",
        "complex",
        "bytearray",
        "range",
        "object",
        "int",
        "float",
        "str",
        "bytes",
        "bool",
        "NoneType",
    }
)
# Functions a figure's pickle names (measured on 251 real charts): numpy's constructors of
# arrays and scalars from their bytes (numpy 1.x and 2.x names). None runs code of the
# sender's choosing.
_FUNCTIONS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.ma.core", "_mareconstruct"),
        # callbacks and handlers matplotlib stores on figures; drawing never calls the event ones
        ("matplotlib.cbook", "_exception_printer"),
        ("matplotlib.artist", "_stale_axes_callback"),
        ("matplotlib.backend_bases", "_key_handler"),
        ("matplotlib.backend_bases", "_mouse_handler"),
        ("matplotlib.colorbar", "_remove_cbar_axes"),
        ("matplotlib.axis", "Axis._format_with_dict"),
        # pure numeric functions that scales and norms keep (FuncScale, FuncNorm)
        ("numpy", "average"),
    }
)
# Segment functions of matplotlib's gnuplot colormaps: pure arithmetic on one array.
_COLORMAP_FUNCTIONS = "matplotlib._cm"
# Plain data and helpers of the standard library and dateutil that figures hold (dates on axes).
_PLAIN_CLASSES = frozenset(
    {
        ("collections", "OrderedDict"),
        ("functools", "partial"),
        ("itertools", "count"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("dateutil.rrule", "rrule"),
        ("dateutil.tz.tz", "tzutc"),
        ("dateutil.relativedelta", "relativedelta"),
    }
)
# Bound methods of plain containers that artists keep (`_remove_method = list.remove`)
# pickle as getattr(container, name): allowed for these names on these types only.
_BOUND_METHODS = {
    list: frozenset({"remove", "append"}),
    dict: frozenset({"pop", "__delitem__"}),
    set: frozenset({"discard", "remove"}),
}
# Methods matplotlib itself replaces per instance, with the same-named method of another
# object: a TransformWrapper forwards to its child, a colorbar's axes to the colorbar.
_WRAPPER_METHODS = frozenset(
    {
        "get_affine",
        "get_matrix",
        "inverted",
        "transform",
        "transform_affine",
        "transform_non_affine",
        "transform_path",
        "transform_path_affine",
        "transform_path_non_affine",
    }
)
_COLORBAR_METHODS = frozenset({"_get_view", "_set_view", "_set_view_from_bbox", "drag_pan", "cla"})
# Methods of plotting objects that figures keep bound (callbacks, remove hooks, the two
# forwarding patterns above, a MarkerStyle's `_set_<marker>`), measured on real charts.
_STORED_METHODS = (
    _WRAPPER_METHODS
    | _COLORBAR_METHODS
    | frozenset(
        {
            "_remove_legend",
            "_unit_change_handler",
            "_cbar_cla",
            "_remove_suplabel",
            "delaxes",
            "pick",
            "_findoffset",
            "_button_press",
            "_button_release",
            "_on_move",
            "_forward_boundaries",
            "_inverse_boundaries",
        }
    )
)
# The only non-numpy-array classes of numpy a figure holds.
_NUMPY_CLASSES = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.ma", "MaskedArray"), ("numpy.ma.core", "MaskedArray")}
)
MAX_OBJECTS = 2_000_000


class ForgedHandover(ValueError):
    """The pickle names something a figure never holds, or is shaped like no figure."""


def _from_stack(cls: type) -> bool:
    return cls.__module__.split(".")[0] in _CLASS_PACKAGES


def _safe_getattr(obj: Any, name: str) -> Any:
    """Bound methods only: a container's mutators, or one of the methods figures keep bound
    (_STORED_METHODS, a MarkerStyle's `_set_<marker>`), defined by the class of an object of
    the plotting stack. Never an attribute of a class, a module or a function."""
    allowed = _BOUND_METHODS.get(type(obj))
    if allowed is not None and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    listed = isinstance(name, str) and (
        name in _STORED_METHODS or isinstance(obj, MarkerStyle) and name.startswith("_set_")
    )
    if listed and not isinstance(obj, type) and _from_stack(type(obj)):
        for klass in type(obj).__mro__:
            if name in vars(klass):
                if isinstance(vars(klass)[name], types.FunctionType):
                    return getattr(obj, name)
                break
    raise ForgedHandover(f"getattr({type(obj).__name__}, {name!r}) is not a method a figure keeps")


class _FigureUnpickler(pickle.Unpickler):
    def __init__(self, file) -> None:
        super().__init__(file)
        # class -> its attribute names and their values' ids when the pickle first named it:
        # BUILD on a class object sets class attributes, i.e. would patch the drawer's own
        # plotting code.
        self.classes: dict[type, tuple[tuple[str, ...], tuple[int, ...]]] = {}

    @staticmethod
    def _snapshot(cls: type) -> tuple[tuple[str, ...], tuple[int, ...]]:
        attributes = vars(cls)
        return tuple(attributes), tuple(map(id, attributes.values()))

    def find_class(self, module: str, name: str) -> Any:
        obj = self._find(module, name)
        if isinstance(obj, type) and obj not in self.classes:
            self.classes[obj] = self._snapshot(obj)
        return obj

    def classes_untouched(self) -> bool:
        return all(self._snapshot(cls) == before for cls, before in self.classes.items())

    def _find(self, module: str, name: str) -> Any:
        if module == "builtins":
            if name == "getattr":
                return _safe_getattr
            if name in _BUILTIN_TYPES:
                return super().find_class(module, name)
            raise ForgedHandover(f"builtins.{name} is not allowed in a figure")
        if (module, name) in _FUNCTIONS:
            return super().find_class(module, name)
        if module == _COLORMAP_FUNCTIONS and name.startswith("_g") and name[2:].isdigit():
            return super().find_class(module, name)
        if module == "numpy" and "." not in name:
            import numpy as np

            obj = super().find_class(module, name)
            if isinstance(obj, np.ufunc):  # log, log10, sqrt ...: element-wise arithmetic
                return obj
        if (module, name) in _PLAIN_CLASSES or (module, name) == ("matplotlib.font_manager", "FontProperties"):
            return super().find_class(module, name)
        package = module.split(".")[0]
        if package not in _CLASS_PACKAGES or any(module == d or module.startswith(d + ".") for d in _DENIED_MODULES):
            raise ForgedHandover(f"{module}.{name} is not part of a figure")
        if "." in name:
            # Style classes nest (BoxStyle.Round): every step must be a class, so a dotted
            # path cannot walk into a module, a function's globals or an instance.
            head, *rest = name.split(".")
            obj = super().find_class(module, head)
            for part in rest:
                if not isinstance(obj, type) or not isinstance(vars(obj).get(part), type):
                    raise ForgedHandover(f"{module}.{name} is not a nested class")
                obj = vars(obj)[part]
            return obj
        obj = super().find_class(module, name)
        if not isinstance(obj, type):
            raise ForgedHandover(f"{module}.{name} is a {type(obj).__name__}, not a class")
        if package == "numpy":
            import numpy as np

            # not memmap (it opens files), not the npz/npy readers: arrays, dtypes, scalars
            if (module, name) not in _NUMPY_CLASSES and not issubclass(obj, (np.generic, np.dtype)):
                raise ForgedHandover(f"{module}.{name} is not an array, dtype or scalar type")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise ForgedHandover("persistent ids are not allowed")


_METHOD_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    staticmethod,
    classmethod,
)


def _honest_shadow(obj: Any, key: str, value: Any) -> bool:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar
    from matplotlib.transforms import Transform, TransformWrapper

    if not isinstance(value, types.MethodType):
        return False
    owner, func_name = value.__self__, value.__func__.__name__
    if isinstance(obj, TransformWrapper) and key in _WRAPPER_METHODS:
        return isinstance(owner, Transform) and func_name == key
    if isinstance(obj, Axes) and key in _COLORBAR_METHODS:
        return isinstance(owner, Colorbar) and func_name in (key, "_cbar_cla")
    return False


# Not walked into: code and namespaces (a function's referents are its module's globals),
# classes (checked by _FigureUnpickler.classes_untouched) and plain values.
_OPAQUE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    types.CodeType,
    str,
    bytes,
    int,
    float,
    complex,
    bool,
    type(None),
)


# class -> names of the methods it or a base defines. The server fills it for the classes of
# its warm-up charts before the zygote forks (renderers.warmup), so a drawer seldom computes one.
_METHOD_NAMES: dict[type, frozenset[str]] = {}


def _method_names(cls: type) -> frozenset[str]:
    names = _METHOD_NAMES.get(cls)
    if names is None:
        names = frozenset(k for klass in cls.__mro__ for k, v in vars(klass).items() if isinstance(v, _METHOD_TYPES))
        _METHOD_NAMES[cls] = names
    return names


def _check_graph(root: Any) -> None:
    """No instance may shadow a method of its class (drawing would call the sender's
    object instead), and the graph must be of a size a figure has. Walks everything the
    garbage collector sees as referenced (so partials, arrays of objects and containers too),
    one level at a time."""
    import gc

    import numpy as np

    seen = {id(root)}
    frontier = [root]
    opaque: dict[type, bool] = {}  # type -> not walked into (see _OPAQUE); subclasses count
    plain = (dict, list, tuple, set, frozenset, np.ndarray)  # no __dict__ to check
    while frontier:
        for obj in frontier:
            if type(obj) in plain:
                continue
            state = getattr(obj, "__dict__", None)
            if type(state) is not dict or not state:
                continue
            methods = _method_names(type(obj))
            if methods.isdisjoint(state):  # the common case, decided in C
                continue
            clash = [k for k in state if isinstance(k, str) and k in methods and not _honest_shadow(obj, k, state[k])]
            if clash:
                raise ForgedHandover(f"a {type(obj).__name__} overrides its method(s) {sorted(clash)[:3]}")
        following = []
        # numpy does not report the elements of object arrays to the garbage collector
        hidden = [x for a in frontier if isinstance(a, np.ndarray) and a.dtype.hasobject for x in a.ravel().tolist()]
        for ref in gc.get_referents(*frontier) + hidden:
            kind = type(ref)
            skip = opaque.get(kind)
            if skip is None:
                skip = opaque[kind] = issubclass(kind, _OPAQUE)
            if not skip and id(ref) not in seen:
                seen.add(id(ref))
                following.append(ref)
        if len(seen) > MAX_OBJECTS:
            raise ForgedHandover(f"the figure holds over {MAX_OBJECTS} objects")
        frontier = following


def load_handover(blob: bytes) -> dict[str, Any]:
    """The runner's pickle -> {"figure", "calls", "colors"}, or ForgedHandover."""
    from matplotlib.figure import Figure

    unpickler = _FigureUnpickler(io.BytesIO(blob))
    try:
        data = unpickler.load()
    except ForgedHandover:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a forged one
        raise ForgedHandover(f"unreadable figure pickle: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not unpickler.classes_untouched():
        raise ForgedHandover("the pickle changed attributes of a class")
    if not isinstance(data, dict) or set(data) != {"figure", "calls", "colors"}:
        raise ForgedHandover("the handover is not a figure with its records")
    if not isinstance(data["figure"], Figure):
        raise ForgedHandover(f"the handover holds a {type(data['figure']).__name__}, not a Figure")
    calls, colors = data["calls"], data["colors"]
    if not (
        isinstance(calls, list)
        and all(
            isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], list) for c in calls
        )
    ):
        raise ForgedHandover("malformed call records")
    if not (
        isinstance(colors, list)
        and all(isinstance(c, tuple) and len(c) == 4 and all(isinstance(x, str) for x in c[:3]) for c in colors)
    ):
        raise ForgedHandover("malformed colour records")
    _check_graph(data)
    return data


# --------------------------------------------------------------------------- the runner's side


def _tickers(fig):
    """(axis, "major" | "minor", its Ticker) for every axis of every axes."""
    for ax in fig.axes:
        for axis in getattr(ax, "_axis_map", {}).values():
            for which in ("major", "minor"):
                yield axis, which, getattr(axis, which)


def _freeze_ticks(fig) -> None:
    """Replace every tick formatter and locator by the fixed labels and positions it gives
    now: they are what the chart shows, and fixed ones always pickle."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    for axis, which, ticker in _tickers(fig):
        try:
            # pandas' date tickers pickle, but the drawer loads only the plotting stack
            if all(_from_stack(type(t)) for t in (ticker.formatter, ticker.locator)):
                pickle.dumps((ticker.formatter, ticker.locator))
                continue
        except Exception:  # noqa: BLE001 - the object itself tells us it cannot travel
            pass
        locs = list(getattr(axis, f"get_{which}ticklocs")())
        labels = ticker.formatter.format_ticks(locs) if locs else []
        getattr(axis, f"set_{which}_locator")(FixedLocator(locs) if locs else NullLocator())
        getattr(axis, f"set_{which}_formatter")(FixedFormatter(labels) if locs else NullFormatter())


def _drop_foreign_units(fig) -> None:
    """Axes with a unit converter from outside the plotting stack (pandas' period and date
    converters): their lines keep the numbers already converted, the converter stays here."""
    import numpy as np

    for ax in fig.axes:
        for name, axis in getattr(ax, "_axis_map", {}).items():
            converter = getattr(axis, "_converter", None)
            if converter is None or _from_stack(type(converter)):
                continue
            for line in ax.get_lines():
                attr = f"_{name}orig"
                if name in ("x", "y") and hasattr(line, attr):
                    setattr(line, attr, np.asarray(axis.convert_units(getattr(line, attr)), dtype=float))
                    line._invalidx = line._invalidy = True
            axis._converter = None
            axis.units = None

    # pandas also keeps its own objects on artists (Series as data, ax.freq, ax._plot_data):
    # arrays become numpy arrays, anything else of pandas' is not part of the drawing.
    def foreign(v: Any) -> bool:
        if isinstance(v, functools.partial):
            return foreign(v.func)
        module = getattr(v, "__module__", None) if callable(v) and not isinstance(v, type) else None
        return "pandas" in (type(v).__module__.split(".")[0], str(module).split(".")[0])

    for artist in instrument.drawn_artists(fig).values():
        for key, value in list(vars(artist).items()):
            if foreign(value):
                if hasattr(value, "__array__"):
                    setattr(artist, key, np.asarray(value))
                else:
                    delattr(artist, key)
            elif isinstance(value, (list, tuple)) and any(
                foreign(v) or isinstance(v, (list, tuple)) and any(map(foreign, v)) for v in value
            ):
                delattr(artist, key)


def _local(obj: Any) -> bool:
    """Defined inside a function: pickle cannot name it, so it cannot travel."""
    return "<locals>" in getattr(obj, "__qualname__", "")


def _leave_out_local_objects(fig) -> set[int]:
    """Artists of a class defined inside a function (networkx's curved edge labels) become
    their nearest importable base class; artists that keep a function defined inside a
    function (networkx's self-loop connector) are left out. Returns the ids of those."""
    left_out = set()
    for artist in list(instrument.drawn_artists(fig).values()):
        cls = type(artist)
        if _local(cls):
            try:
                artist.__class__ = next(b for b in cls.__mro__ if not _local(b) and _from_stack(b))
            except TypeError:
                pass
        if any(isinstance(v, types.FunctionType) and _local(v) or _local(type(v)) for v in vars(artist).values()):
            try:
                artist.remove()
                left_out.add(id(artist))
            except (NotImplementedError, ValueError):
                pass
    return left_out


def pack_handover(fig, calls: list, colors: list) -> tuple[bytes, str | None]:
    """The runner's figure and records as one pickle (raises when they cannot travel), and
    a note when parts of the figure had to be frozen or left out to travel."""
    payload = {"figure": fig, "calls": calls, "colors": colors}
    foreign = any(
        not _from_stack(type(t)) for _, _, ticker in _tickers(fig) for t in (ticker.formatter, ticker.locator)
    )
    if foreign:
        _freeze_ticks(fig)  # pandas' date tickers: the drawer would refuse them
        _drop_foreign_units(fig)
    try:
        return pickle.dumps(payload, protocol=5), None
    except Exception:  # noqa: BLE001 - retried below after freezing what usually fails
        pass
    _freeze_ticks(fig)
    try:
        return pickle.dumps(payload, protocol=5), None
    except Exception:  # noqa: BLE001 - one more way below
        pass
    left_out = _leave_out_local_objects(fig)
    payload["calls"] = [(kind, [a for a in artists if id(a) not in left_out]) for kind, artists in calls]
    payload["colors"] = [
        c
        for c in colors
        if id(c[3]) not in left_out and not (isinstance(c[3], list) and any(id(a) in left_out for a in c[3]))
    ]
    note = (
        f"{len(left_out)} artist(s) keeping code defined inside a function could not leave the sandbox "
        f"and were left out"
        if left_out
        else None
    )
    return pickle.dumps(payload, protocol=5), note
