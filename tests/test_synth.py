"""Tests for the synthetic chart corpus (vlrl.datasets.synth).

Scripts are exec'd in-process with Agg rather than through the renderer so the
suite stays fast and independent of renderers/; perturbed scripts are only
built (no tight_layout, no draw) because the unperturbed families already
cover the drawing path.
"""

from __future__ import annotations

import collections
import copy
import json
import random
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vlrl.datasets.synth import (  # noqa: E402
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

SAVEFIG = 'plt.savefig("chart.png")'
REQUIRED_FAMILIES = {
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
}
DATA_KEYS = ("values", "y", "data", "matrix")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def run_chart(code: str, draw: bool = True, tight: bool | None = None):
    """Exec a generated script the way callers do (savefig stripped); returns the figure.

    tight_layout costs about as much as a draw, so it is skipped where another
    test already covers it (by default whenever the figure is not drawn).
    """
    assert code.rstrip().endswith(SAVEFIG)
    body = code.replace(SAVEFIG, "")
    if not (draw if tight is None else tight):
        body = body.replace("plt.tight_layout()", "")
    plt.close("all")
    exec(compile(body, "<chart>", "exec"), {"__name__": "__chart__"})
    fig = plt.gcf()
    assert fig.axes, "script produced no axes"
    if draw:
        fig.canvas.draw()
    return fig


def leaves(obj, path=()):
    if isinstance(obj, dict):
        for key in obj:
            yield from leaves(obj[key], path + (key,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, path + (i,))
    else:
        yield path, obj


def changed_leaves(old: dict, new: dict) -> dict:
    a, b = dict(leaves(old)), dict(leaves(new))
    assert a.keys() == b.keys(), "perturbation changed the shape of the params"
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def data_numbers(params: dict) -> list:
    return sorted(v for path, v in leaves(params) if set(path) & set(DATA_KEYS) and isinstance(v, (int, float)))


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def test_public_vocabulary():
    assert REQUIRED_FAMILIES <= set(FAMILIES)
    assert set(PERTURBATIONS) == {
        "change_value",
        "swap_colors",
        "rename_label",
        "change_chart_type",
        "change_marker",
        "change_linestyle",
    }
    assert issubclass(PerturbationNotApplicable, ValueError)


def test_generate_specs_is_deterministic_per_seed():
    a = [s.to_code() for s in generate_specs(40, seed=3)]
    b = [s.to_code() for s in generate_specs(40, seed=3)]
    c = [s.to_code() for s in generate_specs(40, seed=4)]
    assert a == b
    assert a != c


def test_generate_specs_cycles_every_family():
    specs = generate_specs(40, seed=3)
    assert len(specs) == 40
    assert {s.family for s in specs} == set(FAMILIES)
    counts = collections.Counter(s.family for s in specs)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_generate_specs_family_filter_and_validation():
    specs = generate_specs(6, seed=0, families=["pie", "bar"])
    assert {s.family for s in specs} == {"pie", "bar"}
    with pytest.raises(ValueError):
        generate_specs(3, seed=0, families=["sankey"])
    with pytest.raises(ValueError):
        make_spec("sankey", random.Random(0))


@pytest.mark.parametrize("family", FAMILIES)
def test_family_code_runs_and_draws(family):
    for seed in (0, 1):
        spec = make_spec(family, random.Random(seed))
        code = spec.to_code()
        assert code.startswith("import matplotlib.pyplot as plt\n")
        assert code.rstrip().endswith(SAVEFIG) and code.count("savefig") == 1
        assert "plt.tight_layout()" in code
        assert "random" not in code  # all data are literals
        assert ("import numpy as np" in code) == ("np." in code)
        meta = spec.metadata()
        fig = run_chart(code, tight=seed == 0)
        assert len(fig.axes) >= meta["nrows"] * meta["ncols"]


def test_code_literals_are_clean():
    for spec in generate_specs(34, seed=5):
        code = spec.to_code()
        assert not re.search(r"\d\.\d{3,}", code), f"{spec.family}: more than 2 decimals"
        assert "np.float" not in code and "np.int" not in code


def test_labels_with_quotes_survive():
    spec = make_spec("bar", random.Random(0))
    spec.params["title"] = 'Women\'s "best" quarter'
    spec.params["ylabel"] = "Kids' sales"
    fig = run_chart(spec.to_code(), draw=False)
    assert fig.axes[0].get_title() == 'Women\'s "best" quarter'
    assert fig.axes[0].get_ylabel() == "Kids' sales"


def test_variety_and_figsizes():
    specs = generate_specs(120, seed=9)
    numbers = [v for s in specs for v in data_numbers(s.params)]
    assert min(numbers) < 0 and max(numbers) > 1000
    assert any(0 < v < 1 for v in numbers)
    for s in specs:
        w, h = s.params["figsize"]
        assert 5 <= w <= 10 and 3.5 <= h <= 6, (s.family, s.params["figsize"])
    titles = {s.metadata()["title"] for s in specs}
    assert len(titles) > 60


@pytest.mark.parametrize("family", FAMILIES)
def test_metadata_is_json_and_consistent(family):
    meta = make_spec(family, random.Random(2)).metadata()
    assert json.loads(json.dumps(meta)) == meta
    for key in ("family", "title", "xlabel", "ylabel", "series", "colors", "n_series", "n_points", "nrows", "ncols"):
        assert key in meta
    assert meta["family"] == family
    assert len(meta["series"]) == len(meta["colors"]) == meta["n_series"]
    assert meta["n_points"] > 0
    if family.startswith("grid_"):
        assert (meta["nrows"], meta["ncols"]) == {"grid_1x2": (1, 2), "grid_2x2": (2, 2)}[family]
        assert len(meta["panels"]) == meta["nrows"] * meta["ncols"]
        assert all(p["title"] for p in meta["panels"])


def test_spec_dict_round_trip():
    spec = make_spec("grid_2x2", random.Random(4))
    again = ChartSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.to_code() == spec.to_code()


# ---------------------------------------------------------------------------
# Perturbations
# ---------------------------------------------------------------------------


def _panel_view(spec: ChartSpec, desc: dict):
    """(family, params, metadata) of the part of the chart the description talks about."""
    panel = desc.get("panel")
    if panel is None:
        return spec.family, spec.params, spec.metadata()
    part = spec.params["panels"][panel]
    return part["family"], part["params"], spec.metadata()["panels"][panel]


def check_change_value(old, new, desc):
    diff = changed_leaves(old.params, new.params)
    assert len(diff) == 1, diff
    ((before, after),) = diff.values()
    assert (before, after) == (desc["before"], desc["after"])
    assert abs(after - before) >= 0.2 * abs(before)
    _, params, meta = _panel_view(old, desc)
    assert desc["series"] in meta["series"] + (params.get("rows") or [])  # heatmaps name the row


def check_swap_colors(old, new, desc):
    a, b = desc["series"]
    before = dict(zip(_panel_view(old, desc)[2]["series"], _panel_view(old, desc)[2]["colors"]))
    after = dict(zip(_panel_view(new, desc)[2]["series"], _panel_view(new, desc)[2]["colors"]))
    assert desc["before"] == [before[a], before[b]] and desc["after"] == [before[b], before[a]]
    assert (after[a], after[b]) == (before[b], before[a]) and before[a] != before[b]
    assert {k: v for k, v in after.items() if k not in (a, b)} == {k: v for k, v in before.items() if k not in (a, b)}
    assert len(changed_leaves(old.params, new.params)) == 2


def check_single_edit(old, new, desc):
    diff = changed_leaves(old.params, new.params)
    assert list(diff.values()) == [(desc["before"], desc["after"])], diff


def check_rename_label(old, new, desc):
    assert desc["target"] in {"title", "xlabel", "ylabel", "series", "category", "suptitle"}
    check_single_edit(old, new, desc)
    assert isinstance(desc["after"], str) and desc["after"] in new.to_code()
    _, _, meta = _panel_view(new, desc)
    if desc["target"] in ("title", "xlabel", "ylabel"):
        assert meta[desc["target"]] == desc["after"]
    if desc["target"] == "series":
        assert desc["after"] in meta["series"] and desc["before"] not in meta["series"]


def check_change_chart_type(old, new, desc):
    old_family, old_params, _ = _panel_view(old, desc)
    new_family, new_params, new_meta = _panel_view(new, desc)
    assert (old_family, new_family) == (desc["before"], desc["after"]) and old_family != new_family
    assert data_numbers(old_params) == data_numbers(new_params), "chart type change must keep the data"
    assert new_meta["family"] == new_family


CHECKS = {
    "change_value": check_change_value,
    "swap_colors": check_swap_colors,
    "rename_label": check_rename_label,
    "change_chart_type": check_change_chart_type,
    "change_marker": check_single_edit,
    "change_linestyle": check_single_edit,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_perturbation_on_every_family(family):
    for seed in (11, 12):
        spec = make_spec(family, random.Random(seed))
        snapshot, code = copy.deepcopy(spec.params), spec.to_code()
        applicable = applicable_perturbations(spec)
        for kind in PERTURBATIONS:
            if kind not in applicable:
                with pytest.raises(PerturbationNotApplicable):
                    perturb(spec, kind, random.Random(seed))
                continue
            new, desc = perturb(spec, kind, random.Random(seed))
            assert desc["kind"] == kind and desc["text"]
            json.dumps(desc)
            assert new.to_code() != code
            CHECKS[kind](spec, new, desc)
            if seed == 11:  # executing one seed's worth keeps the suite fast
                run_chart(new.to_code(), draw=False)
        assert spec.params == snapshot and spec.to_code() == code, "input spec was mutated"


def test_each_perturbation_is_exercised():
    """Guards against a kind silently never applying (its slot finder returning nothing)."""
    seen = collections.defaultdict(set)
    for spec in generate_specs(34, seed=1):
        for kind in applicable_perturbations(spec):
            seen[kind].add(spec.family)
    assert set(seen) == set(PERTURBATIONS)
    assert {"line", "scatter"} <= seen["change_marker"]
    assert {"bar", "pie", "heatmap"} <= seen["change_value"]


def test_not_applicable_cases():
    rng = random.Random(0)
    pie = make_spec("pie", rng)
    with pytest.raises(PerturbationNotApplicable, match="marker"):
        perturb(pie, "change_marker", rng)
    bar = make_spec("bar", rng)
    with pytest.raises(PerturbationNotApplicable, match="swap_colors"):
        perturb(bar, "swap_colors", rng)
    hist = make_spec("hist", rng)
    with pytest.raises(PerturbationNotApplicable):
        perturb(hist, "change_chart_type", rng)
    with pytest.raises(ValueError):
        perturb(bar, "recolour_everything", rng)


def test_perturb_random_raises_when_too_few_kinds():
    spec = make_spec("hist", random.Random(0))
    spec.params["series"] = spec.params["series"][:1]  # one histogram: only its labels can change
    assert applicable_perturbations(spec) == ["rename_label"]
    with pytest.raises(PerturbationNotApplicable, match="rename_label"):
        perturb_random(spec, random.Random(0), n_changes=2)


def test_perturb_is_deterministic():
    spec = make_spec("line", random.Random(3))
    a = perturb_random(spec, random.Random(8), n_changes=2)
    b = perturb_random(spec, random.Random(8), n_changes=2)
    assert a == b


def _spec_with_two_kinds(family: str) -> ChartSpec:
    # Single-series histograms only allow rename_label, so a seed may need skipping.
    for seed in range(21, 31):
        spec = make_spec(family, random.Random(seed))
        if len(applicable_perturbations(spec)) >= 2:
            return spec
    raise AssertionError(f"{family} supports too few perturbations for the spy game")


@pytest.mark.parametrize("family", FAMILIES)
def test_perturb_random_two_distinct_changes(family):
    spec = _spec_with_two_kinds(family)
    before = copy.deepcopy(spec.params)
    new, descs = perturb_random(spec, random.Random(5), n_changes=2)
    assert len(descs) == 2 and descs[0]["kind"] != descs[1]["kind"]
    assert new.to_code() != spec.to_code() and spec.params == before
    run_chart(new.to_code(), draw=False)
    with pytest.raises(PerturbationNotApplicable):
        perturb_random(spec, random.Random(5), n_changes=len(PERTURBATIONS) + 1)


def test_perturb_random_keeps_style_changes_visible():
    """A marker change followed by a chart-type change must not convert the markers away."""
    for seed in range(40):
        spec = make_spec("line", random.Random(seed))
        new, descs = perturb_random(spec, random.Random(seed), n_changes=2)
        kinds = [d["kind"] for d in descs]
        if "change_chart_type" in kinds and "change_marker" in kinds:
            assert new.family in ("line", "scatter")
            assert any(s.get("marker") == descs[kinds.index("change_marker")]["after"] for s in new.params["series"])
