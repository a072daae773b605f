"""Chart corpora used for training and evaluation."""

from vlrl.datasets.synth import (
    FAMILIES,
    PERTURBATIONS,
    ChartSpec,
    PerturbationNotApplicable,
    applicable_perturbations,
    generate_specs,
    make_spec,
    perturb,
    perturb_random,
)

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
