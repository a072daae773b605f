"""Starter charts: one plotting call and a title, for a first run that learns on a CPU.

The synthetic families (vlrl.datasets.synth) are realistic scripts of 100-1,000 tokens; a
2M-parameter model needs thousands of SFT examples before any of its answers runs. A
starter chart is about 40 tokens of the tiny tokenizer, drawn from a small vocabulary
(five chart types, six colours, six titles, three to five categories with values 1-9), so
a minute of SFT teaches the template and what is left to learn, matching the chart type,
colour, title and values to the image, is what RL's rewards score.

    import matplotlib.pyplot as plt

    plt.bar(["A", "B", "C"], [3, 7, 5], color="red")
    plt.title("Sales")
"""

from __future__ import annotations

import random
from dataclasses import dataclass

STARTER_FAMILIES = ("bar", "barh", "line", "scatter", "pie")
_CALL = {"bar": "bar", "barh": "barh", "line": "plot", "scatter": "scatter", "pie": "pie"}
COLORS = ("red", "blue", "green", "orange", "purple", "black")
TITLES = ("Sales", "Costs", "Users", "Visits", "Orders", "Growth")
_CATEGORIES = "ABCDE"


@dataclass
class StarterChart:
    family: str
    labels: list[str]
    values: list[int]
    color: str
    title: str

    def to_code(self) -> str:
        labels = "[" + ", ".join(f'"{c}"' for c in self.labels) + "]"
        values = "[" + ", ".join(str(v) for v in self.values) + "]"
        if self.family == "pie":  # one colour per wedge would triple the script; matplotlib's cycle
            call = f"plt.pie({values}, labels={labels})"
        else:
            call = f'plt.{_CALL[self.family]}({labels}, {values}, color="{self.color}")'
        return f'import matplotlib.pyplot as plt\n\n{call}\nplt.title("{self.title}")\n'

    def metadata(self) -> dict:
        return {
            "labels": list(self.labels),
            "values": list(self.values),
            "color": None if self.family == "pie" else self.color,
            "title": self.title,
        }


def starter_charts(n: int, seed: int, families: tuple[str, ...] | list[str] | None = None) -> list[StarterChart]:
    """``n`` charts, a pure function of ``(n, seed, families)``; families take turns, so each
    appears once n reaches their number."""
    fams = list(families or STARTER_FAMILIES)
    unknown = [f for f in fams if f not in STARTER_FAMILIES]
    if unknown:
        raise ValueError(f"unknown starter famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}")
    rng = random.Random(seed)
    charts = []
    for i in range(n):
        k = rng.randint(3, 5)
        charts.append(
            StarterChart(
                family=fams[i % len(fams)],
                labels=list(_CATEGORIES[:k]),
                values=[rng.randint(1, 9) for _ in range(k)],
                color=rng.choice(COLORS),
                title=rng.choice(TITLES),
            )
        )
    return charts
