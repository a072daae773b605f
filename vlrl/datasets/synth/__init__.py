"""Deterministic synthetic chart corpus for chart-to-code RL.

A chart is a :class:`ChartSpec`: plain, JSON-serialisable data from which we emit the
matplotlib script a person would plausibly write.  Perturbations edit the spec and report
a precise description of the edit.  Everything is driven by an explicit ``random.Random``
so a corpus is a pure function of its seed.

The package is split by concern:

- ``spec``: the ChartSpec dataclass, the chart families and param conventions shared by all;
- ``vocabulary``: word lists, palettes and topic domains;
- ``generate``: random specs (``generate_specs``, ``make_spec``);
- ``emit``: spec -> matplotlib script (``ChartSpec.to_code``);
- ``metadata``: spec -> summary dict (``ChartSpec.metadata``);
- ``perturbations``: spec edits for the spy game and contrastive rewards.

Underscore names are private to the package; the modules share them with one another.
Import ``vlrl.datasets.synth.perturbations`` directly to perturb specs without loading
the generators or the emitter.
"""

from __future__ import annotations

import typing

from vlrl.datasets.synth.conventions import FAMILIES
from vlrl.datasets.synth.perturbations import (
    PERTURBATIONS,
    PerturbationNotApplicable,
    applicable_perturbations,
    perturb,
    perturb_random,
)
from vlrl.datasets.synth.spec import ChartSpec
from vlrl.datasets.synth.vocabulary import (  # noqa: F401  (public word lists, re-exported as before)
    AGE_GROUPS,
    CHANNELS,
    CITIES,
    COUNTRIES,
    DEPARTMENTS,
    LANGUAGES,
    LINESTYLES,
    MARKERS,
    MONTHS,
    PALETTES,
    PRODUCTS,
    QUARTERS,
    STORES,
    WEEKDAYS,
)

if typing.TYPE_CHECKING:  # so type checkers see the lazily loaded names
    from vlrl.datasets.synth.generate import generate_specs, make_spec

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

# The generators load on first use (PEP 562) so that importing the perturbations through
# this package does not pull them in.
_LAZY = ("generate_specs", "make_spec")


def __getattr__(name: str) -> typing.Any:
    if name in _LAZY:
        from vlrl.datasets.synth import generate

        value = getattr(generate, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
