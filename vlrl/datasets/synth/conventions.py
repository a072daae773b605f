"""Conventions of the synthetic corpus that generation, code emission, metadata and
perturbation must agree on: the chart families and their groups, how values are rounded,
when tick labels rotate, how grid panels are named. Kept below every other module of the
package so that each can import it without importing one another.
"""

from __future__ import annotations

from typing import Sequence

FAMILIES: tuple[str, ...] = (
    "bar",
    "barh",
    "grouped_bar",
    "stacked_bar",
    "line",
    "scatter",
    "pie",
    "donut",
    "hist",
    "box",
    "violin",
    "heatmap",
    "area",
    "errorbar",
    "radar",
    "grid_1x2",
    "grid_2x2",
)

# Families whose params are {"categories": [...], "series": [{"name", "values", "color", ...}]}.
# Sharing one layout is what lets change_chart_type keep the data untouched.
_CATEGORY_FAMILIES = ("bar", "barh", "grouped_bar", "stacked_bar", "line", "area", "errorbar")
_BAR_FAMILIES = ("bar", "barh", "grouped_bar", "stacked_bar")
_PIE_FAMILIES = ("pie", "donut")
_DIST_FAMILIES = ("box", "violin")
_GRID_SHAPES = {"grid_1x2": (1, 2), "grid_2x2": (2, 2)}


# ---------------------------------------------------------------------------
# Param conventions shared by generation, emission and perturbation
# ---------------------------------------------------------------------------


def _round(v: float, decimals: int) -> float | int:
    if decimals == 0:
        return int(round(v))
    return round(v, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def _rotation(labels: list) -> int:
    longest = max(len(str(c)) for c in labels)
    if longest * len(labels) > 60:
        return 45
    return 30 if longest > 7 and len(labels) > 4 else 0


def _decimals(values: Sequence[float]) -> int:
    if all(isinstance(v, int) for v in values):
        return 0
    return 2 if any(round(v, 1) != v for v in values) else 1


def _has_negative(p: dict) -> bool:
    return any(v < 0 for s in p["series"] for v in s["values"])


def _panel_position(nrows: int, ncols: int, k: int) -> tuple[str, str]:
    """(index expression into ``axes``, human name) of panel ``k``."""
    if nrows == 1:
        return str(k), ("left", "right")[k] if ncols == 2 else f"panel {k + 1}"
    r, c = divmod(k, ncols)
    return f"{r}, {c}", f"{('top', 'bottom')[r]} {('left', 'right')[c]}"
