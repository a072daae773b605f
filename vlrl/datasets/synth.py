"""Deterministic synthetic chart corpus for chart-to-code RL.

A chart is a :class:`ChartSpec`: plain, JSON-serialisable data from which we
emit the matplotlib script a person would plausibly write.  The spec, not the
code, is the source of truth because the spy game and the contrastive rewards
need to know *exactly* what differs between two charts; recovering that from a
code diff (or a pixel diff) is unreliable.  Perturbations therefore edit the
spec and report a precise description of the edit.

Everything is driven by an explicit ``random.Random`` so a corpus is a pure
function of its seed, and emitted scripts contain only literals so rendering
them is deterministic too.
"""

from __future__ import annotations

import copy
import itertools
import keyword
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

__all__ = [
    "FAMILIES",
    "PERTURBATIONS",
    "ChartSpec",
    "PerturbationNotApplicable",
    "applicable_perturbations",
    "generate_specs",
    "make_spec",
    "perturb",
    "perturb_random",
]

FAMILIES: tuple[str, ...] = (
    "bar", "barh", "grouped_bar", "stacked_bar", "line", "scatter", "pie", "donut",
    "hist", "box", "violin", "heatmap", "area", "errorbar", "radar", "grid_1x2", "grid_2x2",
)

PERTURBATIONS: tuple[str, ...] = (
    "change_value", "swap_colors", "rename_label", "change_chart_type",
    "change_marker", "change_linestyle",
)


class PerturbationNotApplicable(ValueError):
    """The requested perturbation has nothing to act on in this chart."""


# ---------------------------------------------------------------------------
# Family groups
# ---------------------------------------------------------------------------

# Families whose params are {"categories": [...], "series": [{"name", "values", "color", ...}]}.
# Sharing one layout is what lets change_chart_type keep the data untouched.
_CATEGORY_FAMILIES = ("bar", "barh", "grouped_bar", "stacked_bar", "line", "area", "errorbar")
_BAR_FAMILIES = ("bar", "barh", "grouped_bar", "stacked_bar")
_PIE_FAMILIES = ("pie", "donut")
_DIST_FAMILIES = ("box", "violin")
_GRID_SHAPES = {"grid_1x2": (1, 2), "grid_2x2": (2, 2)}
# Radar needs a polar axes, which plt.subplots(r, c) cannot mix in, so it stays out of grids.
_PANEL_FAMILIES = (
    "bar", "barh", "grouped_bar", "stacked_bar", "line", "area", "errorbar", "scatter",
    "pie", "donut", "hist", "box", "violin", "heatmap",
)
_NUMPY_FAMILIES = ("grouped_bar", "stacked_bar", "heatmap", "radar")

MARKERS = ("o", "s", "^", "D", "v", "x", "*", "P", "d", "p", "h", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")
_LEGEND_LOCS = ("best", "best", "upper left", "upper right", "lower right", "lower left")

# ---------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------

PALETTES: dict[str, list[str]] = {
    "tab10": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
              "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"],
    "set2": ["#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3"],
    "dark2": ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"],
    "okabe_ito": ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"],
    "pastel": ["#a1c9f4", "#ffb482", "#8de5a1", "#ff9f9b", "#d0bbff",
               "#debb9b", "#fab0e4", "#cfcfcf", "#fffea3", "#b9f2f0"],
    "deep": ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
             "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"],
    "named": ["steelblue", "darkorange", "seagreen", "crimson", "slateblue", "goldenrod",
              "teal", "tomato", "orchid", "gray", "olive", "navy"],
}

_FIGSIZES = ((5, 3.5), (6, 4), (6.4, 4.8), (7, 4), (7, 4.5), (7, 5), (8, 4.5), (8, 5),
             (8, 6), (9, 5), (9, 5.5), (10, 5), (10, 6))
_SQUARE_FIGSIZES = ((5, 5), (5.5, 5.5), (6, 6), (6, 5), (7, 6))

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# The apostrophes are deliberate: labels must survive repr-quoting in the emitted code.
QUARTERS = [f"Q{q} '{y}" for y in (22, 23, 24) for q in (1, 2, 3, 4)]
COUNTRIES = ["Germany", "France", "Spain", "Italy", "Japan", "Brazil", "Canada", "India",
             "Mexico", "Australia", "Sweden", "Kenya", "United Kingdom", "South Korea"]
PRODUCTS = ["Laptops", "Phones", "Tablets", "Monitors", "Headphones", "Cameras",
            "Printers", "Keyboards", "Smartwatches", "Speakers", "Routers", "Drones"]
DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Finance", "HR", "Support",
               "Legal", "Operations", "R&D", "Design", "IT", "Procurement"]
CITIES = ["Berlin", "Paris", "Madrid", "Tokyo", "Toronto", "Sydney", "Chicago", "Lagos",
          "Mumbai", "Seoul", "Lima", "Oslo"]
LANGUAGES = ["Python", "JavaScript", "Java", "C++", "Go", "Rust", "TypeScript", "C#",
             "Kotlin", "Swift", "Ruby", "PHP"]
CHANNELS = ["Email", "Organic search", "Paid search", "Social", "Referral", "Direct",
            "Display ads", "Affiliates"]
AGE_GROUPS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
STORES = ["Downtown", "Airport", "Mall", "Harbor", "Uptown", "Station", "Campus", "Riverside"]


class _Dim(NamedTuple):
    label: str        # axis label and the noun used in titles
    var: str          # variable name in the emitted code
    values: list
    ordered: bool     # consecutive windows only, so months stay in calendar order
    temporal: bool    # suitable as the x axis of a line/area chart


_DIMENSIONS = (
    _Dim("Month", "months", MONTHS, True, True),
    _Dim("Quarter", "quarters", QUARTERS, True, True),
    _Dim("Year", "years", list(range(2010, 2025)), True, True),
    _Dim("Day of week", "days", WEEKDAYS, True, True),
    _Dim("Week", "weeks", list(range(1, 41)), True, True),
    _Dim("Country", "countries", COUNTRIES, False, False),
    _Dim("Product", "products", PRODUCTS, False, False),
    _Dim("Department", "departments", DEPARTMENTS, False, False),
    _Dim("City", "cities", CITIES, False, False),
    _Dim("Language", "languages", LANGUAGES, False, False),
    _Dim("Channel", "channels", CHANNELS, False, False),
    _Dim("Age group", "age_groups", AGE_GROUPS, True, False),
    _Dim("Store", "stores", STORES, False, False),
)


class _Metric(NamedTuple):
    name: str
    label: str        # axis label, with units
    lo: float
    hi: float
    decimals: int


_METRICS = (
    _Metric("Revenue", "Revenue ($k)", 40, 480, 1),
    _Metric("Units sold", "Units sold", 120, 4800, 0),
    _Metric("Profit", "Profit ($M)", -4, 18, 2),
    _Metric("Conversion rate", "Conversion rate", 0.02, 0.35, 2),
    _Metric("Customer satisfaction", "Satisfaction (0-1)", 0.45, 0.98, 2),
    _Metric("Website visitors", "Visitors (thousands)", 12, 140, 1),
    _Metric("Rainfall", "Rainfall (mm)", 5, 240, 1),
    _Metric("Average temperature", "Temperature (°C)", -8, 32, 1),
    _Metric("Response time", "Response time (ms)", 60, 850, 0),
    _Metric("YoY growth", "Growth (%)", -12, 24, 1),
    _Metric("Energy consumption", "Energy (kWh)", 1200, 9800, 0),
    _Metric("Headcount", "Employees", 8, 160, 0),
    _Metric("Market share", "Share (%)", 2, 45, 1),
    _Metric("Budget", "Budget ($)", 1500, 9500, 0),
)

_SERIES_GROUPS = (
    ("Region", ["North", "South", "East", "West", "Central"]),
    ("Year", ["2021", "2022", "2023", "2024"]),
    ("Channel", ["Online", "In-store", "Wholesale"]),
    ("Plan", ["Basic", "Pro", "Enterprise"]),
    ("Segment", ["Men's", "Women's", "Kids'"]),
    ("Company", ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli"]),
    ("Team", ["Team Alpha", "Team Beta", "Team Gamma", "Team Delta"]),
    ("Product line", ["Product A", "Product B", "Product C", "Product D"]),
    ("Scenario", ["Baseline", "Optimistic", "Pessimistic"]),
)

_COMPANIES = ("Acme", "Globex", "Northwind", "Contoso", "Initech")


class _ScatterDomain(NamedTuple):
    title: str
    xlabel: str
    ylabel: str
    xrange: tuple[float, float]
    yrange: tuple[float, float]
    slope: float      # -1..1: sign and strength of the relationship
    groups: list[str]


_SCATTER_DOMAINS = (
    _ScatterDomain("Height vs. weight", "Height (cm)", "Weight (kg)", (150, 195), (48, 105), 0.8,
                   ["Men", "Women"]),
    _ScatterDomain("Advertising spend and sales", "Ad spend ($k)", "Sales ($k)", (5, 60), (20, 420), 0.7,
                   ["TV", "Radio", "Online"]),
    _ScatterDomain("Engine size vs. fuel economy", "Engine size (L)", "Fuel economy (mpg)", (1.0, 5.0),
                   (14, 48), -0.8, ["Sedan", "SUV", "Truck"]),
    _ScatterDomain("Study time and exam results", "Study time (hours)", "Exam score", (0, 12), (35, 100),
                   0.6, ["Class A", "Class B", "Class C"]),
    _ScatterDomain("Wealth and health", "GDP per capita ($k)", "Life expectancy (years)", (1, 80), (55, 85),
                   0.7, ["Africa", "Asia", "Europe", "Americas"]),
    _ScatterDomain("Ice cream sales on hot days", "Temperature (°C)", "Ice cream sales", (12, 36), (40, 400),
                   0.85, ["Beach kiosk", "City kiosk"]),
    _ScatterDomain("Server latency vs. throughput", "Latency (ms)", "Throughput (req/s)", (5, 120),
                   (200, 1800), -0.6, ["Cluster A", "Cluster B"]),
    _ScatterDomain("Price vs. customer rating", "Price ($)", "Rating (1-5)", (5, 150), (1, 5), 0.3,
                   ["Brand X", "Brand Y", "Brand Z"]),
)


class _DistDomain(NamedTuple):
    title: str
    label: str          # measured variable, with units
    lo: float
    hi: float
    decimals: int
    groups_label: str
    groups: list[str]
    count_label: str    # y label for a histogram of this variable


_DIST_DOMAINS = (
    _DistDomain("Salary distribution by department", "Salary ($k)", 35, 150, 1, "Department",
                ["Sales", "Marketing", "Engineering", "Support", "Finance", "HR"], "Employees"),
    _DistDomain("Recovery time by treatment", "Recovery time (days)", 2, 30, 1, "Treatment",
                ["Placebo", "Low dose", "Medium dose", "High dose"], "Patients"),
    _DistDomain("API latency by region", "Latency (ms)", 15, 320, 0, "Region",
                ["US East", "US West", "EU Central", "Asia Pacific", "South America"], "Requests"),
    _DistDomain("Test scores by class", "Test score", 30, 100, 0, "Class",
                ["Class A", "Class B", "Class C", "Class D", "Class E"], "Number of students"),
    _DistDomain("Commute times across the week", "Commute time (min)", 8, 75, 1, "Day",
                ["Mon", "Tue", "Wed", "Thu", "Fri"], "Trips"),
    _DistDomain("Model accuracy across seeds", "Accuracy", 0.5, 0.97, 2, "Model",
                ["Baseline", "Small", "Medium", "Large", "XL"], "Runs"),
    _DistDomain("Daily returns", "Daily return (%)", -4.5, 4.5, 2, "Fund",
                ["Fund A", "Fund B", "Index"], "Days"),
    _DistDomain("Customer age profile", "Customer age (years)", 18, 80, 0, "Store",
                ["Downtown", "Mall", "Online"], "Customers"),
)

_HEATMAP_DOMAINS = (
    dict(title="Website visits by day and hour", rows=WEEKDAYS,
         cols=["8am", "9am", "10am", "11am", "12pm", "1pm", "2pm", "3pm", "4pm", "5pm", "6pm"],
         xlabel="Hour", ylabel="Day", cbar="Visits", lo=0, hi=260, decimals=0,
         cmaps=["YlGnBu", "Blues", "viridis", "magma"]),
    dict(title="Monthly average temperature", rows=["2019", "2020", "2021", "2022", "2023", "2024"],
         cols=MONTHS, xlabel="Month", ylabel="Year", cbar="Temperature (°C)", lo=-6, hi=31, decimals=1,
         cmaps=["coolwarm", "RdYlBu_r", "plasma"]),
    dict(title="Sales by region and product", rows=["North", "South", "East", "West", "Central"],
         cols=PRODUCTS[:8], xlabel="", ylabel="", cbar="Sales ($k)", lo=10, hi=520, decimals=0,
         cmaps=["Greens", "OrRd", "viridis", "YlOrBr"]),
    dict(title="Benchmark accuracy by model", rows=["Baseline", "Model v1", "Model v2", "Model v3", "Ours"],
         cols=["MMLU", "GSM8K", "HumanEval", "ARC", "HellaSwag", "TruthfulQA"], xlabel="Benchmark",
         ylabel="Model", cbar="Accuracy (%)", lo=25, hi=92, decimals=1,
         cmaps=["viridis", "Blues", "cividis"]),
    dict(title="Feature correlation matrix", rows=["Price", "Size", "Age", "Rooms", "Distance", "Rating"],
         cols=None, xlabel="", ylabel="", cbar="Correlation", lo=-1, hi=1, decimals=2,
         cmaps=["coolwarm", "RdBu_r"], correlation=True),
)
_DARK_CMAPS = ("viridis", "magma", "plasma", "cividis")

_RADAR_DOMAINS = (
    ("Player attributes", ["Speed", "Strength", "Agility", "Stamina", "Technique", "Vision", "Teamwork"],
     ["Alex", "Jordan", "Sam", "Taylor"]),
    ("Smartphone comparison",
     ["Price", "Battery", "Camera", "Display", "Performance", "Design", "Durability"],
     ["Phone X", "Phone Y", "Phone Z"]),
    ("Student performance", ["Math", "Reading", "Science", "History", "Art", "Music", "Sports"],
     ["Emma", "Liam", "Olivia", "Noah"]),
    ("Team skill profile", ["Frontend", "Backend", "DevOps", "Testing", "Design", "Data", "Security"],
     ["Team Alpha", "Team Beta", "Team Gamma"]),
)

_ERRORBAR_X = (
    ("Dose (mg)", "doses", [0, 5, 10, 20, 40, 80, 160]),
    ("Time (h)", "hours", [0, 1, 2, 4, 8, 12, 24, 48]),
    ("Temperature (°C)", "temperatures", [10, 15, 20, 25, 30, 35, 40]),
    ("Condition", "conditions", ["Control", "Low", "Medium", "High", "Very high"]),
    ("Week", "weeks", list(range(1, 13))),
)
_ERRORBAR_Y = (
    _Metric("Response", "Response (%)", 5, 95, 1),
    _Metric("Concentration", "Concentration (ng/mL)", 0.5, 12, 2),
    _Metric("Crop yield", "Yield (g)", 20, 180, 1),
    _Metric("Cell viability", "Viability (%)", 20, 100, 1),
    _Metric("Reaction time", "Reaction time (ms)", 180, 520, 0),
)
_ERRORBAR_GROUPS = (["Control", "Treatment"], ["Wild type", "Mutant"], ["Batch 1", "Batch 2", "Batch 3"],
                    ["Sample A", "Sample B", "Sample C"])

_PIE_TITLES = ("{m} by {d}", "Share of {m} by {d}", "{m} breakdown by {d}", "{d} mix, {y}")
_SUPTITLES = ("Sales dashboard", "Quarterly overview", "Operations summary 2023", "Experiment results",
              "Regional performance review", "Annual report highlights", "Customer insights",
              "Q3 '24 snapshot", "Product analytics")
_GENERIC_NAMES = ("Other", "Misc", "Group X", "Segment Z", "New entry", "Pilot", "Legacy", "Partner")

# Pools a renamed label is drawn from; a label is replaced by an unused item
# of the list it came from so a renamed month is still a month.
_VOCAB_LISTS: tuple[list, ...] = tuple(
    [d.values for d in _DIMENSIONS if all(isinstance(v, str) for v in d.values)]
    + [g for _, g in _SERIES_GROUPS]
    + [list(d.groups) for d in _SCATTER_DOMAINS + _DIST_DOMAINS]
    + [d[1] for d in _RADAR_DOMAINS] + [d[2] for d in _RADAR_DOMAINS]
    + [d["rows"] for d in _HEATMAP_DOMAINS] + [d["cols"] for d in _HEATMAP_DOMAINS if d["cols"]]
    + [list(g) for g in _ERRORBAR_GROUPS]
    + [x[2] for x in _ERRORBAR_X if isinstance(x[2][0], str)]
)
# A renamed axis label stays the same sort of label: a quantity with units, or a grouping noun.
_VALUE_LABELS = tuple(sorted(
    {m.label for m in _METRICS + _ERRORBAR_Y} | {d.xlabel for d in _SCATTER_DOMAINS}
    | {d.ylabel for d in _SCATTER_DOMAINS} | {d.label for d in _DIST_DOMAINS}
    | {d.count_label for d in _DIST_DOMAINS} | {x[0] for x in _ERRORBAR_X if "(" in x[0]}
))
_GROUP_LABELS = tuple(sorted(
    {d.label for d in _DIMENSIONS} | {d.groups_label for d in _DIST_DOMAINS} | {g for g, _ in _SERIES_GROUPS}
    | {d[key] for d in _HEATMAP_DOMAINS for key in ("xlabel", "ylabel") if d[key]}
))


# ---------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------

@dataclass
class ChartSpec:
    """One chart as plain data; see the module docstring for why."""

    family: str
    params: dict

    def to_code(self) -> str:
        """A complete, deterministic matplotlib script ending in ``plt.savefig("chart.png")``."""
        return _render(self.family, self.params)

    def metadata(self) -> dict:
        """JSON-serialisable summary: labels, series, colours, sizes and subplot grid."""
        return _metadata(self.family, self.params)

    def to_dict(self) -> dict:
        return {"family": self.family, "params": copy.deepcopy(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> "ChartSpec":
        return cls(d["family"], copy.deepcopy(d["params"]))


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

def generate_specs(n: int, seed: int, families: Sequence[str] | None = None) -> list[ChartSpec]:
    """``n`` specs, a pure function of ``(n, seed, families)``.

    Families are drawn in rounds, each a fresh seeded shuffle, so every family
    appears once ``n >= len(families)`` while the order still varies.
    """
    fams = list(FAMILIES if families is None else families)
    for f in fams:
        _check_family(f)
    if not fams:
        raise ValueError("families must not be empty")
    rng = random.Random(seed)
    specs: list[ChartSpec] = []
    order: list[str] = []
    while len(specs) < n:
        if not order:
            order = list(fams)
            rng.shuffle(order)
        specs.append(make_spec(order.pop(0), rng))
    return specs


def make_spec(family: str, rng: random.Random) -> ChartSpec:
    """One random spec of ``family``."""
    _check_family(family)
    return ChartSpec(family, _build(family, rng, compact=False))


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown chart family {family!r}; expected one of {', '.join(FAMILIES)}")


def _build(family: str, rng: random.Random, compact: bool) -> dict:
    """Params for ``family``; ``compact`` is for grid panels (less data, no figsize)."""
    if family in _GRID_SHAPES:
        return _build_grid(family, rng)
    params = _BUILDERS[family](rng, compact)
    if compact:
        params.pop("figsize", None)
    return params


def _figsize(rng: random.Random, square: bool = False) -> list[float]:
    return list(rng.choice(_SQUARE_FIGSIZES if square else _FIGSIZES))


def _colors(rng: random.Random, k: int) -> list[str]:
    palette = PALETTES[rng.choice(sorted(PALETTES))]
    # People mostly take a palette in order; sometimes they hand-pick from it.
    return list(palette[:k]) if rng.random() < 0.6 else rng.sample(palette, k)


def _round(v: float, decimals: int) -> float | int:
    if decimals == 0:
        return int(round(v))
    return round(v, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _reflect(v: float, lo: float, hi: float) -> float:
    """Fold ``v`` back into [lo, hi]; clamping would pile values up on the bound."""
    span = hi - lo
    t = (v - lo) % (2 * span)
    return lo + (t if t <= span else 2 * span - t)


def _window(rng: random.Random, values: list, n: int, ordered: bool) -> list:
    n = min(n, len(values))
    if ordered:
        start = rng.randint(0, len(values) - n)
        return list(values[start:start + n])
    return rng.sample(list(values), n)


def _rotation(labels: list) -> int:
    longest = max(len(str(c)) for c in labels)
    if longest * len(labels) > 60:
        return 45
    return 30 if longest > 7 and len(labels) > 4 else 0


def _series_values(rng: random.Random, metric: _Metric, n: int, ordered: bool) -> list:
    lo, hi = metric.lo, metric.hi
    span = hi - lo
    if not ordered:
        raw = [rng.uniform(lo, hi) for _ in range(n)]
    else:
        raw = _time_series(rng, lo, span, n)
    return [_round(_reflect(v, lo, hi), metric.decimals) for v in raw]


def _time_series(rng: random.Random, lo: float, span: float, n: int) -> list[float]:
    shape = rng.choice(("trend", "seasonal", "walk"))
    start = lo + rng.uniform(0.15, 0.6) * span
    noise = 0.05 * span
    if shape == "trend":
        slope = rng.uniform(-0.5, 0.7) * span / max(n - 1, 1)
        return [start + slope * i + rng.gauss(0, noise) for i in range(n)]
    if shape == "seasonal":
        amp, phase = rng.uniform(0.15, 0.35) * span, rng.uniform(0, 2 * math.pi)
        period = rng.choice((4, 6, 12))
        return [start + amp * math.sin(2 * math.pi * i / period + phase) + rng.gauss(0, noise)
                for i in range(n)]
    out, v = [], start
    for _ in range(n):
        out.append(v)
        v += rng.gauss(0, 0.1 * span)
    return out


# Only quantities that add up to a meaningful whole belong in a pie.
_PART_OF_WHOLE = ("Revenue", "Units sold", "Website visitors", "Energy consumption", "Headcount",
                  "Market share", "Budget")


def _metric(rng: random.Random, nonneg: bool = False, additive: bool = False) -> _Metric:
    pool = [m for m in _METRICS if (m.lo >= 0 or not nonneg) and (m.name in _PART_OF_WHOLE or not additive)]
    return rng.choice(pool)


def _dimension(rng: random.Random, temporal: bool | None = None) -> _Dim:
    pool = [d for d in _DIMENSIONS if temporal is None or d.temporal == temporal]
    return rng.choice(pool)


def _series_names(rng: random.Random, k: int, dim: _Dim) -> tuple[str, list[str]]:
    # A "2023" series over a year axis would read as a category, so skip that pairing.
    pool = [g for g in _SERIES_GROUPS if g[0] != dim.label and len(g[1]) >= k]
    label, names = rng.choice(pool)
    return label, _window(rng, names, k, ordered=True)


def _title(rng: random.Random, metric: str, dim: str, group: str | None = None) -> str:
    templates = ["{m} by {d}", "{m} by {d}, {y}", "{m} per {d} ({y})", "{c}'s {lm} by {d}"]
    if group:
        templates += ["{m} by {d} and {g}", "{m} by {g}"]
    if dim.lower() == "year":
        templates = [t for t in templates if "{y}" not in t]
    # Lower-case the metric mid-sentence, but leave "YoY growth" alone.
    lm = metric[0].lower() + metric[1:] if metric[1:2].islower() else metric
    return rng.choice(templates).format(
        m=metric, lm=lm, d=dim.lower(), g=group.lower() if group else "", y=rng.randint(2019, 2024),
        c=rng.choice(_COMPANIES))


def _category_base(rng: random.Random, dim: _Dim, n: int, metric: _Metric, k: int) -> dict:
    """Shared layout of every category family (see _CATEGORY_FAMILIES)."""
    cats = _window(rng, dim.values, n, dim.ordered)
    group, names = _series_names(rng, k, dim) if k > 1 else (None, [metric.name])
    colors = _colors(rng, k)
    series = [{"name": name, "values": _series_values(rng, metric, len(cats), dim.ordered), "color": c}
              for name, c in zip(names, colors)]
    params = {
        "title": _title(rng, metric.name, dim.label, group),
        "xlabel": dim.label if rng.random() < 0.85 else None,
        "ylabel": metric.label,
        "categories": cats,
        "cat_var": dim.var,
        "series": series,
        "grid": rng.random() < 0.5,
        "rotate": _rotation(cats),
        "legend_loc": rng.choice(_LEGEND_LOCS),
        "legend_title": group if k > 1 and rng.random() < 0.4 else None,
        "figsize": _figsize(rng),
    }
    return params


def _n_cats(rng: random.Random, compact: bool, hi: int = 12) -> int:
    return rng.randint(3, 6 if compact else hi)


def _build_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    p = _category_base(rng, dim, _n_cats(rng, compact), _metric(rng), 1)
    p["bar_labels"] = len(p["categories"]) <= 8 and rng.random() < 0.4
    p["edgecolor"] = rng.choice((None, None, "black", "white"))
    return p


def _build_barh(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=False)
    p = _category_base(rng, dim, _n_cats(rng, compact), _metric(rng), 1)
    if rng.random() < 0.5:  # ranked bar charts are the usual reason to go horizontal
        p["series"][0]["values"], p["categories"] = _sorted_pair(p["series"][0]["values"], p["categories"])
    p["xlabel"], p["ylabel"] = p["ylabel"], p["xlabel"]
    p["rotate"] = 0
    p["invert"] = rng.random() < 0.5
    p["bar_labels"] = len(p["categories"]) <= 8 and rng.random() < 0.4
    return p


def _sorted_pair(values: list, cats: list) -> tuple[list, list]:
    pairs = sorted(zip(values, cats), key=lambda t: t[0], reverse=True)
    return [v for v, _ in pairs], [c for _, c in pairs]


def _build_grouped_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    k = rng.randint(2, 3 if compact else 4)
    return _category_base(rng, dim, _n_cats(rng, compact, 8), _metric(rng), k)


def _build_stacked_bar(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng)
    k = rng.randint(2, 3 if compact else 4)
    # Stacks of negative segments are unreadable, hence non-negative metrics only.
    return _category_base(rng, dim, _n_cats(rng, compact, 10), _metric(rng, nonneg=True), k)


def _line_styles(rng: random.Random, series: list[dict], n_points: int) -> None:
    use_markers = n_points <= 24 and rng.random() < 0.7
    markers = rng.sample(MARKERS[:6], len(series))
    for i, s in enumerate(series):
        s["marker"] = markers[i] if use_markers else None
        s["linestyle"] = "-" if i == 0 or rng.random() < 0.5 else rng.choice(LINESTYLES[1:])


def _build_line(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=True)
    n = rng.randint(5, 8 if compact else 24)
    k = rng.randint(1, 3 if compact else 4)
    p = _category_base(rng, dim, n, _metric(rng), k)
    _line_styles(rng, p["series"], len(p["categories"]))
    p["linewidth"] = rng.choice((1.5, 2, 2, 2.5))
    return p


def _build_area(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=True)
    n = rng.randint(5, 8 if compact else 24)
    k = rng.randint(1, 2 if compact else 3)
    p = _category_base(rng, dim, n, _metric(rng, nonneg=True), k)
    p["stacked"] = k > 1 and rng.random() < 0.5
    p["alpha"] = rng.choice((0.3, 0.4, 0.5)) if not p["stacked"] else 0.8
    return p


def _build_errorbar(rng: random.Random, compact: bool) -> dict:
    xlabel, var, xs = rng.choice(_ERRORBAR_X)
    metric = rng.choice(_ERRORBAR_Y)
    dim = _Dim(xlabel, var, xs, True, True)
    k = rng.randint(1, 2 if compact else 3)
    n = rng.randint(4, min(len(xs), 6 if compact else 10))
    p = _category_base(rng, dim, n, metric, k)
    names = rng.choice([g for g in _ERRORBAR_GROUPS if len(g) >= k])[:k] if k > 1 else [metric.name]
    span = metric.hi - metric.lo
    for s, name in zip(p["series"], names):
        s["name"] = name
        s["errors"] = [_round(rng.uniform(0.03, 0.1) * span, metric.decimals) or 1 for _ in p["categories"]]
    noun = xlabel.split(" (")[0].lower()
    p["title"] = rng.choice((f"{metric.name} vs. {noun}", f"{metric.name} by {noun} (mean ± SD)",
                             f"Mean {metric.name.lower()} per {noun}"))
    p["xlabel"] = xlabel
    p["legend_title"] = None
    p["rotate"] = 0
    p["capsize"] = rng.choice((3, 4, 5))
    for s, marker in zip(p["series"], rng.sample(MARKERS[:6], k)):
        s["marker"] = marker
        s["linestyle"] = rng.choice(LINESTYLES)
    return p


def _build_scatter(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_SCATTER_DOMAINS)
    k = rng.randint(1, min(len(dom.groups), 2 if compact else 3))
    names = _window(rng, dom.groups, k, ordered=True) if k > 1 else ["Observations"]
    colors = _colors(rng, k)
    markers = ["o"] * k if rng.random() < 0.5 else rng.sample(MARKERS[:6], k)
    n = rng.randint(5, 15 if compact else 40)
    series = [_scatter_series(rng, dom, name, c, m, n, shift=i) for i, (name, c, m) in
              enumerate(zip(names, colors, markers))]
    return {
        "title": dom.title, "xlabel": dom.xlabel, "ylabel": dom.ylabel, "series": series,
        "alpha": rng.choice((0.6, 0.7, 0.8, 1.0)), "grid": rng.random() < 0.5,
        "legend_loc": rng.choice(_LEGEND_LOCS), "figsize": _figsize(rng),
    }


def _scatter_series(rng: random.Random, dom: _ScatterDomain, name: str, color: str, marker: str,
                    n: int, shift: int) -> dict:
    (x0, x1), (y0, y1) = dom.xrange, dom.yrange
    xdec = 2 if x1 - x0 < 10 else 1
    ydec = 2 if y1 - y0 < 10 else 1
    offset = (shift * 0.12 - 0.1) * (y1 - y0)  # groups sit at slightly different levels
    xs, ys = [], []
    for _ in range(n):
        t = rng.random()
        trend = 0.5 + dom.slope * (t - 0.5) * 0.8
        y = y0 + trend * (y1 - y0) + offset + rng.gauss(0, 0.08 * (y1 - y0))
        xs.append(_round(x0 + t * (x1 - x0), xdec))
        ys.append(_round(_clamp(y, y0, y1), ydec))
    return {"name": name, "x": xs, "y": ys, "color": color, "marker": marker,
            "size": rng.choice((20, 30, 40, 60, 80))}


def _build_pie(rng: random.Random, compact: bool) -> dict:
    dim = _dimension(rng, temporal=False)
    labels = _window(rng, dim.values, rng.randint(3, 5 if compact else 8), ordered=False)
    metric = _metric(rng, nonneg=True, additive=True)
    decimals = rng.choice((0, 1))
    values = [_round(rng.uniform(5, 40), decimals) for _ in labels]
    title = rng.choice(_PIE_TITLES).format(m=metric.name, d=dim.label.lower(), y=rng.randint(2019, 2024))
    return {
        "title": title[0].upper() + title[1:], "labels": labels, "values": values,
        "colors": _colors(rng, len(labels)), "value_var": rng.choice(("sizes", "shares", "values")),
        "autopct": rng.random() < 0.7, "legend": rng.random() < 0.3,
        "startangle": rng.choice((90, 90, 140, 0)), "figsize": _figsize(rng, square=True),
    }


def _build_donut(rng: random.Random, compact: bool) -> dict:
    p = _build_pie(rng, compact)
    p["hole"] = rng.choice((0.3, 0.4, 0.5))
    return p


def _build_hist(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_DIST_DOMAINS)
    k = rng.randint(1, 2)
    names = _window(rng, dom.groups, k, ordered=False) if k > 1 else [dom.label.split(" (")[0]]
    n = rng.randint(20, 40 if compact else 60)
    colors = _colors(rng, k)
    series = [{"name": name, "values": _samples(rng, dom, n, i), "color": c}
              for i, (name, c) in enumerate(zip(names, colors))]
    return {
        "title": f"Distribution of {dom.label.split(' (')[0].lower()}" if rng.random() < 0.5 else dom.title,
        "xlabel": dom.label, "ylabel": rng.choice((dom.count_label, "Frequency", "Count")),
        "series": series, "bins": rng.randint(6, 15), "alpha": 0.6 if k > 1 else rng.choice((0.7, 0.85, 1.0)),
        "edgecolor": rng.choice(("white", "black")), "grid": rng.random() < 0.4,
        "legend_loc": rng.choice(_LEGEND_LOCS), "figsize": _figsize(rng),
    }


def _samples(rng: random.Random, dom: _DistDomain, n: int, group: int) -> list:
    span = dom.hi - dom.lo
    centre = dom.lo + rng.uniform(0.3, 0.7) * span + group * 0.05 * span
    sd = rng.uniform(0.08, 0.16) * span
    return [_round(_clamp(rng.gauss(centre, sd), dom.lo, dom.hi), dom.decimals) for _ in range(n)]


def _build_box(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_DIST_DOMAINS)
    labels = _window(rng, dom.groups, rng.randint(3, min(len(dom.groups), 4 if compact else 6)), True)
    n = rng.randint(8, 15 if compact else 25)
    return {
        "title": dom.title, "xlabel": dom.groups_label if rng.random() < 0.7 else None,
        "ylabel": dom.label, "labels": labels,
        "data": [_samples(rng, dom, n, 0) for _ in labels], "colors": _colors(rng, len(labels)),
        "grid": rng.random() < 0.5, "rotate": _rotation(labels), "figsize": _figsize(rng),
    }


def _build_violin(rng: random.Random, compact: bool) -> dict:
    p = _build_box(rng, compact)
    p["show_medians"] = rng.random() < 0.7
    return p


def _build_heatmap(rng: random.Random, compact: bool) -> dict:
    dom = rng.choice(_HEATMAP_DOMAINS)
    correlation = dom.get("correlation", False)
    rows = _window(rng, dom["rows"], rng.randint(3, 5 if compact else len(dom["rows"])), True)
    cols = rows if correlation else _window(rng, dom["cols"], rng.randint(3, 6 if compact else 10), True)
    matrix = _correlation(rng, len(rows)) if correlation else [
        [_round(rng.uniform(dom["lo"], dom["hi"]), dom["decimals"]) for _ in cols] for _ in rows]
    cmap = rng.choice(dom["cmaps"])
    return {
        "title": dom["title"], "xlabel": dom["xlabel"] or None, "ylabel": dom["ylabel"] or None,
        "rows": list(rows), "cols": list(cols), "matrix": matrix, "cmap": cmap,
        "vmin": -1 if correlation else None, "vmax": 1 if correlation else None,
        "cbar_label": dom["cbar"], "decimals": dom["decimals"],
        "annotate": len(rows) * len(cols) <= 60 and rng.random() < 0.7,
        "annot_color": "white" if cmap in _DARK_CMAPS else "black",
        "rotate": _rotation(cols), "figsize": _figsize(rng),
    }


def _correlation(rng: random.Random, n: int) -> list[list[float]]:
    m = [[1.0] * n for _ in range(n)]
    for i, j in itertools.combinations(range(n), 2):
        m[i][j] = m[j][i] = round(rng.uniform(-0.8, 0.9), 2)
    return m


def _build_radar(rng: random.Random, compact: bool) -> dict:
    title, spokes, names = rng.choice(_RADAR_DOMAINS)
    labels = rng.sample(spokes, rng.randint(5, len(spokes)))
    k = rng.randint(1, 3)
    chosen = rng.sample(names, k)
    rmax, decimals = rng.choice(((10, 1), (100, 0), (5, 1)))
    colors = _colors(rng, k)
    marker = rng.choice(("o", None, "s"))
    series = [{"name": name, "color": c, "marker": marker,
               "linestyle": "-" if i == 0 else rng.choice(LINESTYLES),
               "values": [_round(rng.uniform(0.25, 0.95) * rmax, decimals) for _ in labels]}
              for i, (name, c) in enumerate(zip(chosen, colors))]
    if k > 1 and rng.random() < 0.5:
        title = f"{title}: {' vs. '.join(chosen)}"
    return {
        "title": title, "labels": labels, "series": series, "rmax": rmax,
        "fill_alpha": rng.choice((0.1, 0.2, 0.25, 0.3)), "figsize": _figsize(rng, square=True),
    }


def _build_grid(family: str, rng: random.Random) -> dict:
    nrows, ncols = _GRID_SHAPES[family]
    kinds = rng.sample(_PANEL_FAMILIES, nrows * ncols)
    return {
        "suptitle": rng.choice(_SUPTITLES) if rng.random() < 0.7 else None,
        "figsize": [rng.choice((9, 10)), rng.choice((3.5, 4, 4.5, 5) if nrows == 1 else (5.5, 6))],
        "panels": [{"family": f, "params": _build(f, rng, compact=True)} for f in kinds],
    }


_BUILDERS: dict[str, Callable[[random.Random, bool], dict]] = {
    "bar": _build_bar, "barh": _build_barh, "grouped_bar": _build_grouped_bar,
    "stacked_bar": _build_stacked_bar, "line": _build_line, "area": _build_area,
    "errorbar": _build_errorbar, "scatter": _build_scatter, "pie": _build_pie, "donut": _build_donut,
    "hist": _build_hist, "box": _build_box, "violin": _build_violin, "heatmap": _build_heatmap,
    "radar": _build_radar,
}


# ---------------------------------------------------------------------------
# Code emission
# ---------------------------------------------------------------------------

_WIDTH = 88
# Names the templates use themselves; series-derived variables must avoid them.
_RESERVED = frozenset({
    "plt", "np", "fig", "ax", "axes", "x", "y", "width", "data", "colors", "labels", "values",
    "angles", "bottom", "bars", "bp", "parts", "im", "i", "j", "name", "color", "patch", "body",
    "offset", "row_labels", "col_labels", "sizes", "shares",
})


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


def _has_negative(p: dict) -> bool:
    return any(v < 0 for s in p["series"] for v in s["values"])


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


def _decimals(values: Sequence[float]) -> int:
    if all(isinstance(v, int) for v in values):
        return 0
    return 2 if any(round(v, 1) != v for v in values) else 1


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
    return (_assign(cv, p["categories"]) + _dict_lines("data", items)
            + _assign("colors", [s["color"] for s in p["series"]]))


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
        kw = _kwargs(color=s["color"], marker=s.get("marker"), linestyle=s.get("linestyle", "-"),
                     linewidth=p.get("linewidth", 2), label=s["name"] if legend else None)
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
        kw = _kwargs(labels=[s["name"] for s in p["series"]], colors=[s["color"] for s in p["series"]],
                     alpha=p.get("alpha", 0.8))
        plot = [f"ax.stackplot({cv}, {', '.join(names)}, {kw})"]
    else:
        plot = []
        for var, s in zip(names, p["series"]):
            kw = _kwargs(color=s["color"], alpha=p.get("alpha", 0.4), label=s["name"] if legend else None)
            plot += [f"ax.fill_between({cv}, {var}, {kw})",
                     f"ax.plot({cv}, {var}, color={_lit(s['color'])}, linewidth=1.5)"]
    plot.append("ax.margins(x=0)")
    return data, plot + _decorate(p, legend=legend)


def _emit_errorbar(p: dict) -> tuple[list[str], list[str]]:
    cv, legend = p["cat_var"], len(p["series"]) > 1
    names = _series_vars(p, suffixes=("", "_err"))
    data = _assign(cv, p["categories"])
    plot = []
    for var, s in zip(names, p["series"]):
        data += _assign(var, s["values"]) + _assign(f"{var}_err", s["errors"])
        kw = _kwargs(color=s["color"], marker=s.get("marker"), linestyle=s.get("linestyle"),
                     capsize=p.get("capsize", 4), label=s["name"] if legend else None)
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
        kw = _kwargs(s=s.get("size", 40), color=s["color"], marker=s["marker"], alpha=p.get("alpha"),
                     label=s["name"] if legend else None)
        plot.append(f"ax.scatter({xv}, {yv}, {kw})")
    return data, plot + _decorate(p, legend=legend)


def _emit_pie(p: dict) -> tuple[list[str], list[str]]:
    vv = p.get("value_var", "sizes")
    data = _assign("labels", p["labels"]) + _assign(vv, p["values"]) + _assign("colors", p["colors"])
    kw = {"labels": None if p.get("legend") else "labels", "colors": "colors",
          "autopct": '"%1.1f%%"' if p.get("autopct") else None, "startangle": str(p.get("startangle", 90))}
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
        kw = _kwargs(bins=p.get("bins", 10), color=s["color"], alpha=p.get("alpha"),
                     edgecolor=p.get("edgecolor"), label=s["name"] if legend else None)
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
    data = (_assign("row_labels", p["rows"]) + _assign("col_labels", p["cols"])
            + _list_lines("data = np.array(", p["matrix"], ")"))
    kw = _kwargs(cmap=p["cmap"], aspect="auto", vmin=p.get("vmin"), vmax=p.get("vmax"))
    plot = [
        f"im = ax.imshow(data, {kw})",
        f"fig.colorbar(im, ax=ax, label={_lit(p['cbar_label'])})",
        "ax.set_xticks(np.arange(len(col_labels)), col_labels)",
        "ax.set_yticks(np.arange(len(row_labels)), row_labels)",
    ]
    if p.get("annotate"):
        cell = "f\"{data[i, j]:." + str(_decimals([v for r in p["matrix"] for v in r])) + "f}\""
        plot += [
            "for i in range(len(row_labels)):",
            "    for j in range(len(col_labels)):",
            f"        ax.text(j, i, {cell}, ha=\"center\", va=\"center\", "
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
    data += ["", "angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()",
             "angles += angles[:1]"]
    plot = []
    for var, s in zip(names, p["series"]):
        kw = _kwargs(color=s["color"], linewidth=2, linestyle=s.get("linestyle", "-"), marker=s.get("marker"),
                     label=s["name"] if legend else None)
        plot += [f"values = {var} + {var}[:1]", f"ax.plot(angles, values, {kw})",
                 f"ax.fill(angles, values, {_kwargs(color=s['color'], alpha=p.get('fill_alpha', 0.25))})"]
    plot += ["ax.set_xticks(angles[:-1], labels)", f"ax.set_ylim(0, {_num(p['rmax'])})",
             f"ax.set_title({_lit(p['title'])}, pad=20)"]
    if legend:
        plot.append('ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))')
    return data, plot


_EMITTERS: dict[str, Callable[[dict], tuple[list[str], list[str]]]] = {
    "bar": _emit_bar, "barh": _emit_barh, "grouped_bar": _emit_grouped_bar,
    "stacked_bar": _emit_stacked_bar, "line": _emit_line, "area": _emit_area,
    "errorbar": _emit_errorbar, "scatter": _emit_scatter, "pie": _emit_pie, "donut": _emit_donut,
    "hist": _emit_hist, "box": _emit_box, "violin": _emit_violin, "heatmap": _emit_heatmap,
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
    lines = (_imports([family]) + [""] + data + ["", subplots]
             + plot + ["", "plt.tight_layout()", 'plt.savefig("chart.png")'])
    return "\n".join(lines) + "\n"


def _panel_position(nrows: int, ncols: int, k: int) -> tuple[str, str]:
    """(index expression into ``axes``, human name) of panel ``k``."""
    if nrows == 1:
        return str(k), ("left", "right")[k] if ncols == 2 else f"panel {k + 1}"
    r, c = divmod(k, ncols)
    return f"{r}, {c}", f"{('top', 'bottom')[r]} {('left', 'right')[c]}"


def _render_grid(family: str, p: dict) -> str:
    nrows, ncols = _GRID_SHAPES[family]
    lines = _imports([panel["family"] for panel in p["panels"]]) + [
        "", f"fig, axes = plt.subplots({nrows}, {ncols}, figsize={_figsize_lit(p)})"]
    for k, panel in enumerate(p["panels"]):
        index, where = _panel_position(nrows, ncols, k)
        data, plot = _EMITTERS[panel["family"]](panel["params"])
        lines += ["", f"# {where.capitalize()}", f"ax = axes[{index}]"] + [ln for ln in data if ln] + plot
    if p.get("suptitle"):
        lines += ["", f"fig.suptitle({_lit(p['suptitle'])})"]
    lines += ["", "plt.tight_layout()", 'plt.savefig("chart.png")']
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------

def _metadata(family: str, p: dict) -> dict:
    if family in _GRID_SHAPES:
        return _grid_metadata(family, p)
    series, colors, cats, n_points = _series_summary(family, p)
    return {
        "family": family, "title": p.get("title"), "xlabel": p.get("xlabel"), "ylabel": p.get("ylabel"),
        "series": series, "colors": colors, "categories": cats, "n_series": len(series),
        "n_points": n_points, "nrows": 1, "ncols": 1, "panels": [],
    }


def _series_summary(family: str, p: dict) -> tuple[list, list, list | None, int]:
    """(colour-owning names, their colours, tick categories, points per series).

    "Series" means whatever owns a colour: legend entries, pie wedges, boxes;
    keeping names and colours aligned is what swap_colors descriptions rely on.
    """
    if family in _PIE_FAMILIES:
        return list(p["labels"]), list(p["colors"]), list(p["labels"]), len(p["values"])
    if family in _DIST_FAMILIES:
        return list(p["labels"]), list(p["colors"]), list(p["labels"]), max(len(d) for d in p["data"])
    if family == "heatmap":
        return [], [], list(p["cols"]), len(p["rows"]) * len(p["cols"])
    names = [s["name"] for s in p["series"]]
    colors = [s["color"] for s in p["series"]]
    if family == "scatter":
        return names, colors, None, max(len(s["x"]) for s in p["series"])
    if family == "radar":
        return names, colors, list(p["labels"]), len(p["labels"])
    if family == "hist":
        return names, colors, None, max(len(s["values"]) for s in p["series"])
    return names, colors, list(p["categories"]), len(p["categories"])


def _grid_metadata(family: str, p: dict) -> dict:
    nrows, ncols = _GRID_SHAPES[family]
    panels = [_metadata(panel["family"], panel["params"]) for panel in p["panels"]]
    return {
        "family": family, "title": p.get("suptitle"), "xlabel": None, "ylabel": None,
        "series": [s for m in panels for s in m["series"]],
        "colors": [c for m in panels for c in m["colors"]], "categories": None,
        "n_series": sum(m["n_series"] for m in panels), "n_points": sum(m["n_points"] for m in panels),
        "nrows": nrows, "ncols": ncols, "panels": panels,
    }


# ---------------------------------------------------------------------------
# Perturbations
# ---------------------------------------------------------------------------
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
        return [_ValueSlot(s["name"], j, p["categories"][j], ("series", i, "values", j))
                for i, s in enumerate(p["series"]) for j in range(len(s["values"]))]
    if family == "scatter":
        return [_ValueSlot(s["name"], j, s["x"][j], ("series", i, "y", j))
                for i, s in enumerate(p["series"]) for j in range(len(s["y"]))]
    if family == "radar":
        return [_ValueSlot(s["name"], j, p["labels"][j], ("series", i, "values", j))
                for i, s in enumerate(p["series"]) for j in range(len(s["values"]))]
    if family in _PIE_FAMILIES:
        return [_ValueSlot(lab, j, lab, ("values", j)) for j, lab in enumerate(p["labels"])]
    if family == "heatmap":
        return [_ValueSlot(r, [i, j], c, ("matrix", i, j))
                for i, r in enumerate(p["rows"]) for j, c in enumerate(p["cols"])]
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


def _new_value(rng: random.Random, old: float, lo: float, hi: float, ref: float,
               decimals: int) -> float | int:
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
            f"change_value does not apply to {spec.family} charts (no individually plotted values)")
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
    return {"kind": "change_value", "series": slot.series, "index": slot.index, "category": slot.category,
            "before": old, "after": new, "text": f"value of {slot.series}{where} changed from {old} to {new}"}


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
            f"swap_colors needs two differently coloured series; this {spec.family} chart has {len(slots)}")
    (a, pa), (b, pb) = rng.sample(slots, 2)
    while _get(p, pa) == _get(p, pb):
        (a, pa), (b, pb) = rng.sample(slots, 2)
    ca, cb = _get(p, pa), _get(p, pb)
    _set(p, pa, cb)
    _set(p, pb, ca)
    return {"kind": "swap_colors", "series": [a, b], "before": [ca, cb], "after": [cb, ca],
            "text": f"colours of {a} and {b} swapped"}


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


_TARGET_NOUNS = {"title": "title", "suptitle": "figure title", "xlabel": "x-axis label",
                 "ylabel": "y-axis label", "series": "legend label", "category": "tick label"}


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
    return {"kind": "rename_label", "target": target, "before": old, "after": new,
            "text": f"{_TARGET_NOUNS[target]} {old!r} renamed to {new!r}"}


# -- change_chart_type --------------------------------------------------------

# (from, to) -> style attributes that survive the conversion (none, if absent).
# perturb_random uses it so an earlier marker/linestyle change is not converted away.
_KEPT_STYLE = {
    ("line", "scatter"): {"marker"}, ("scatter", "line"): {"marker"},
    ("errorbar", "line"): {"marker", "linestyle"},
}


def _type_targets(family: str, p: dict, keep: frozenset = frozenset()) -> list[str]:
    targets = _raw_type_targets(family, p)
    return [t for t in targets if keep <= _KEPT_STYLE.get((family, t), set())]


def _raw_type_targets(family: str, p: dict) -> list[str]:
    simple = {"barh": ["bar"], "area": ["line"], "stacked_bar": ["grouped_bar"], "pie": ["donut"],
              "donut": ["pie"], "box": ["violin"], "violin": ["box"], "errorbar": ["line"]}
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


_CAT_COMMON = ("title", "xlabel", "ylabel", "figsize", "grid", "categories", "cat_var", "rotate",
               "legend_loc", "legend_title")


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
    q = {k: copy.deepcopy(p[k]) for k in ("title", "xlabel", "ylabel", "figsize", "grid", "legend_loc")
         if k in p}
    q.update(categories=[s["x"][i] for i in order], cat_var="x", rotate=0, linewidth=2,
             series=[{"name": s["name"], "values": [s["y"][i] for i in order], "color": s["color"],
                      "marker": s["marker"], "linestyle": "-"}])
    return q


def _line_to_scatter(p: dict) -> dict:
    q = {k: copy.deepcopy(p[k]) for k in ("title", "xlabel", "ylabel", "figsize", "grid", "legend_loc")
         if k in p}
    q["alpha"] = 0.8
    q["series"] = [{"name": s["name"], "x": list(p["categories"]), "y": list(s["values"]),
                    "color": s["color"], "marker": s.get("marker") or "o", "size": 40} for s in p["series"]]
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


_LONG_NAMES = {"bar": "bar chart", "barh": "horizontal bar chart", "grouped_bar": "grouped bar chart",
               "stacked_bar": "stacked bar chart", "line": "line chart", "area": "area chart",
               "errorbar": "error-bar plot", "scatter": "scatter plot", "pie": "pie chart",
               "donut": "donut chart", "box": "box plot", "violin": "violin plot"}


def _p_change_chart_type(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    targets = _type_targets(spec.family, spec.params, keep)
    if not targets:
        raise PerturbationNotApplicable(
            f"change_chart_type: no compatible chart type for {spec.family} that keeps the data")
    before, target = spec.family, rng.choice(targets)
    spec.params = _convert(before, spec.params, target, rng)
    spec.family = target
    return {"kind": "change_chart_type", "before": before, "after": target,
            "text": f"{_LONG_NAMES[before]} redrawn as a {_LONG_NAMES[target]}"}


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
    return {"kind": f"change_{key}", "series": name, "before": old, "after": new,
            "text": f"{noun} of {name} changed from {shown[0]} to {shown[1]}"}


def _p_change_marker(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    return _change_style(spec, rng, "marker", MARKERS, "marker")


def _p_change_linestyle(spec: ChartSpec, rng: random.Random, keep: frozenset = frozenset()) -> dict:
    return _change_style(spec, rng, "linestyle", LINESTYLES, "line style")


_PERTURBERS: dict[str, Callable[..., dict]] = {
    "change_value": _p_change_value, "swap_colors": _p_swap_colors, "rename_label": _p_rename_label,
    "change_chart_type": _p_change_chart_type, "change_marker": _p_change_marker,
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
    options: list[Any] = [k for k, x in enumerate(p["panels"])
                          if _can_apply_single(x["family"], x["params"], kind, keep)]
    if kind == "rename_label" and p.get("suptitle"):
        options.append("suptitle")
    if not options:
        raise PerturbationNotApplicable(f"{kind} applies to none of the panels of this {spec.family}")
    choice = rng.choice(options)
    if choice == "suptitle":
        old = p["suptitle"]
        p["suptitle"] = _replacement("suptitle", old, [], rng)
        return {"kind": kind, "target": "suptitle", "panel": None, "before": old, "after": p["suptitle"],
                "text": f"{_TARGET_NOUNS['suptitle']} {old!r} renamed to {p['suptitle']!r}"}
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
_APPLY_ORDER = ("change_value", "swap_colors", "change_marker", "change_linestyle", "rename_label",
                "change_chart_type")


def _style_keep(kinds: Sequence[str]) -> frozenset:
    return frozenset(k.split("_", 1)[1] for k in kinds if k in ("change_marker", "change_linestyle"))


def perturb_random(spec: ChartSpec, rng: random.Random, n_changes: int = 1) -> tuple[ChartSpec, list[dict]]:
    """Apply ``n_changes`` perturbations of distinct kinds; returns the new spec and their descriptions."""
    kinds = applicable_perturbations(spec)
    combos = [c for c in itertools.combinations(kinds, n_changes)
              if "change_chart_type" not in c or _can_apply(spec, "change_chart_type", _style_keep(c))]
    if n_changes < 1 or not combos:
        raise PerturbationNotApplicable(
            f"cannot apply {n_changes} distinct perturbations to this {spec.family} chart "
            f"(applicable: {', '.join(kinds) or 'none'})")
    chosen = sorted(rng.choice(combos), key=_APPLY_ORDER.index)
    keep = _style_keep(chosen)
    descriptions = []
    for kind in chosen:
        spec, desc = _perturb(spec, kind, rng, keep)
        descriptions.append(desc)
    return spec, descriptions
