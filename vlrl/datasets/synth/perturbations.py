"""Perturbations: edit a chart spec and describe the edit exactly.

The Who-is-the-Spy chart pairs (games/chart_pairs.py) and the contrastive rewards are
built from these: because the edit is made on the spec, the description says precisely
what differs between the two charts.  This module needs only the spec and the
vocabulary, not the generators or the code emitter.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from typing import Any, Callable, NamedTuple, Sequence

from vlrl.datasets.synth.conventions import (
    _BAR_FAMILIES,
    _CATEGORY_FAMILIES,
    _DIST_FAMILIES,
    _GRID_SHAPES,
    _PIE_FAMILIES,
    _decimals,
    _has_negative,
    _panel_position,
    _rotation,
    _round,
)
from vlrl.datasets.synth.spec import ChartSpec
from vlrl.datasets.synth.vocabulary import (
    _DIMENSIONS,
    _DIST_DOMAINS,
    _ERRORBAR_GROUPS,
    _ERRORBAR_X,
    _ERRORBAR_Y,
    _GENERIC_NAMES,
    _HEATMAP_DOMAINS,
    _METRICS,
    _RADAR_DOMAINS,
    _SCATTER_DOMAINS,
    _SERIES_GROUPS,
    _SUPTITLES,
    LINESTYLES,
    MARKERS,
    _title,
)

PERTURBATIONS: tuple[str, ...] = (
    "change_value",
    "swap_colors",
    "rename_label",
    "change_chart_type",
    "change_marker",
    "change_linestyle",
)


class PerturbationNotApplicable(ValueError):
    """The requested perturbation has nothing to act on in this chart."""


# Pools a renamed label is drawn from; a label is replaced by an unused item
# of the list it came from so a renamed month is still a month.
_VOCAB_LISTS: tuple[list, ...] = tuple(
    [d.values for d in _DIMENSIONS if all(isinstance(v, str) for v in d.values)]
    + [g for _, g in _SERIES_GROUPS]
    + [list(d.groups) for d in _SCATTER_DOMAINS + _DIST_DOMAINS]
    + [d[1] for d in _RADAR_DOMAINS]
    + [d[2] for d in _RADAR_DOMAINS]
    + [d["rows"] for d in _HEATMAP_DOMAINS]
    + [d["cols"] for d in _HEATMAP_DOMAINS if d["cols"]]
    + [list(g) for g in _ERRORBAR_GROUPS]
    + [x[2] for x in _ERRORBAR_X if isinstance(x[2][0], str)]
)
# A renamed axis label stays the same sort of label: a quantity with units, or a grouping noun.
_VALUE_LABELS = tuple(
    sorted(
        {m.label for m in _METRICS + _ERRORBAR_Y}
        | {d.xlabel for d in _SCATTER_DOMAINS}
        | {d.ylabel for d in _SCATTER_DOMAINS}
        | {d.label for d in _DIST_DOMAINS}
        | {d.count_label for d in _DIST_DOMAINS}
        | {x[0] for x in _ERRORBAR_X if "(" in x[0]}
    )
)
_GROUP_LABELS = tuple(
    sorted(
        {d.label for d in _DIMENSIONS}
        | {d.groups_label for d in _DIST_DOMAINS}
        | {g for g, _ in _SERIES_GROUPS}
        | {d[key] for d in _HEATMAP_DOMAINS for key in ("xlabel", "ylabel") if d[key]}
    )
)


# Each perturber edits a fresh copy of the spec in place and returns its
# description.  "Slot" helpers list what a perturbation could touch; a kind is
# applicable exactly when its slot list is non-empty, so applicability and
# behaviour cannot drift apart.

Path = tuple  # keys/indices from params down to one value


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _set(obj: Any, path: Path, value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def _has_legend(family: str, p: dict) -> bool:
    if family in _PIE_FAMILIES:
        return True  # wedge labels or a legend: either way the names are drawn
    return "series" in p and len(p["series"]) > 1


# -- change_value -------------------------------------------------------------


class _ValueSlot(NamedTuple):
    series: str
    index: Any
    category: Any
    path: Path


def _value_slots(family: str, p: dict) -> list[_ValueSlot]:
    if family in _CATEGORY_FAMILIES:
        return [
            _ValueSlot(s["name"], j, p["categories"][j], ("series", i, "values", j))
            for i, s in enumerate(p["series"])
            for j in range(len(s["values"]))
        ]
    if family == "scatter":
        return [
            _ValueSlot(s["name"], j, s["x"][j], ("series", i, "y", j))
            for i, s in enumerate(p["series"])
            for j in range(len(s["y"]))
        ]
    if family == "radar":
        return [
            _ValueSlot(s["name"], j, p["labels"][j], ("series", i, "values", j))
            for i, s in enumerate(p["series"])
            for j in range(len(s["values"]))
        ]
    if family in _PIE_FAMILIES:
        return [_ValueSlot(lab, j, lab, ("values", j)) for j, lab in enumerate(p["labels"])]
    if family == "heatmap":
        return [
            _ValueSlot(r, [i, j], c, ("matrix", i, j)) for i, r in enumerate(p["rows"]) for j, c in enumerate(p["cols"])
        ]
    # hist/box/violin hold raw samples: moving one sample need not change the picture.
    return []


def _value_bounds(family: str, p: dict, values: list) -> tuple[float, float]:
    """(lowest, highest) allowed new value."""
    # An all-positive chart stays positive: a bar flipping below zero is a different kind of change.
    lo, hi = (0.0 if min(values) >= 0 else -math.inf), math.inf
    if family in _PIE_FAMILIES:
        lo = 0.05 * max(values)  # a wedge may shrink but not vanish
    if family == "radar":
        hi = p["rmax"]
    if family == "heatmap" and p.get("vmin") is not None:
        lo, hi = p["vmin"], p["vmax"]
    return lo, hi


def _axis_range(family: str, p: dict, values: list) -> float:
    """Roughly the extent of the value axis, against which a change must stand out."""
    if family == "radar":
        return float(p["rmax"])
    if family == "heatmap" and p.get("vmin") is not None:
        return float(p["vmax"] - p["vmin"])
    if family == "stacked_bar" or (family == "area" and p.get("stacked")):
        values = [sum(col) for col in zip(*(s["values"] for s in p["series"]))]
    if family in _BAR_FAMILIES + _PIE_FAMILIES + ("area",):
        values = values + [0]  # these are drawn from zero
    return (max(values) - min(values)) or abs(max(values)) or 1.0


def _visible(old: float, new: float, ref: float) -> bool:
    """At least 20% relative and 5% of the axis range, so a viewer can see it."""
    diff = abs(new - old)
    return diff >= 0.2 * abs(old) and diff >= 0.05 * ref and new != old


def _new_value(rng: random.Random, old: float, lo: float, hi: float, ref: float, decimals: int) -> float | int:
    mag = max(0.3 * abs(old), 0.12 * ref) * rng.uniform(1.0, 1.4)
    for _ in range(8):
        directions = [1, -1]
        rng.shuffle(directions)
        for d in directions:
            new = _round(old + d * mag, decimals)
            if lo <= new <= hi and _visible(old, new, ref):
                return new
        mag *= 0.8 if mag > 0.12 * ref else 1.3
    raise PerturbationNotApplicable(f"no visible in-range change for value {old!r}")


def _p_change_value(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    p = spec.params
    slots = _value_slots(spec.family, p)
    if not slots:
        raise PerturbationNotApplicable(
            f"change_value does not apply to {spec.family} charts (no individually plotted values)"
        )
    values = [_get(p, s.path) for s in slots]
    lo, hi = _value_bounds(spec.family, p, values)
    slot = rng.choice(slots)
    old = _get(p, slot.path)
    new = _new_value(rng, old, lo, hi, _axis_range(spec.family, p, values), _decimals(values))
    _set(p, slot.path, new)
    if spec.family == "scatter":
        where = f" at x={slot.category}"
    else:  # a pie wedge is its own category; "Tablets at Tablets" would read oddly
        where = f" at {slot.category}" if slot.category != slot.series else ""
    return {
        "kind": "change_value",
        "series": slot.series,
        "index": slot.index,
        "category": slot.category,
        "before": old,
        "after": new,
        "text": f"value of {slot.series}{where} changed from {old} to {new}",
    }


# -- swap_colors --------------------------------------------------------------


def _color_slots(family: str, p: dict) -> list[tuple[str, Path]]:
    if family in _PIE_FAMILIES or family in _DIST_FAMILIES:
        return [(lab, ("colors", i)) for i, lab in enumerate(p["labels"])]
    if "series" in p:
        return [(s["name"], ("series", i, "color")) for i, s in enumerate(p["series"])]
    return []  # heatmap: a colormap, not per-item colours


def _p_swap_colors(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    p = spec.params
    slots = _color_slots(spec.family, p)
    distinct = len({_get(p, path) for _, path in slots})
    if len(slots) < 2 or distinct < 2:
        raise PerturbationNotApplicable(
            f"swap_colors needs two differently coloured series; this {spec.family} chart has {len(slots)}"
        )
    (a, pa), (b, pb) = rng.sample(slots, 2)
    while _get(p, pa) == _get(p, pb):
        (a, pa), (b, pb) = rng.sample(slots, 2)
    ca, cb = _get(p, pa), _get(p, pb)
    _set(p, pa, cb)
    _set(p, pb, ca)
    return {
        "kind": "swap_colors",
        "series": [a, b],
        "before": [ca, cb],
        "after": [cb, ca],
        "text": f"colours of {a} and {b} swapped",
    }


# -- rename_label -------------------------------------------------------------


def _rename_slots(family: str, p: dict) -> list[tuple[str, Path]]:
    """(target, path) of every label that is actually drawn."""
    slots = [(key, (key,)) for key in ("title", "xlabel", "ylabel") if p.get(key)]
    if family in _PIE_FAMILIES:
        slots += [("series", ("labels", i)) for i in range(len(p["labels"]))]
    elif family in _DIST_FAMILIES or family == "radar":
        slots += [("category", ("labels", i)) for i in range(len(p["labels"]))]
    elif family == "heatmap":
        slots += [("category", ("rows", i)) for i in range(len(p["rows"]))]
        slots += [("category", ("cols", j)) for j in range(len(p["cols"]))]
    if family in _CATEGORY_FAMILIES and all(isinstance(c, str) for c in p["categories"]):
        slots += [("category", ("categories", j)) for j in range(len(p["categories"]))]
    if "series" in p and _has_legend(family, p):
        slots += [("series", ("series", i, "name")) for i in range(len(p["series"]))]
    return slots


def _siblings(p: dict, path: Path) -> list:
    """The labels ``path`` must stay distinct from (its list, or the other series names)."""
    if path[0] == "series":
        return [s["name"] for s in p["series"]]
    if path[0] in ("labels", "rows", "cols", "categories"):
        return list(p[path[0]])
    return []


def _fresh(options: Sequence, old: Any, used: Sequence) -> list[str]:
    return [o for o in dict.fromkeys(options) if isinstance(o, str) and o != old and o not in used]


def _replacement(target: str, old: str, used: Sequence, rng: random.Random) -> str:
    if target in ("title", "suptitle"):
        pairs = zip(rng.sample(_METRICS, 4), rng.sample(_DIMENSIONS, 4))
        options = _fresh([_title(rng, m.name, d.label) for m, d in pairs] + list(_SUPTITLES), old, used)
    elif target in ("xlabel", "ylabel"):
        options = _fresh(_GROUP_LABELS if old in _GROUP_LABELS else _VALUE_LABELS, old, used)
    else:
        # An unused word from the label's own vocabulary keeps a renamed month a month.
        options = _fresh([x for v in _VOCAB_LISTS if old in v for x in v], old, used)
        options = options or _fresh(_GENERIC_NAMES, old, used)
    return rng.choice(options)


_TARGET_NOUNS = {
    "title": "title",
    "suptitle": "figure title",
    "xlabel": "x-axis label",
    "ylabel": "y-axis label",
    "series": "legend label",
    "category": "tick label",
}


def _p_rename_label(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    p = spec.params
    slots = _rename_slots(spec.family, p)
    if not slots:
        raise PerturbationNotApplicable(f"rename_label: this {spec.family} chart draws no labels")
    # Choose the kind of label first so a title is as likely as one of twelve ticks.
    target = rng.choice(sorted({t for t, _ in slots}))
    path = rng.choice([path for t, path in slots if t == target])
    old = _get(p, path)
    new = _replacement(target, old, _siblings(p, path), rng)
    _set(p, path, new)
    return {
        "kind": "rename_label",
        "target": target,
        "before": old,
        "after": new,
        "text": f"{_TARGET_NOUNS[target]} {old!r} renamed to {new!r}",
    }


# -- change_chart_type --------------------------------------------------------

# (from, to) -> style attributes that survive the conversion (none, if absent).
# perturb_random uses it so an earlier marker/linestyle change is not converted away.
_KEPT_STYLE = {
    ("line", "scatter"): {"marker"},
    ("scatter", "line"): {"marker"},
    ("errorbar", "line"): {"marker", "linestyle"},
}


def _type_targets(family: str, p: dict, keep: frozenset = frozenset()) -> list[str]:
    targets = _raw_type_targets(family, p)
    return [t for t in targets if keep <= _KEPT_STYLE.get((family, t), set())]


def _raw_type_targets(family: str, p: dict) -> list[str]:
    simple = {
        "barh": ["bar"],
        "area": ["line"],
        "stacked_bar": ["grouped_bar"],
        "pie": ["donut"],
        "donut": ["pie"],
        "box": ["violin"],
        "violin": ["box"],
        "errorbar": ["line"],
    }
    if family in simple:
        return simple[family]
    if family == "bar":
        return ["barh", "line", "area"]
    if family == "grouped_bar":
        nonneg = not _has_negative(p)
        return ["stacked_bar", "line"] if nonneg else ["line"]
    if family == "line":
        out = ["area", "bar" if len(p["series"]) == 1 else "grouped_bar"]
        if all(isinstance(c, (int, float)) for c in p["categories"]):
            out.append("scatter")  # a scatter of string categories would just be a line without lines
        return out
    if family == "scatter":
        return ["line"] if len(p["series"]) == 1 else []
    return []  # hist, heatmap, radar have no counterpart that keeps the data meaningful


_CAT_COMMON = (
    "title",
    "xlabel",
    "ylabel",
    "figsize",
    "grid",
    "categories",
    "cat_var",
    "rotate",
    "legend_loc",
    "legend_title",
)


def _to_category(src_family: str, p: dict, target: str, rng: random.Random) -> dict:
    q = {k: copy.deepcopy(p[k]) for k in _CAT_COMMON if k in p}
    styled = target in ("line", "errorbar")
    q["series"] = []
    for s in p["series"]:
        t = {"name": s["name"], "values": list(s["values"]), "color": s["color"]}
        if styled:
            t["marker"] = s["marker"] if "marker" in s else rng.choice(("o", None))
            t["linestyle"] = s.get("linestyle", "-")
        q["series"].append(t)
    if (src_family == "barh") != (target == "barh"):
        q["xlabel"], q["ylabel"] = q.get("ylabel"), q.get("xlabel")  # the category axis moves
    q["rotate"] = 0 if target == "barh" else _rotation(q["categories"])
    if target == "line":
        q["linewidth"] = 2
    if target == "area":
        q["stacked"], q["alpha"] = False, 0.4
    return q


def _scatter_to_line(p: dict) -> dict:
    s = p["series"][0]
    order = sorted(range(len(s["x"])), key=lambda i: s["x"][i])
    q = {k: copy.deepcopy(p[k]) for k in ("title", "xlabel", "ylabel", "figsize", "grid", "legend_loc") if k in p}
    q.update(
        categories=[s["x"][i] for i in order],
        cat_var="x",
        rotate=0,
        linewidth=2,
        series=[
            {
                "name": s["name"],
                "values": [s["y"][i] for i in order],
                "color": s["color"],
                "marker": s["marker"],
                "linestyle": "-",
            }
        ],
    )
    return q


def _line_to_scatter(p: dict) -> dict:
    q = {k: copy.deepcopy(p[k]) for k in ("title", "xlabel", "ylabel", "figsize", "grid", "legend_loc") if k in p}
    q["alpha"] = 0.8
    q["series"] = [
        {
            "name": s["name"],
            "x": list(p["categories"]),
            "y": list(s["values"]),
            "color": s["color"],
            "marker": s.get("marker") or "o",
            "size": 40,
        }
        for s in p["series"]
    ]
    return q


def _convert(family: str, p: dict, target: str, rng: random.Random) -> dict:
    if family == "scatter":
        return _scatter_to_line(p)
    if target == "scatter":
        return _line_to_scatter(p)
    if family in _PIE_FAMILIES or family in _DIST_FAMILIES:
        q = copy.deepcopy(p)  # pie/donut and box/violin share their params outright
        if target == "donut":
            q["hole"] = 0.4
        elif target == "pie":
            q.pop("hole", None)
        return q
    return _to_category(family, p, target, rng)


_LONG_NAMES = {
    "bar": "bar chart",
    "barh": "horizontal bar chart",
    "grouped_bar": "grouped bar chart",
    "stacked_bar": "stacked bar chart",
    "line": "line chart",
    "area": "area chart",
    "errorbar": "error-bar plot",
    "scatter": "scatter plot",
    "pie": "pie chart",
    "donut": "donut chart",
    "box": "box plot",
    "violin": "violin plot",
}


def _p_change_chart_type(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    targets = _type_targets(spec.family, spec.params, keep)
    if not targets:
        raise PerturbationNotApplicable(
            f"change_chart_type: no compatible chart type for {spec.family} that keeps the data"
        )
    before, target = spec.family, rng.choice(targets)
    spec.params = _convert(before, spec.params, target, rng)
    spec.family = target
    return {
        "kind": "change_chart_type",
        "before": before,
        "after": target,
        "text": f"{_LONG_NAMES[before]} redrawn as a {_LONG_NAMES[target]}",
    }


# -- change_marker / change_linestyle ----------------------------------------


def _style_slots(family: str, p: dict, key: str) -> list[tuple[str, Path]]:
    if family in ("line", "errorbar", "radar") or (family == "scatter" and key == "marker"):
        return [(s["name"], ("series", i, key)) for i, s in enumerate(p["series"])]
    return []


def _change_style(spec: ChartSpec, rng: random.Random, key: str, pool: Sequence[str], noun: str) -> dict:
    slots = _style_slots(spec.family, spec.params, key)
    if not slots:
        raise PerturbationNotApplicable(f"change_{key}: {spec.family} charts have no {noun}s")
    name, path = rng.choice(slots)
    old = _get(spec.params, path)
    new = rng.choice([m for m in pool if m != old])
    _set(spec.params, path, new)
    shown = [repr(v) if v is not None else f"no {noun}" for v in (old, new)]
    return {
        "kind": f"change_{key}",
        "series": name,
        "before": old,
        "after": new,
        "text": f"{noun} of {name} changed from {shown[0]} to {shown[1]}",
    }


def _p_change_marker(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    return _change_style(spec, rng, "marker", MARKERS, "marker")


def _p_change_linestyle(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    return _change_style(spec, rng, "linestyle", LINESTYLES, "line style")


_PERTURBERS: dict[str, Callable[..., dict]] = {
    "change_value": _p_change_value,
    "swap_colors": _p_swap_colors,
    "rename_label": _p_rename_label,
    "change_chart_type": _p_change_chart_type,
    "change_marker": _p_change_marker,
    "change_linestyle": _p_change_linestyle,
}


def _can_apply_single(family: str, p: dict, kind: str, keep: frozenset = frozenset()) -> bool:
    if kind == "change_value":
        return bool(_value_slots(family, p))
    if kind == "swap_colors":
        return len({_get(p, path) for _, path in _color_slots(family, p)}) >= 2
    if kind == "rename_label":
        return bool(_rename_slots(family, p))
    if kind == "change_chart_type":
        return bool(_type_targets(family, p, keep))
    key = {"change_marker": "marker", "change_linestyle": "linestyle"}[kind]
    return bool(_style_slots(family, p, key))


def _can_apply(spec: ChartSpec, kind: str, keep: frozenset = frozenset()) -> bool:
    if spec.family not in _GRID_SHAPES:
        return _can_apply_single(spec.family, spec.params, kind, keep)
    if kind == "rename_label" and spec.params.get("suptitle"):
        return True
    return any(_can_apply_single(x["family"], x["params"], kind, keep) for x in spec.params["panels"])


def _perturb_grid(spec: ChartSpec, kind: str, rng: random.Random, keep: frozenset) -> dict:
    p = spec.params
    options: list[Any] = [
        k for k, x in enumerate(p["panels"]) if _can_apply_single(x["family"], x["params"], kind, keep)
    ]
    if kind == "rename_label" and p.get("suptitle"):
        options.append("suptitle")
    if not options:
        raise PerturbationNotApplicable(f"{kind} applies to none of the panels of this {spec.family}")
    choice = rng.choice(options)
    if choice == "suptitle":
        old = p["suptitle"]
        p["suptitle"] = _replacement("suptitle", old, [], rng)
        return {
            "kind": kind,
            "target": "suptitle",
            "panel": None,
            "before": old,
            "after": p["suptitle"],
            "text": f"{_TARGET_NOUNS['suptitle']} {old!r} renamed to {p['suptitle']!r}",
        }
    panel = p["panels"][choice]
    sub = ChartSpec(panel["family"], panel["params"])
    desc = _PERTURBERS[kind](sub, rng, keep)
    panel["family"], panel["params"] = sub.family, sub.params
    _, where = _panel_position(*_GRID_SHAPES[spec.family], choice)
    desc["panel"] = choice
    desc["text"] = f"{where} panel: {desc['text']}"
    return desc


def perturb(spec: ChartSpec, kind: str, rng: random.Random) -> tuple[ChartSpec, dict]:
    """A perturbed copy of ``spec`` and an exact description of the change.

    Raises PerturbationNotApplicable when ``kind`` has nothing to act on.
    """
    return _perturb(spec, kind, rng, frozenset())


def _perturb(spec: ChartSpec, kind: str, rng: random.Random, keep: frozenset) -> tuple[ChartSpec, dict]:
    if kind not in _PERTURBERS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {', '.join(PERTURBATIONS)}")
    new = ChartSpec(spec.family, copy.deepcopy(spec.params))
    if spec.family in _GRID_SHAPES:
        return new, _perturb_grid(new, kind, rng, keep)
    return new, _PERTURBERS[kind](new, rng, keep)


def applicable_perturbations(spec: ChartSpec) -> list[str]:
    """The kinds :func:`perturb` accepts for ``spec``, in PERTURBATIONS order."""
    return [k for k in PERTURBATIONS if _can_apply(spec, k)]


# Chart type goes last because it may drop attributes (markers on a bar);
# renames go late so earlier descriptions name series as the original shows them.
_APPLY_ORDER = ("change_value", "swap_colors", "change_marker", "change_linestyle", "rename_label", "change_chart_type")


def _style_keep(kinds: Sequence[str]) -> frozenset:
    return frozenset(k.split("_", 1)[1] for k in kinds if k in ("change_marker", "change_linestyle"))


def perturb_random(spec: ChartSpec, rng: random.Random, n_changes: int = 1) -> tuple[ChartSpec, list[dict]]:
    """Apply ``n_changes`` perturbations of distinct kinds; returns the new spec and their descriptions."""
    kinds = applicable_perturbations(spec)
    combos = [
        c
        for c in itertools.combinations(kinds, n_changes)
        if "change_chart_type" not in c or _can_apply(spec, "change_chart_type", _style_keep(c))
    ]
    if n_changes < 1 or not combos:
        raise PerturbationNotApplicable(
            f"cannot apply {n_changes} distinct perturbations to this {spec.family} chart "
            f"(applicable: {', '.join(kinds) or 'none'})"
        )
    chosen = sorted(rng.choice(combos), key=_APPLY_ORDER.index)
    keep = _style_keep(chosen)
    descriptions = []
    for kind in chosen:
        spec, desc = _perturb(spec, kind, rng, keep)
        descriptions.append(desc)
    return spec, descriptions
