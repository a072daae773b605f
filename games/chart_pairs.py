"""Spy-game chart pairs from the synthetic corpus: a chart and a copy with two attributes changed.

The edits are the corpus's own spec perturbations (vlrl.datasets.synth), so the record
says exactly what differs: two series' colours swapped, a value changed, a label renamed,
a marker or line style changed. change_chart_type is left out: a bar chart turned into a
line chart is spotted at a glance and teaches the players nothing.

Both halves, and the chart after the first edit alone, are rendered by the sandboxed
RenderPool; a pair is skipped with its reason when a render fails or when an edit changes
no pixel (a value moved by less than the resolution shows, a label nobody draws), so every
change a record lists is one a player can see.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from vlrl.datasets.synth.generate import generate_specs
from vlrl.datasets.synth.perturbations import (
    PERTURBATIONS,
    PerturbationNotApplicable,
    applicable_perturbations,
    perturb,
)
from vlrl.datasets.synth.spec import ChartSpec

SPY_PERTURBATIONS: tuple[str, ...] = tuple(k for k in PERTURBATIONS if k != "change_chart_type")
# Renames go last so the other descriptions name series as the original chart shows them.
_APPLY_ORDER = ("change_value", "swap_colors", "change_marker", "change_linestyle", "rename_label")
# Kinds that may be applied twice when a chart offers too few distinct kinds (a histogram
# often only has labels), as long as the two edits hit different slots.
_REPEATABLE = ("change_value", "rename_label")
_REPEAT_TRIES = 8


def _clashes(earlier: dict, new: dict) -> bool:
    """Whether `new` re-edits what `earlier` changed (one visible change, or none if it reverts)."""
    if earlier["kind"] != new["kind"]:
        return False
    if new["kind"] == "change_value":
        return (earlier.get("panel"), earlier["series"], earlier["index"]) == (
            new.get("panel"),
            new["series"],
            new["index"],
        )
    same_kind_of_label = (earlier.get("panel"), earlier.get("target")) == (new.get("panel"), new.get("target"))
    return same_kind_of_label and new["before"] == earlier["after"]


def spy_perturb(spec: ChartSpec, rng: random.Random, n_changes: int = 2) -> tuple[ChartSpec, list[dict]]:
    """A copy of `spec` with `n_changes` spy edits and their exact descriptions."""
    steps, descriptions = spy_edit_steps(spec, rng, n_changes)
    return steps[-1], descriptions


def spy_edit_steps(spec: ChartSpec, rng: random.Random, n_changes: int = 2) -> tuple[list[ChartSpec], list[dict]]:
    """The spec after each of `n_changes` spy edits (the last is the spy's chart) and the
    edits' exact descriptions.

    Distinct kinds when the chart offers enough of them, otherwise a repeatable kind
    again on another slot. Raises PerturbationNotApplicable when neither works.
    """
    kinds = [k for k in applicable_perturbations(spec) if k in SPY_PERTURBATIONS]
    if len(kinds) >= n_changes:
        chosen = rng.sample(kinds, n_changes)
    else:
        repeatable = [k for k in kinds if k in _REPEATABLE]
        if not repeatable:
            raise PerturbationNotApplicable(
                f"a {spec.family} chart offers {len(kinds)} spy edit(s) ({', '.join(kinds) or 'none'}), "
                f"{n_changes} needed"
            )
        chosen = kinds + [rng.choice(repeatable) for _ in range(n_changes - len(kinds))]
    chosen.sort(key=_APPLY_ORDER.index)
    descriptions: list[dict] = []
    steps: list[ChartSpec] = []
    for kind in chosen:
        for _ in range(_REPEAT_TRIES):
            candidate, desc = perturb(spec, kind, rng)
            if not any(_clashes(d, desc) for d in descriptions):
                break
        else:
            raise PerturbationNotApplicable(f"no second distinct {kind} slot in this {spec.family} chart")
        spec = candidate
        steps.append(spec)
        descriptions.append(desc)
    return steps, descriptions


@dataclass
class ChartPairPlan:
    """One pair to render: the original spec, its spy copy and what changed (or why none)."""

    index: int
    original: ChartSpec
    steps: list[ChartSpec] = field(default_factory=list)  # after each change; the last is the spy's
    changes: list[dict] = field(default_factory=list)
    problem: str | None = None  # why this chart yields no pair

    @property
    def modified(self) -> ChartSpec | None:
        return self.steps[-1] if self.steps else None

    def codes(self) -> tuple[str, str]:
        assert self.modified is not None, "a plan without a modified spec has nothing to render"
        return self.original.to_code(), self.modified.to_code()

    def render_codes(self) -> list[str]:
        """The original, then the chart after each change: consecutive renders must differ."""
        return [self.original.to_code()] + [spec.to_code() for spec in self.steps]


def plan_chart_pairs(
    n: int, seed: int, families: Sequence[str] | None = None, n_changes: int = 2, indices: Iterable[int] | None = None
) -> list[ChartPairPlan]:
    """Plans for pair slots `indices` (default all of range(n)); a pure function of the arguments.

    Spec i is the corpus's spec i for `seed` (the corpus is prefix-stable, so a larger n
    keeps the earlier pairs), and its edits draw from a generator seeded by (seed, i).
    """
    specs = generate_specs(n, seed, families or None)
    plans = []
    for i in range(n) if indices is None else indices:
        plan = ChartPairPlan(index=i, original=specs[i])
        try:
            plan.steps, plan.changes = spy_edit_steps(specs[i], random.Random(f"spy-chart-{seed}-{i}"), n_changes)
        except PerturbationNotApplicable as exc:
            plan.problem = str(exc)
        plans.append(plan)
    return plans


def render_problem(*results, changes: Sequence[dict] = ()) -> tuple[str, str] | None:
    """(reason, detail) when RenderResults do not make a usable pair, else None.

    `results` are the original's render, then the render after each change (the last is
    the modified chart); with only two, the pair as a whole must differ.
    """
    last = len(results) - 1
    for k, result in enumerate(results):
        half = "original" if k == 0 else "modified" if k == last else "intermediate"
        if not result.ok:
            return f"{half}_render_failed", f"{result.error_kind}: {result.error}"
    images = [r.image for r in results]
    a, b = images[0], images[-1]
    odd = next((k for k, im in enumerate(images) if im.size != a.size), None)
    if odd is not None:
        what = "modified" if odd == last else f"after change {odd}"
        w, h = images[odd].size
        return "size_mismatch", f"original {a.size[0]}x{a.size[1]}, {what} {w}x{h}"
    if a.tobytes() == b.tobytes():
        return "identical_renders", "the edits changed no pixel"
    if last > 1:
        for k in range(last):
            if images[k].tobytes() == images[k + 1].tobytes():
                what = changes[k].get("text", changes[k].get("kind")) if k < len(changes) else f"change {k + 1}"
                return "invisible_edit", f"change {k + 1} ({what}) changed no pixel"
    return None


def render_chart_pairs(plans: Sequence[ChartPairPlan], pool) -> Iterator[tuple[ChartPairPlan, list]]:
    """(plan, [RenderResult of the original, then after each change]) per plan, in order,
    rendered concurrently. Plans with a problem are not rendered: their list is empty.
    """
    from renderers import strip_output_calls

    renderable = [p for p in plans if p.problem is None]
    codes = (strip_output_calls(code) for p in renderable for code in p.render_codes())
    results = pool.imap(codes)
    for plan in plans:
        if plan.problem is not None:
            yield plan, []
        else:
            yield plan, [next(results) for _ in range(1 + len(plan.steps))]


def chart_record(plan: ChartPairPlan, seed: int, image_size: tuple[int, int]) -> dict:
    """The JSON record of a rendered pair: exactly what differs, and both specs and scripts."""
    original_code, modified_code = plan.codes()
    return {
        "kind": "chart",
        "seed": seed,
        "index": plan.index,
        "family": plan.original.family,
        "image_size": list(image_size),
        "changes": plan.changes,
        "original_spec": plan.original.to_dict(),
        "modified_spec": plan.modified.to_dict(),
        "original_code": original_code,
        "modified_code": modified_code,
    }
