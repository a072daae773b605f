"""Code emission: turn a chart spec into the matplotlib script a person would plausibly write.

Scripts contain only literals (no randomness, no file reads), so rendering one is
deterministic, and the same spec always yields the same text byte for byte.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Callable, Sequence

from vlrl.datasets.synth.conventions import _GRID_SHAPES, _decimals, _has_negative, _panel_position

# Only scripts that use numpy import it, as a person writing them would.
_NUMPY_FAMILIES = ("grouped_bar", "stacked_bar", "heatmap", "radar")

_WIDTH = 88
# Names the templates use themselves; series-derived variables must avoid them.
_RESERVED = frozenset(
    {
        "plt",
        "np",
        "fig",
        "ax",
        "axes",
        "x",
        "y",
        "width",
        "data",
        "colors",
        "labels",
        "values",
        "angles",
        "bottom",
        "bars",
        "bp",
        "parts",
        "im",
        "i",
        "j",
        "name",
        "color",
        "patch",
        "body",
        "offset",
        "row_labels",
        "col_labels",
        "sizes",
        "shares",
    }
)


def _num(v: float | int) -> str:
    if isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return repr(round(float(v), 2) + 0.0)


def _str_lit(text: str) -> str:
    """Double-quoted like the rest of the template; repr() does the escaping."""
    r = repr(text)
    # repr only picks single quotes when the text has no apostrophe, so they can be swapped
    # for double quotes whenever the text has no double quote either.
    if r[0] == "'" and '"' not in text:
        return '"' + r[1:-1] + '"'
    return r


def _lit(v: Any) -> str:
    """Python literal for ``v``; repr() picks quotes that survive apostrophes."""
    if isinstance(v, str):
        return _str_lit(v)
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, (int, float)):
        return _num(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_lit(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    raise TypeError(f"cannot emit a literal for {type(v).__name__}")


def _wrap(items: list[str], indent: str) -> list[str]:
    lines, cur = [], ""
    for item in items:
        piece = item + ","
        if cur and len(indent) + len(cur) + 1 + len(piece) > _WIDTH:
            lines.append(indent + cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        lines.append(indent + cur)
    return lines


def _list_lines(prefix: str, value: list, suffix: str, indent: str = "") -> list[str]:
    """``prefix[...]suffix``, wrapped like black would if it is too long."""
    one = f"{indent}{prefix}{_lit(value)}{suffix}"
    if len(one) <= _WIDTH:
        return [one]
    inner = indent + "    "
    if value and isinstance(value[0], list):
        body = [ln for row in value for ln in _list_lines("", row, ",", inner)]
    else:
        body = _wrap([_lit(x) for x in value], inner)
    return [f"{indent}{prefix}["] + body + [f"{indent}]{suffix}"]


def _assign(name: str, value: Any) -> list[str]:
    if isinstance(value, list):
        return _list_lines(f"{name} = ", value, "")
    return [f"{name} = {_lit(value)}"]


def _dict_lines(name: str, items: list[tuple[str, list]]) -> list[str]:
    lines = [f"{name} = {{"]
    for key, values in items:
        lines += _list_lines(f"{_lit(key)}: ", values, ",", "    ")
    return lines + ["}"]


def _ident(text: str, taken: set[str], suffixes: Sequence[str] = ("",)) -> str:
    """A readable variable name for ``text`` that collides with nothing in ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "series"
    if base[0].isdigit():
        base = f"series_{base}"
    candidate, n = base, 1
    while keyword.iskeyword(candidate) or any(candidate + s in taken for s in suffixes):
        n += 1
        candidate = f"{base}_{n}"
    taken.update(candidate + s for s in suffixes)
    return candidate


def _series_vars(p: dict, suffixes: Sequence[str] = ("",)) -> list[str]:
    taken = set(_RESERVED) | {p.get("cat_var", "categories")}
    return [_ident(s["name"], taken, suffixes) for s in p["series"]]


def _kwargs(**kw: Any) -> str:
    """``k=v`` pairs, leaving out the ones that are None (i.e. the matplotlib default)."""
    return ", ".join(f"{k}={_lit(v)}" for k, v in kw.items() if v is not None)


def _legend_line(p: dict, **extra: Any) -> str:
    loc = p.get("legend_loc", "best")
    return f"ax.legend({_kwargs(loc=loc, title=p.get('legend_title'), **extra)})"


def _decorate(p: dict, legend: bool, grid_axis: str | None = "both") -> list[str]:
    lines = []
    for key in ("title", "xlabel", "ylabel"):
        if p.get(key):
            lines.append(f"ax.set_{key}({_lit(p[key])})")
    if p.get("rotate"):
        lines.append(f'plt.setp(ax.get_xticklabels(), rotation={p["rotate"]}, ha="right")')
    if legend:
        lines.append(_legend_line(p))
    if p.get("grid") and grid_axis:
        if grid_axis == "both":
            lines.append('ax.grid(True, linestyle="--", alpha=0.5)')
        else:  # bar charts: gridlines along the value axis only, drawn behind the bars
            lines.append(f'ax.grid(axis="{grid_axis}", linestyle="--", alpha=0.5)')
            lines.append("ax.set_axisbelow(True)")
    return lines


def _fmt(values: list) -> str:
    return f"%.{_decimals(values)}f"


def _emit_bar(p: dict, horizontal: bool = False) -> tuple[list[str], list[str]]:
    cv, s = p["cat_var"], p["series"][0]
    var = _series_vars(p)[0]
    data = _assign(cv, p["categories"]) + _assign(var, s["values"])
    fn = "barh" if horizontal else "bar"
    call = f"ax.{fn}({cv}, {var}, {_kwargs(color=s['color'], edgecolor=p.get('edgecolor'))})"
    plot = [f"bars = {call}" if p.get("bar_labels") else call]
    if p.get("bar_labels"):
        plot.append(f"ax.bar_label(bars, fmt={_lit(_fmt(s['values']))}, padding=3)")
    if _has_negative(p):
        plot.append(f'ax.ax{"v" if horizontal else "h"}line(0, color="black", linewidth=0.8)')
    if horizontal and p.get("invert"):
        plot.append("ax.invert_yaxis()  # largest first, reading top to bottom")
    return data, plot + _decorate(p, legend=False, grid_axis="x" if horizontal else "y")


def _emit_barh(p: dict) -> tuple[list[str], list[str]]:
    return _emit_bar(p, horizontal=True)


def _multi_series_data(p: dict) -> list[str]:
    cv = p["cat_var"]
    items = [(s["name"], s["values"]) for s in p["series"]]
    return (
        _assign(cv, p["categories"]) + _dict_lines("data", items) + _assign("colors", [s["color"] for s in p["series"]])
    )


def _emit_grouped_bar(p: dict) -> tuple[list[str], list[str]]:
    cv = p["cat_var"]
    data = _multi_series_data(p) + ["", f"x = np.arange(len({cv}))", "width = 0.8 / len(data)"]
    plot = [
        "for i, (name, values) in enumerate(data.items()):",
        "    offset = (i - (len(data) - 1) / 2) * width",
        "    ax.bar(x + offset, values, width, label=name, color=colors[i])",
        f"ax.set_xticks(x, {cv})",
    ]
    if _has_negative(p):
        plot.append('ax.axhline(0, color="black", linewidth=0.8)')
    return data, plot + _decorate(p, legend=True, grid_axis="y")


def _emit_stacked_bar(p: dict) -> tuple[list[str], list[str]]:
    cv = p["cat_var"]
    plot = [
        f"bottom = np.zeros(len({cv}))",
        "for (name, values), color in zip(data.items(), colors):",
        f"    ax.bar({cv}, values, bottom=bottom, label=name, color=color)",
        "    bottom += values",
    ]
    return _multi_series_data(p), plot + _decorate(p, legend=True, grid_axis="y")


def _emit_line(p: dict) -> tuple[list[str], list[str]]:
    cv, legend = p["cat_var"], len(p["series"]) > 1
    names = _series_vars(p)
    data = _assign(cv, p["categories"])
    plot = []
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"])
        kw = _kwargs(
            color=s["color"],
            marker=s.get("marker"),
            linestyle=s.get("linestyle", "-"),
            linewidth=p.get("linewidth", 2),
            label=s["name"] if legend else None,
        )
        plot.append(f"ax.plot({cv}, {var}, {kw})")
    if _has_negative(p):
        plot.append('ax.axhline(0, color="gray", linewidth=0.8)')
    return data, plot + _decorate(p, legend=legend)


def _emit_area(p: dict) -> tuple[list[str], list[str]]:
    cv, legend = p["cat_var"], len(p["series"]) > 1
    names = _series_vars(p)
    data = _assign(cv, p["categories"])
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"])
    if p.get("stacked"):
        kw = _kwargs(
            labels=[s["name"] for s in p["series"]], colors=[s["color"] for s in p["series"]], alpha=p.get("alpha", 0.8)
        )
        plot = [f"ax.stackplot({cv}, {', '.join(names)}, {kw})"]
    else:
        plot = []
        for var, s in zip(names, p["series"]):
            kw = _kwargs(color=s["color"], alpha=p.get("alpha", 0.4), label=s["name"] if legend else None)
            plot += [
                f"ax.fill_between({cv}, {var}, {kw})",
                f"ax.plot({cv}, {var}, color={_lit(s['color'])}, linewidth=1.5)",
            ]
    plot.append("ax.margins(x=0)")
    return data, plot + _decorate(p, legend=legend)


def _emit_errorbar(p: dict) -> tuple[list[str], list[str]]:
    cv, legend = p["cat_var"], len(p["series"]) > 1
    names = _series_vars(p, suffixes=("", "_err"))
    data = _assign(cv, p["categories"])
    plot = []
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"]) + _assign(f"{var}_err", s["errors"])
        kw = _kwargs(
            color=s["color"],
            marker=s.get("marker"),
            linestyle=s.get("linestyle"),
            capsize=p.get("capsize", 4),
            label=s["name"] if legend else None,
        )
        plot.append(f"ax.errorbar({cv}, {var}, yerr={var}_err, {kw})")
    return data, plot + _decorate(p, legend=legend)


def _emit_scatter(p: dict) -> tuple[list[str], list[str]]:
    series, legend = p["series"], len(p["series"]) > 1
    if legend:
        taken = set(_RESERVED)
        pairs = [(f"{b}_x", f"{b}_y") for b in (_ident(s["name"], taken, ("_x", "_y")) for s in series)]
    else:
        pairs = [("x", "y")]
    data, plot = [], []
    for (xv, yv), s in zip(pairs, series):
        data += _assign(xv, s["x"]) + _assign(yv, s["y"])
        kw = _kwargs(
            s=s.get("size", 40),
            color=s["color"],
            marker=s["marker"],
            alpha=p.get("alpha"),
            label=s["name"] if legend else None,
        )
        plot.append(f"ax.scatter({xv}, {yv}, {kw})")
    return data, plot + _decorate(p, legend=legend)


def _emit_pie(p: dict) -> tuple[list[str], list[str]]:
    vv = p.get("value_var", "sizes")
    data = _assign("labels", p["labels"]) + _assign(vv, p["values"]) + _assign("colors", p["colors"])
    kw = {
        "labels": None if p.get("legend") else "labels",
        "colors": "colors",
        "autopct": '"%1.1f%%"' if p.get("autopct") else None,
        "startangle": str(p.get("startangle", 90)),
    }
    if p.get("hole"):
        kw["wedgeprops"] = f'dict(width={_num(p["hole"])}, edgecolor="white")'
        if p.get("autopct"):
            kw["pctdistance"] = _num(round(1 - p["hole"] / 2, 2))
    args = ", ".join(f"{k}={v}" for k, v in kw.items() if v is not None)
    plot = [f"ax.pie({vv}, {args})"]
    if p.get("legend"):
        plot.append('ax.legend(labels, loc="center left", bbox_to_anchor=(1, 0.5))')
    if p.get("title"):
        plot.append(f"ax.set_title({_lit(p['title'])})")
    return data, plot


_emit_donut = _emit_pie


def _emit_hist(p: dict) -> tuple[list[str], list[str]]:
    legend = len(p["series"]) > 1
    names = _series_vars(p)
    data, plot = [], []
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"])
        kw = _kwargs(
            bins=p.get("bins", 10),
            color=s["color"],
            alpha=p.get("alpha"),
            edgecolor=p.get("edgecolor"),
            label=s["name"] if legend else None,
        )
        plot.append(f"ax.hist({var}, {kw})")
    return data, plot + _decorate(p, legend=legend, grid_axis="y")


def _dist_data(p: dict) -> list[str]:
    return _assign("labels", p["labels"]) + _assign("data", p["data"]) + _assign("colors", p["colors"])


def _emit_box(p: dict) -> tuple[list[str], list[str]]:
    plot = [
        "bp = ax.boxplot(data, patch_artist=True)",
        'for patch, color in zip(bp["boxes"], colors):',
        "    patch.set_facecolor(color)",
        "ax.set_xticks(range(1, len(labels) + 1), labels)",
    ]
    return _dist_data(p), plot + _decorate(p, legend=False, grid_axis="y")


def _emit_violin(p: dict) -> tuple[list[str], list[str]]:
    plot = [
        f"parts = ax.violinplot(data, showmedians={p.get('show_medians', True)!r})",
        'for body, color in zip(parts["bodies"], colors):',
        "    body.set_facecolor(color)",
        '    body.set_edgecolor("black")',
        "    body.set_alpha(0.75)",
        "ax.set_xticks(range(1, len(labels) + 1), labels)",
    ]
    return _dist_data(p), plot + _decorate(p, legend=False, grid_axis="y")


def _emit_heatmap(p: dict) -> tuple[list[str], list[str]]:
    data = (
        _assign("row_labels", p["rows"])
        + _assign("col_labels", p["cols"])
        + _list_lines("data = np.array(", p["matrix"], ")")
    )
    kw = _kwargs(cmap=p["cmap"], aspect="auto", vmin=p.get("vmin"), vmax=p.get("vmax"))
    plot = [
        f"im = ax.imshow(data, {kw})",
        f"fig.colorbar(im, ax=ax, label={_lit(p['cbar_label'])})",
        "ax.set_xticks(np.arange(len(col_labels)), col_labels)",
        "ax.set_yticks(np.arange(len(row_labels)), row_labels)",
    ]
    if p.get("annotate"):
        cell = 'f"{data[i, j]:.' + str(_decimals([v for r in p["matrix"] for v in r])) + 'f}"'
        plot += [
            "for i in range(len(row_labels)):",
            "    for j in range(len(col_labels)):",
            f'        ax.text(j, i, {cell}, ha="center", va="center", '
            f"color={_lit(p.get('annot_color', 'black'))}, fontsize=8)",
        ]
    return data, plot + _decorate(p, legend=False, grid_axis=None)


def _emit_radar(p: dict) -> tuple[list[str], list[str]]:
    legend = len(p["series"]) > 1
    names = _series_vars(p)
    data = _assign("labels", p["labels"])
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"])
    # Repeating the first point closes the polygon.
    data += ["", "angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()", "angles += angles[:1]"]
    plot = []
    for var, s in zip(names, p["series"]):
        kw = _kwargs(
            color=s["color"],
            linewidth=2,
            linestyle=s.get("linestyle", "-"),
            marker=s.get("marker"),
            label=s["name"] if legend else None,
        )
        plot += [
            f"values = {var} + {var}[:1]",
            f"ax.plot(angles, values, {kw})",
            f"ax.fill(angles, values, {_kwargs(color=s['color'], alpha=p.get('fill_alpha', 0.25))})",
        ]
    plot += [
        "ax.set_xticks(angles[:-1], labels)",
        f"ax.set_ylim(0, {_num(p['rmax'])})",
        f"ax.set_title({_lit(p['title'])}, pad=20)",
    ]
    if legend:
        plot.append('ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))')
    return data, plot


_EMITTERS: dict[str, Callable[[dict], tuple[list[str], list[str]]]] = {
    "bar": _emit_bar,
    "barh": _emit_barh,
    "grouped_bar": _emit_grouped_bar,
    "stacked_bar": _emit_stacked_bar,
    "line": _emit_line,
    "area": _emit_area,
    "errorbar": _emit_errorbar,
    "scatter": _emit_scatter,
    "pie": _emit_pie,
    "donut": _emit_donut,
    "hist": _emit_hist,
    "box": _emit_box,
    "violin": _emit_violin,
    "heatmap": _emit_heatmap,
    "radar": _emit_radar,
}


def _imports(families: Sequence[str]) -> list[str]:
    lines = ["import matplotlib.pyplot as plt"]
    if any(f in _NUMPY_FAMILIES for f in families):
        lines.append("import numpy as np")
    return lines


def _figsize_lit(p: dict) -> str:
    return _lit(tuple(p.get("figsize", (8, 5))))


def _render(family: str, p: dict) -> str:
    if family in _GRID_SHAPES:
        return _render_grid(family, p)
    data, plot = _EMITTERS[family](p)
    polar = ", subplot_kw=dict(polar=True)" if family == "radar" else ""
    subplots = f"fig, ax = plt.subplots(figsize={_figsize_lit(p)}{polar})"
    lines = (
        _imports([family])
        + [""]
        + data
        + ["", subplots]
        + plot
        + ["", "plt.tight_layout()", 'plt.savefig("chart.png")']
    )
    return "\n".join(lines) + "\n"


def _render_grid(family: str, p: dict) -> str:
    nrows, ncols = _GRID_SHAPES[family]
    lines = _imports([panel["family"] for panel in p["panels"]]) + [
        "",
        f"fig, axes = plt.subplots({nrows}, {ncols}, figsize={_figsize_lit(p)})",
    ]
    for k, panel in enumerate(p["panels"]):
        index, where = _panel_position(nrows, ncols, k)
        data, plot = _EMITTERS[panel["family"]](panel["params"])
        lines += ["", f"# {where.capitalize()}", f"ax = axes[{index}]"] + [ln for ln in data if ln] + plot
    if p.get("suptitle"):
        lines += ["", f"fig.suptitle({_lit(p['suptitle'])})"]
    lines += ["", "plt.tight_layout()", 'plt.savefig("chart.png")']
    return "\n".join(lines) + "\n"
