"""Word lists, palettes and topic domains the synthetic charts draw their text and styling from.

Everything here is plain data apart from ``_title``, which lives here rather than with the
generators because rename_label draws replacement titles from the same templates.
"""

from __future__ import annotations

import random
from typing import NamedTuple

MARKERS = ("o", "s", "^", "D", "v", "x", "*", "P", "d", "p", "h", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")
_LEGEND_LOCS = ("best", "best", "upper left", "upper right", "lower right", "lower left")

PALETTES: dict[str, list[str]] = {
    "tab10": [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ],
    "set2": ["#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3"],
    "dark2": ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"],
    "okabe_ito": ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"],
    "pastel": [
        "#a1c9f4",
        "#ffb482",
        "#8de5a1",
        "#ff9f9b",
        "#d0bbff",
        "#debb9b",
        "#fab0e4",
        "#cfcfcf",
        "#fffea3",
        "#b9f2f0",
    ],
    "deep": [
        "#4c72b0",
        "#dd8452",
        "#55a868",
        "#c44e52",
        "#8172b3",
        "#937860",
        "#da8bc3",
        "#8c8c8c",
        "#ccb974",
        "#64b5cd",
    ],
    "named": [
        "steelblue",
        "darkorange",
        "seagreen",
        "crimson",
        "slateblue",
        "goldenrod",
        "teal",
        "tomato",
        "orchid",
        "gray",
        "olive",
        "navy",
    ],
}

_FIGSIZES = (
    (5, 3.5),
    (6, 4),
    (6.4, 4.8),
    (7, 4),
    (7, 4.5),
    (7, 5),
    (8, 4.5),
    (8, 5),
    (8, 6),
    (9, 5),
    (9, 5.5),
    (10, 5),
    (10, 6),
)
_SQUARE_FIGSIZES = ((5, 5), (5.5, 5.5), (6, 6), (6, 5), (7, 6))

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# The apostrophes are deliberate: labels must survive repr-quoting in the emitted code.
QUARTERS = [f"Q{q} '{y}" for y in (22, 23, 24) for q in (1, 2, 3, 4)]
COUNTRIES = [
    "Germany",
    "France",
    "Spain",
    "Italy",
    "Japan",
    "Brazil",
    "Canada",
    "India",
    "Mexico",
    "Australia",
    "Sweden",
    "Kenya",
    "United Kingdom",
    "South Korea",
]
PRODUCTS = [
    "Laptops",
    "Phones",
    "Tablets",
    "Monitors",
    "Headphones",
    "Cameras",
    "Printers",
    "Keyboards",
    "Smartwatches",
    "Speakers",
    "Routers",
    "Drones",
]
DEPARTMENTS = [
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "HR",
    "Support",
    "Legal",
    "Operations",
    "R&D",
    "Design",
    "IT",
    "Procurement",
]
CITIES = [
    "Berlin",
    "Paris",
    "Madrid",
    "Tokyo",
    "Toronto",
    "Sydney",
    "Chicago",
    "Lagos",
    "Mumbai",
    "Seoul",
    "Lima",
    "Oslo",
]
LANGUAGES = ["Python", "JavaScript", "Java", "C++", "Go", "Rust", "TypeScript", "C#", "Kotlin", "Swift", "Ruby", "PHP"]
CHANNELS = ["Email", "Organic search", "Paid search", "Social", "Referral", "Direct", "Display ads", "Affiliates"]
AGE_GROUPS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
STORES = ["Downtown", "Airport", "Mall", "Harbor", "Uptown", "Station", "Campus", "Riverside"]


class _Dim(NamedTuple):
    label: str  # axis label and the noun used in titles
    var: str  # variable name in the emitted code
    values: list
    ordered: bool  # consecutive windows only, so months stay in calendar order
    temporal: bool  # suitable as the x axis of a line/area chart


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
    label: str  # axis label, with units
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
    slope: float  # -1..1: sign and strength of the relationship
    groups: list[str]


_SCATTER_DOMAINS = (
    _ScatterDomain("Height vs. weight", "Height (cm)", "Weight (kg)", (150, 195), (48, 105), 0.8, ["Men", "Women"]),
    _ScatterDomain(
        "Advertising spend and sales", "Ad spend ($k)", "Sales ($k)", (5, 60), (20, 420), 0.7, ["TV", "Radio", "Online"]
    ),
    _ScatterDomain(
        "Engine size vs. fuel economy",
        "Engine size (L)",
        "Fuel economy (mpg)",
        (1.0, 5.0),
        (14, 48),
        -0.8,
        ["Sedan", "SUV", "Truck"],
    ),
    _ScatterDomain(
        "Study time and exam results",
        "Study time (hours)",
        "Exam score",
        (0, 12),
        (35, 100),
        0.6,
        ["Class A", "Class B", "Class C"],
    ),
    _ScatterDomain(
        "Wealth and health",
        "GDP per capita ($k)",
        "Life expectancy (years)",
        (1, 80),
        (55, 85),
        0.7,
        ["Africa", "Asia", "Europe", "Americas"],
    ),
    _ScatterDomain(
        "Ice cream sales on hot days",
        "Temperature (°C)",
        "Ice cream sales",
        (12, 36),
        (40, 400),
        0.85,
        ["Beach kiosk", "City kiosk"],
    ),
    _ScatterDomain(
        "Server latency vs. throughput",
        "Latency (ms)",
        "Throughput (req/s)",
        (5, 120),
        (200, 1800),
        -0.6,
        ["Cluster A", "Cluster B"],
    ),
    _ScatterDomain(
        "Price vs. customer rating",
        "Price ($)",
        "Rating (1-5)",
        (5, 150),
        (1, 5),
        0.3,
        ["Brand X", "Brand Y", "Brand Z"],
    ),
)


class _DistDomain(NamedTuple):
    title: str
    label: str  # measured variable, with units
    lo: float
    hi: float
    decimals: int
    groups_label: str
    groups: list[str]
    count_label: str  # y label for a histogram of this variable


_DIST_DOMAINS = (
    _DistDomain(
        "Salary distribution by department",
        "Salary ($k)",
        35,
        150,
        1,
        "Department",
        ["Sales", "Marketing", "Engineering", "Support", "Finance", "HR"],
        "Employees",
    ),
    _DistDomain(
        "Recovery time by treatment",
        "Recovery time (days)",
        2,
        30,
        1,
        "Treatment",
        ["Placebo", "Low dose", "Medium dose", "High dose"],
        "Patients",
    ),
    _DistDomain(
        "API latency by region",
        "Latency (ms)",
        15,
        320,
        0,
        "Region",
        ["US East", "US West", "EU Central", "Asia Pacific", "South America"],
        "Requests",
    ),
    _DistDomain(
        "Test scores by class",
        "Test score",
        30,
        100,
        0,
        "Class",
        ["Class A", "Class B", "Class C", "Class D", "Class E"],
        "Number of students",
    ),
    _DistDomain(
        "Commute times across the week",
        "Commute time (min)",
        8,
        75,
        1,
        "Day",
        ["Mon", "Tue", "Wed", "Thu", "Fri"],
        "Trips",
    ),
    _DistDomain(
        "Model accuracy across seeds",
        "Accuracy",
        0.5,
        0.97,
        2,
        "Model",
        ["Baseline", "Small", "Medium", "Large", "XL"],
        "Runs",
    ),
    _DistDomain("Daily returns", "Daily return (%)", -4.5, 4.5, 2, "Fund", ["Fund A", "Fund B", "Index"], "Days"),
    _DistDomain(
        "Customer age profile", "Customer age (years)", 18, 80, 0, "Store", ["Downtown", "Mall", "Online"], "Customers"
    ),
)

_HEATMAP_DOMAINS = (
    dict(
        title="Website visits by day and hour",
        rows=WEEKDAYS,
        cols=["8am", "9am", "10am", "11am", "12pm", "1pm", "2pm", "3pm", "4pm", "5pm", "6pm"],
        xlabel="Hour",
        ylabel="Day",
        cbar="Visits",
        lo=0,
        hi=260,
        decimals=0,
        cmaps=["YlGnBu", "Blues", "viridis", "magma"],
    ),
    dict(
        title="Monthly average temperature",
        rows=["2019", "2020", "2021", "2022", "2023", "2024"],
        cols=MONTHS,
        xlabel="Month",
        ylabel="Year",
        cbar="Temperature (°C)",
        lo=-6,
        hi=31,
        decimals=1,
        cmaps=["coolwarm", "RdYlBu_r", "plasma"],
    ),
    dict(
        title="Sales by region and product",
        rows=["North", "South", "East", "West", "Central"],
        cols=PRODUCTS[:8],
        xlabel="",
        ylabel="",
        cbar="Sales ($k)",
        lo=10,
        hi=520,
        decimals=0,
        cmaps=["Greens", "OrRd", "viridis", "YlOrBr"],
    ),
    dict(
        title="Benchmark accuracy by model",
        rows=["Baseline", "Model v1", "Model v2", "Model v3", "Ours"],
        cols=["MMLU", "GSM8K", "HumanEval", "ARC", "HellaSwag", "TruthfulQA"],
        xlabel="Benchmark",
        ylabel="Model",
        cbar="Accuracy (%)",
        lo=25,
        hi=92,
        decimals=1,
        cmaps=["viridis", "Blues", "cividis"],
    ),
    dict(
        title="Feature correlation matrix",
        rows=["Price", "Size", "Age", "Rooms", "Distance", "Rating"],
        cols=None,
        xlabel="",
        ylabel="",
        cbar="Correlation",
        lo=-1,
        hi=1,
        decimals=2,
        cmaps=["coolwarm", "RdBu_r"],
        correlation=True,
    ),
)
_DARK_CMAPS = ("viridis", "magma", "plasma", "cividis")

_RADAR_DOMAINS = (
    (
        "Player attributes",
        ["Speed", "Strength", "Agility", "Stamina", "Technique", "Vision", "Teamwork"],
        ["Alex", "Jordan", "Sam", "Taylor"],
    ),
    (
        "Smartphone comparison",
        ["Price", "Battery", "Camera", "Display", "Performance", "Design", "Durability"],
        ["Phone X", "Phone Y", "Phone Z"],
    ),
    (
        "Student performance",
        ["Math", "Reading", "Science", "History", "Art", "Music", "Sports"],
        ["Emma", "Liam", "Olivia", "Noah"],
    ),
    (
        "Team skill profile",
        ["Frontend", "Backend", "DevOps", "Testing", "Design", "Data", "Security"],
        ["Team Alpha", "Team Beta", "Team Gamma"],
    ),
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
_ERRORBAR_GROUPS = (
    ["Control", "Treatment"],
    ["Wild type", "Mutant"],
    ["Batch 1", "Batch 2", "Batch 3"],
    ["Sample A", "Sample B", "Sample C"],
)

_PIE_TITLES = ("{m} by {d}", "Share of {m} by {d}", "{m} breakdown by {d}", "{d} mix, {y}")
_SUPTITLES = (
    "Sales dashboard",
    "Quarterly overview",
    "Operations summary 2023",
    "Experiment results",
    "Regional performance review",
    "Annual report highlights",
    "Customer insights",
    "Q3 '24 snapshot",
    "Product analytics",
)
_GENERIC_NAMES = ("Other", "Misc", "Group X", "Segment Z", "New entry", "Pilot", "Legacy", "Partner")


def _title(rng: random.Random, metric: str, dim: str, group: str | None = None) -> str:
    templates = ["{m} by {d}", "{m} by {d}, {y}", "{m} per {d} ({y})", "{c}'s {lm} by {d}"]
    if group:
        templates += ["{m} by {d} and {g}", "{m} by {g}"]
    if dim.lower() == "year":
        templates = [t for t in templates if "{y}" not in t]
    # Lower-case the metric mid-sentence, but leave "YoY growth" alone.
    lm = metric[0].lower() + metric[1:] if metric[1:2].islower() else metric
    return rng.choice(templates).format(
        m=metric,
        lm=lm,
        d=dim.lower(),
        g=group.lower() if group else "",
        y=rng.randint(2019, 2024),
        c=rng.choice(_COMPANIES),
    )
