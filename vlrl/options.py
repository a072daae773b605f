"""`key=value` command-line options parsed into typed dataclasses.

Every command declares its options as a dataclass whose fields carry a `help` string in
their metadata; the same declaration gives parsing, type conversion, defaults, `--help`
text and the "unknown key" error that names the closest valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


class UserError(ValueError):
    """Something the user can fix (bad option, bad file); printed as one line, no traceback."""


class OptionError(UserError):
    """A bad command-line option; the message names the culprit."""


def option(default: Any = dataclasses.MISSING, help: str = "", *, minimum: float | None = None, **kwargs: Any) -> Any:
    """A dataclass field with a help string and, for counts and sizes, the least value it
    takes (checked by `check_options`); mutable defaults are copied per instance."""
    metadata = {"help": help}
    if minimum is not None:
        metadata["minimum"] = minimum
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_options(settings: Any, prefix: str = "") -> None:
    """The one way options are validated: every field's declared `minimum`, then the
    dataclass's own `validate()` for rules across fields, then the same for each nested
    section. Called once a whole set of options is assembled (after every override), so
    settings changed key by key are checked as they end up."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        low = f.metadata.get("minimum")
        if low is not None and value is not None and value < low:
            raise OptionError(f"{prefix}{f.name}={value}: must be at least {low:g}")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_options(value, f"{prefix}{f.name}.")
    validate = getattr(settings, "validate", None)
    if validate is not None:
        try:
            validate()
        except OptionError as exc:
            if prefix and not str(exc).startswith(prefix):
                raise OptionError(f"{prefix}{exc}") from None
            raise


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def convert(value: str, tp: Any, key: str) -> Any:
    """Convert the text after `key=` to the field's type."""
    tp, optional = _unwrap_optional(tp)
    if optional and value.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
        if tp is str or tp is Any:
            return value
        if origin in (list, tuple, Sequence) or tp in (list, tuple):
            (inner,) = typing.get_args(tp)[:1] or (str,)
            items = [v for v in value.split(",") if v != ""]
            return [convert(v, inner, key) for v in items]
        if origin is typing.Literal:
            choices = typing.get_args(tp)
            if value not in choices:
                raise OptionError(f"{key}={value}: expected one of {', '.join(map(str, choices))}")
            return value
    except OptionError:
        raise
    except (TypeError, ValueError):
        raise OptionError(f"{key}={value}: expected {getattr(tp, '__name__', tp)}") from None
    return value


def parse_options(cls: type[T], args: Sequence[str], *, positional: str | None = None, dotted: str | None = None) -> T:
    """Build `cls` from `key=value` tokens; bare tokens go to the list field `positional`,
    and `section.key=value` tokens whole to the list field `dotted` (keys of the run
    config, which the command checks itself)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    bare: list[str] = []
    for token in args:
        if "=" not in token or token.startswith(("/", "./", "../")):
            bare.append(token)
            continue
        key, _, raw = token.partition("=")
        key = key.strip().replace("-", "_")
        if dotted is not None and "." in key:
            values.setdefault(dotted, []).append(token)
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; valid options: {', '.join(fields)}"
            raise OptionError(f"unknown option '{key}'{hint}")
        values[key] = convert(raw, hints[key], key)
    preset_values = getattr(cls, "preset_values", None)
    if preset_values is not None:  # defaults that depend on other options (a model's preset)
        values = {**{k: v for k, v in preset_values(values).items() if k in fields}, **values}
    if bare:
        if positional is None:
            raise OptionError(f"unexpected argument '{bare[0]}' (options are written key=value)")
        values[positional] = list(values.get(positional, [])) + bare
    missing = [
        f.name
        for f in fields.values()
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise OptionError(
            f"missing required option{'s' if len(missing) > 1 else ''}: " + ", ".join(f"{m}=..." for m in missing)
        )
    settings = cls(**values)
    check_options(settings)
    return settings


def describe_options(cls: type) -> str:
    """One line per option: name, type, default and meaning (for --help)."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        if isinstance(default, list):
            default = ",".join(map(str, default)) or "(none)"
        tp, _ = _unwrap_optional(hints[f.name])
        tname = getattr(tp, "__name__", str(tp).replace("typing.", ""))
        if tname == "Literal":
            tname = "|".join(map(str, typing.get_args(tp)))
        lines.append((f"{f.name}={default!s}", tname, f.metadata.get("help", "")))
    width = min(40, max((len(a) for a, _, _ in lines), default=0))
    return "\n".join(f"  {a:<{width}} [{t}] {h}" for a, t, h in lines)
