"""Probes a reward-hacking policy would try, on real renders through the sandboxed pool.

Each probe is code a policy could write for the reference chart below. Every probe must
score no higher than the reference's own code under the training rewards, and what the
image does not show (hidden, transparent, zero-size, off-canvas, clipped) must earn
nothing. The second half checks that the caps keep every reward's cost bounded and leave
normal-size results unchanged.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from renderers.validate import Rejected, check_trace
from rewards import RewardInput, build_reward, low_level_metrics
from rewards.chart_rewards import (
    MAX_TEXT_CHARS,
    _match_matrix,
    data_score,
    data_series,
    edit_similarity,
    levenshtein,
    series_match,
)
from rewards.chartmimic import METRICS, _best_total_similarity, color_metric, filter_colors, visible_view
from rewards.colors import color_similarity, similarity_matrix
from rewards.critique import chart_critique

HEAD = "import matplotlib.pyplot as plt\nimport numpy as np\n"
REF = (
    HEAD
    + """
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4", label="North")
axes[0].plot([1, 2, 3, 4], [12, 18, 22, 25], color="#d62728", label="South")
axes[0].set_title("Sales 2023")
axes[0].set_xlabel("Quarter")
axes[0].set_ylabel("Units")
axes[0].legend()
axes[1].bar(["a", "b", "c"], [3, 4, 5], color="#2ca02c")
axes[1].set_title("Stock")
"""
)
PIE = (
    HEAD
    + """
fig, ax = plt.subplots(figsize=(4, 4))
ax.pie([30, 50, 20], labels=["x", "y", "z"], colors=["#1f77b4", "#ff7f0e", "#2ca02c"])
ax.set_title("Share")
"""
)
ERRORBAR = (
    HEAD
    + """
fig, ax = plt.subplots(figsize=(4, 3))
ax.errorbar([1, 2, 3], [4, 5, 7], yerr=[0.5, 0.4, 0.3], capsize=4, color="#1f77b4")
ax.set_title("Error")
"""
)

# Code that hides everything the reference draws, in several ways.
HIDE_ALL_ALPHA = (
    REF
    + """
for a in fig.findobj():
    a.set_alpha(0)
"""
)
HIDE_TEXTS_AXIS_OFF = (
    REF.replace('color="#1f77b4"', 'color="#1f77b4", alpha=0')
    .replace('color="#d62728"', 'color="#d62728", alpha=0')
    .replace('color="#2ca02c"', 'color="#2ca02c", alpha=0')
    + """
for ax in axes:
    ax.title.set_visible(False)
    ax.xaxis.label.set_visible(False)
    ax.yaxis.label.set_visible(False)
    ax.get_legend() and ax.get_legend().set_visible(False)
    ax.axis("off")
"""
)
HIDE_AXES = REF + "\nfor ax in axes:\n    ax.set_visible(False)\n"
TRANSPARENT_COLOURS = (
    REF.replace("#1f77b4", "#1f77b400").replace("#d62728", "#d6272800").replace("#2ca02c", "#2ca02c00")
    + """
for t in fig.findobj(lambda a: hasattr(a, 'set_color') and type(a).__name__ == 'Text'):
    t.set_color((0, 0, 0, 0))
for ax in axes:
    ax.axis("off")
"""
)
ZERO_SIZE = (
    HEAD
    + """
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4", label="North", linewidth=0)
axes[0].scatter([1, 2, 3, 4], [12, 18, 22, 25], s=0, color="#d62728")
axes[0].set_title("Sales 2023", fontsize=0)
axes[0].set_xlabel("Quarter", fontsize=0)
axes[0].set_ylabel("Units", fontsize=0)
axes[0].axis("off")
axes[1].bar(["a", "b", "c"], [3, 4, 5], width=0, color="#2ca02c")
axes[1].set_title("Stock", fontsize=0)
axes[1].axis("off")
"""
)
OFF_CANVAS = (
    HEAD
    + """
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax in axes:
    ax.axis("off")
fig.text(5, 5, "Sales 2023")
fig.text(-3, 0.5, "Stock")
fig.text(0.5, -4, "Quarter")
axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4", label="North", clip_on=False)
axes[0].set_xlim(100, 200)  # the data sits far off the figure
axes[1].bar(["a", "b", "c"], [3, 4, 5], color="#2ca02c")
axes[1].set_ylim(1000, 2000)  # clipped away inside its axes
"""
)
TINY_PIE = (
    HEAD
    + """
fig, ax = plt.subplots(figsize=(4, 4))
ax.pie([30, 50, 20], colors=["#1f77b4", "#ff7f0e", "#2ca02c"], radius=1e-4, labels=["", " ", "   "])
ax.set_xlim(-1, 1)
ax.set_ylim(-1, 1)
ax.axis("off")
"""
)
# A visible but wrong chart, with hidden copies of everything the reference has.
WRONG = (
    HEAD
    + """
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].scatter([1, 2], [5, 5], color="#000000")
axes[1].scatter([1, 2], [5, 5], color="#000000")
"""
)
WRONG_WITH_HIDDEN_COPY = (
    WRONG
    + """
axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4", label="North", visible=False)
axes[0].plot([1, 2, 3, 4], [12, 18, 22, 25], color="#d62728", label="South", alpha=0)
axes[0].set_title("Sales 2023", alpha=0)
axes[0].set_xlabel("Quarter", color="none")
axes[0].set_ylabel("Units", visible=False)
leg = axes[0].legend(["North", "South"])
leg.set_visible(False)
axes[1].bar(["a", "b", "c"], [3, 4, 5], color="#2ca02c", alpha=0)
axes[1].bar(["a", "b", "c"], [0, 0, 0], color="#2ca02c")
axes[1].set_title("Stock", visible=False)
axes[1].text(0.5, 0.5, "Stock", fontsize=0)
axes[1].text(0.5, 0.5, "   ")
fig.text(0.3, 0.5, "Sales 2023", color="white")  # white on white changes no pixel
fig.text(0.7, 0.5, "Units", color="white", alpha=0.5)
"""
)
DUPLICATED = (
    REF
    + """
for _ in range(4):
    axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4")
    axes[0].text(2, 20, "Sales 2023")
"""
)
FLAT_ZERO = (
    REF.replace("[10, 20, 15, 30]", "[0, 0, 0, 0]")
    .replace("[12, 18, 22, 25]", "[0, 0, 0, 0]")
    .replace(', label="North"', "")
    .replace(', label="South"', "")
)
DEGENERATE = {
    "nan": REF.replace("[10, 20, 15, 30]", "[np.nan] * 4").replace("[12, 18, 22, 25]", "[np.nan] * 4"),
    "inf": REF.replace("[10, 20, 15, 30]", "[np.inf, -np.inf, np.inf, 1]"),
    "huge": REF.replace("[10, 20, 15, 30]", "[1e300, -1e300, 1e300, 1e-300]").replace(
        "[3, 4, 5]", "[1e300, 1e300, 1e300]"
    ),
    "constant": REF.replace("[10, 20, 15, 30]", "[20, 20, 20, 20]").replace("[12, 18, 22, 25]", "[20, 20, 20, 20]"),
    "empty": REF.replace("[1, 2, 3, 4], [10, 20, 15, 30]", "[], []").replace(
        "[1, 2, 3, 4], [12, 18, 22, 25]", "[], []"
    ),
    "empty figure": HEAD + "fig = plt.figure()\n",
}
PROBES = {
    "hide all (alpha 0)": HIDE_ALL_ALPHA,
    "hidden texts, axis off": HIDE_TEXTS_AXIS_OFF,
    "hidden axes": HIDE_AXES,
    "transparent colours": TRANSPARENT_COLOURS,
    "zero size": ZERO_SIZE,
    "off canvas": OFF_CANVAS,
    "wrong": WRONG,
    "wrong + hidden copy": WRONG_WITH_HIDDEN_COPY,
    "duplicated": DUPLICATED,
    "flat zero": FLAT_ZERO,
    **{f"degenerate {k}": v for k, v in DEGENERATE.items()},
}
INVISIBLE = [
    "hide all (alpha 0)",
    "hidden texts, axis off",
    "hidden axes",
    "transparent colours",
    "zero size",
    "off canvas",
]


@pytest.fixture(scope="module")
def pool(render_pool):
    return render_pool  # the session's warm pool (tests/conftest.py)


@pytest.fixture(scope="module")
def renders(pool):
    names = ["ref", "pie", "tiny pie", "errorbar", *PROBES]
    codes = [REF, PIE, TINY_PIE, ERRORBAR, *PROBES.values()]
    return dict(zip(names, pool.render_many(codes)))


def _score(reward, render, ref, code=None):
    completion = f"```python\n{code}\n```" if code is not None else "```python\nx = 1\n```"
    return reward([RewardInput(completion=completion, render=render, reference_render=ref)])[0]


@pytest.mark.parametrize("name", list(PROBES))
@pytest.mark.parametrize("reward_name", ["msrl_text", "chartmimic", "format", "exec"])
def test_no_probe_outscores_the_reference(renders, name, reward_name):
    reward = build_reward(reward_name)
    ref = renders["ref"]
    assert ref.ok, ref.error
    best = _score(reward, ref, ref, REF).score
    got = _score(reward, renders[name], ref, PROBES[name]).score
    assert got <= best + 1e-9, (name, reward_name, got, best)


@pytest.mark.parametrize("name", INVISIBLE)
def test_what_the_image_does_not_show_earns_nothing(renders, name):
    r = renders[name]
    assert r.ok, r.error
    view = visible_view(r.trace)
    assert view["texts"] == [] and view["types"] == {} and view["colors"] == [], name
    assert data_series(view) == [] and view["layout"] == [], name
    ref = renders["ref"]
    msrl = _score(build_reward("msrl_text"), r, ref).components
    assert msrl["data"] == 0 and msrl["type"] == 0 and msrl["layout"] == 0 and msrl["title"] == 0, (name, msrl)
    assert _score(build_reward("chartmimic"), r, ref).score == 0, name


def test_invisible_copy_scores_below_the_visible_chart_but_official_metric_unchanged(renders):
    ref, hidden = renders["ref"], renders["hide all (alpha 0)"]
    for reward in ("msrl_text", "chartmimic"):
        assert _score(build_reward(reward), hidden, ref).score < _score(build_reward(reward), ref, ref).score
    # Evaluation keeps ChartMimic's semantics: what the script calls counts, shown or not.
    official = low_level_metrics(hidden.trace, ref.trace)
    assert all(official[m].f1 == pytest.approx(1.0) for m in ("text", "type", "layout")), official
    assert build_reward("chartmimic", visible_only=False)([RewardInput("", render=hidden, reference_render=ref)])[
        0
    ].components["text"] == pytest.approx(1.0)


def test_hidden_copies_add_nothing_to_a_wrong_chart(renders):
    ref = renders["ref"]
    for reward in ("msrl_text", "chartmimic"):
        plain = _score(build_reward(reward), renders["wrong"], ref)
        decorated = _score(build_reward(reward), renders["wrong + hidden copy"], ref)
        assert decorated.score == pytest.approx(plain.score), (reward, plain.components, decorated.components)


def test_text_in_the_background_colour_is_not_visible(renders):
    texts = renders["wrong + hidden copy"].trace
    assert "Sales 2023" in texts["texts"] and "Units" in texts["texts"]  # official: drawn
    assert visible_view(texts)["texts"] == []


def test_tiny_pie_earns_nothing(renders):
    pie, tiny = renders["pie"], renders["tiny pie"]
    assert tiny.ok, tiny.error
    view = visible_view(tiny.trace)
    assert view["types"] == {} and view["colors"] == [] and data_series(view) == []
    assert _score(build_reward("msrl_text"), tiny, pie).components["data"] == 0
    assert _score(build_reward("chartmimic"), tiny, pie).score == 0
    assert _score(build_reward("chartmimic"), pie, pie).score == pytest.approx(1.0)


def test_unlabelled_flat_line_is_data_and_matplotlib_helpers_are_not(renders):
    ref, flat = renders["ref"], renders["flat zero"]
    assert _score(build_reward("msrl_text"), flat, ref).components["data"] < 0.5
    assert len(data_series(flat.trace)) == 3  # two unlabelled lines and the bars
    # An error bar's caps are matplotlib's lines: only its data line is a series.
    err = renders["errorbar"].trace
    assert [line["helper"] for line in err["axes"][0]["lines"]] == [False, True, True]
    assert data_series(err) == [[4, 5, 7]]


# A one-axes chart, and answers that draw nothing of it: each would agree with it on the grid
# (one axes) and on having no axis labels without showing anything. Found by RL on starter
# charts: the policy learned to write only `plt.title(...)`.
STARTER_REF = HEAD + 'plt.bar(["A", "B", "C"], [3, 7, 5], color="red")\nplt.title("Sales")\n'
DRAWS_NOTHING = {
    "title only": 'plt.title("Sales")',
    "empty bar call": 'plt.bar([], [])\nplt.title("Sales")',
    "transparent bars": 'plt.bar(["A", "B", "C"], [3, 7, 5], color="red", alpha=0)\nplt.title("Sales")',
    "zero-height bars": 'plt.bar(["A", "B", "C"], [0, 0, 0], color="red")\nplt.title("Sales")',
    "empty line": 'plt.plot([])\nplt.title("Sales")',
    "text only": 'plt.text(0.5, 0.5, "A B C")\nplt.title("Sales")',
    "axis off": 'plt.axis("off")\nplt.title("Sales")',
    "tick labels only": 'plt.xticks([0, 1, 2], ["A", "B", "C"])\nplt.title("Sales")',
    "bars off the axes": 'plt.bar(["A", "B", "C"], [3, 7, 5], color="red")\nplt.ylim(100, 200)\nplt.title("Sales")',
    "bare figure": "plt.figure()",
}
# an honest attempt with the wrong chart type: it must pay more than drawing nothing
WRONG_TYPE = HEAD + 'plt.plot(["A", "B", "C"], [3, 7, 5], color="red")\nplt.title("Sales")\n'


@pytest.fixture(scope="module")
def empty_renders(pool):
    codes = [STARTER_REF, WRONG_TYPE, *(HEAD + c for c in DRAWS_NOTHING.values())]
    return dict(zip(["ref", "wrong type", *DRAWS_NOTHING], pool.render_many(codes)))


def _stage1(renders, name):
    weights = {"format": 0.1, "exec": 0.2, "msrl_text": 0.7}
    code = STARTER_REF if name == "ref" else WRONG_TYPE if name == "wrong type" else HEAD + DRAWS_NOTHING[name]
    return sum(w * _score(build_reward(r), renders[name], renders["ref"], code).score for r, w in weights.items())


@pytest.mark.parametrize("name", list(DRAWS_NOTHING))
def test_a_chart_that_draws_nothing_earns_only_the_texts_it_shows(empty_renders, name):
    r = empty_renders[name]
    assert r.ok, r.error
    out = _score(build_reward("msrl_text"), r, empty_renders["ref"], HEAD + DRAWS_NOTHING[name])
    c = out.components
    assert c["data"] == 0 and c["type"] == 0 and c["layout"] == 0 and c["labels"] == 0, (name, c)
    assert out.score <= 0.2 + 1e-9  # the title's weight, at most
    assert "draws nothing" in out.critique
    # it ran, but exec pays only a figure that shows something; ChartMimic's sense still says it ran
    ex = _score(build_reward("exec"), r, empty_renders["ref"])
    assert ex.score == 0 and ex.components == {"ran": 1.0} and "shows nothing" in ex.critique
    assert _score(build_reward("exec", visible_only=False), r, empty_renders["ref"]).score == 1
    # drawing something, even of the wrong type, always pays more under stage 1's reward
    assert _stage1(empty_renders, "wrong type") > _stage1(empty_renders, name) + 0.1


def test_an_honest_chart_keeps_its_vacuous_agreements(empty_renders):
    # no axis labels on either side, one axes each: still full marks when something is drawn
    c = _score(build_reward("msrl_text"), empty_renders["wrong type"], empty_renders["ref"], WRONG_TYPE).components
    assert c["layout"] == 1 and c["labels"] == 1 and c["title"] == 1 and c["type"] == 0
    assert _stage1(empty_renders, "ref") == pytest.approx(1.0)
    assert _score(build_reward("exec"), empty_renders["wrong type"], empty_renders["ref"]).score == 1


def test_exec_without_a_reference_asks_for_a_visible_chart(empty_renders):
    exec_reward = build_reward("exec")
    plain = [RewardInput("", render=empty_renders[name]) for name in ("wrong type", "title only")]
    assert [o.score for o in exec_reward(plain)] == [1.0, 0.0]
    # a reference that itself draws nothing asks for nothing more than running
    blank = empty_renders["title only"]
    assert exec_reward([RewardInput("", render=blank, reference_render=blank)])[0].score == 1.0


def test_reference_scores_full_marks_against_itself(renders):
    for name, code in (("ref", REF), ("pie", PIE), ("errorbar", ERRORBAR)):
        r = renders[name]
        for reward in ("msrl_text", "chartmimic", "format", "exec"):
            assert _score(build_reward(reward), r, r, code).score == pytest.approx(1.0), (name, reward)


def test_visible_entry_passes_and_forgeries_fail_the_boundary(renders):
    import copy

    trace = renders["ref"].trace
    assert check_trace(copy.deepcopy(trace)) is not None
    bad = []
    t = copy.deepcopy(trace)
    del t["visible"]
    bad.append(t)
    t = copy.deepcopy(trace)
    t["visible"]["axes"][0]["lines"].append(True)  # a flag for a line that does not exist
    bad.append(t)
    t = copy.deepcopy(trace)
    t["visible"]["n_axes"] = 99
    bad.append(t)
    t = copy.deepcopy(trace)
    t["visible"]["axes"][1]["bars"][0] = [7, 7, 7]
    bad.append(t)
    t = copy.deepcopy(trace)
    t["visible"]["texts"] = [1]
    bad.append(t)
    for t in bad:
        with pytest.raises(Rejected):
            check_trace(t)


# --------------------------------------------------------------------------- bounded cost


def _levenshtein_table(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_bit_parallel_edit_distance_is_exact():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3 and levenshtein("", "") == 0
    assert levenshtein("flaw", "lawn") == 2
    assert edit_similarity("Sales 2023", "Sales 2024") == pytest.approx(0.9)
    rng = random.Random(0)
    for _ in range(500):
        a = "".join(rng.choice("abcé\n ") for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice("abd\n ") for _ in range(rng.randint(0, 80)))
        assert levenshtein(a, b) == _levenshtein_table(a, b), (a, b)


def test_series_matrix_matches_pairwise_series_match():
    rng = random.Random(1)
    values = [0, 1, 2.5, -3, 100, 1e300, -1e300, 1e-300, 7]
    for _ in range(200):
        gen = [[rng.choice(values) for _ in range(rng.randint(1, 7))] for _ in range(rng.randint(1, 4))]
        ref = [[rng.choice(values) for _ in range(rng.randint(1, 7))] for _ in range(rng.randint(1, 4))]
        want = np.array([[series_match(g, r, 0.05) for r in ref] for g in gen])
        assert np.array_equal(_match_matrix(gen, ref, 0.05), want)


def _filter_colors_pairwise(colors):
    colors = [list(c) for c in colors]
    if len(colors) <= 10:
        return colors
    kept = []
    for group, color in colors:
        if all(color_similarity(color, other) <= 0.7 for _, other in kept):
            kept.append([group, color])
    return kept


def _best_total_brute(gen, ref):
    if not gen or not ref:
        return 0.0
    if len(gen) > len(ref):
        gen, ref = ref, gen
    return max(sum(color_similarity(g, r) for g, r in zip(gen, perm)) for perm in itertools.permutations(ref, len(gen)))


def test_vectorised_colour_maths_matches_the_pairwise_definitions():
    rng = random.Random(2)
    pool = [f"#{rng.randrange(16**6):06X}" for _ in range(40)] + ["viridis", "plasma", "Blues"]
    for _ in range(40):
        colors = [[rng.choice(["bar", "line"]), rng.choice(pool)] for _ in range(rng.randint(0, 25))]
        assert filter_colors(colors) == _filter_colors_pairwise(colors)
        gen = [rng.choice(pool) for _ in range(rng.randint(0, 5))]
        ref = [rng.choice(pool) for _ in range(rng.randint(0, 5))]
        assert _best_total_similarity(gen, ref) == pytest.approx(_best_total_brute(gen, ref), abs=1e-12)
        m = similarity_matrix(gen, ref)
        assert m.shape == (len(gen), len(ref))
        assert all(
            m[i, j] == pytest.approx(color_similarity(g, r), abs=1e-12)
            for i, g in enumerate(gen)
            for j, r in enumerate(ref)
        )
    # hand-computed: identical colours pair fully, a colormap name only with itself
    assert _best_total_similarity(["#FF0000", "viridis"], ["viridis", "#FF0000"]) == pytest.approx(2.0)
    assert _best_total_similarity(["viridis"], ["#FF0000"]) == 0.0


def test_visible_view_of_a_hand_built_trace():
    trace = {
        "types": {"plot": 2, "bar": 1},
        "colors": [["line", "#000000"], ["bar", "#FF0000"]],
        "texts": ["T", "hidden"],
        "tick_labels": [],
        "layout": [[1, 1, 0, 0, 0, 0]],
        "suptitle": "S",
        "figure": {"n_axes": 1},
        "axes": [
            {
                "title": "T",
                "xlabel": "x",
                "ylabel": "y",
                "legend": ["a", "b"],
                "lines": [{"label": "a", "y": [1, 2]}, {"label": "b", "y": [3, 4]}],
                "bars": [
                    {"values": [0, 4, 5], "x": [0, 1, 2], "y": [0, 2, 2.5], "colors": ["#FF0000"] * 3},
                    {"values": [0, 0], "x": [0, 1], "y": [0, 0], "colors": ["#FF0000"] * 2},
                ],
                "wedges": [],
                "collections": [],
                "images": [],
            }
        ],
        "visible": {
            "texts": ["T"],
            "types": {"plot": 1},
            "colors": [["line", "#000000"]],
            "layout": [],
            "n_axes": 0,
            "suptitle": False,
            "axes": [
                {
                    "title": True,
                    "xlabel": False,
                    "ylabel": True,
                    "legend": [True, False],
                    "lines": [False, True],
                    "bars": [[1, 2, 0], [1, 1]],
                    "wedges": [],
                    "collections": [],
                    "images": [],
                }
            ],
        },
    }
    view = visible_view(trace)
    ax = view["axes"][0]
    assert (view["texts"], view["types"], view["layout"], view["suptitle"]) == (["T"], {"plot": 1}, [], "")
    assert (ax["title"], ax["xlabel"], ax["ylabel"], ax["legend"]) == ("T", "", "y", ["a"])
    assert [line["label"] for line in ax["lines"]] == ["b"]
    # a series with a visible bar keeps its zero bars as zeros; an all-zero series is gone
    assert [b["values"] for b in ax["bars"]] == [[0, 4]]
    assert data_series(view) == [[0, 4], [3, 4]]
    assert data_series(trace) == [[0, 4, 5], [0, 0], [1, 2], [3, 4]]
    assert visible_view({"texts": ["a"]}) == {"texts": ["a"]}  # old traces score as they are


def _worst_trace(n_chars=200_000, n_texts=20_000, n_colors=3_000, n_series=400, n_points=2_000):
    rng = np.random.default_rng(0)
    series = [
        {"label": f"s{i}", "y": rng.normal(size=n_points).round(3).tolist(), "helper": False} for i in range(n_series)
    ]
    colors = [["imshow", f"cmap_{i}"] for i in range(n_colors)] + [
        ["bar", f"#{i * 2654435761 % 16**6:06X}"] for i in range(n_colors)
    ]
    axes = [
        {
            "title": "T" * n_chars,
            "xlabel": "x" * n_chars,
            "ylabel": "",
            "legend": ["L" * 1000] * 50,
            "lines": series,
            "bars": [],
            "wedges": [],
            "collections": [],
            "images": [],
        }
    ]
    return {
        "types": {"plot": n_series},
        "colors": colors,
        "texts": [f"t{i}" for i in range(n_texts)],
        "tick_labels": [],
        "layout": [[1, 1, 0, 0, 0, 0]],
        "axes": axes,
        "suptitle": "S" * n_chars,
        "figure": {"n_axes": 1},
    }


class _Render:
    ok, error_kind, error = True, None, None

    def __init__(self, trace):
        self.trace = trace


def test_worst_case_traces_complete_and_normal_ones_score_as_before(renders):
    worst = _worst_trace()
    ref = renders["ref"].trace
    for reward in ("msrl_text", "chartmimic"):
        for visible_only in (True, False):
            r = build_reward(reward, visible_only=visible_only)
            for gen, against in ((worst, ref), (ref, worst), (worst, worst)):
                out = r([RewardInput("", render=_Render(gen), reference_render=_Render(against))])[0]
                assert 0.0 <= out.score <= 1.0
    assert chart_critique(worst, worst, gen_ok=True) == ""
    assert edit_similarity("a" * (MAX_TEXT_CHARS + 10), "a" * MAX_TEXT_CHARS + "b" * 10) == 1.0  # cut first
    # normal inputs: the same numbers as the pairwise definitions
    ref_series, gen_series = data_series(ref), data_series(renders["duplicated"].trace)
    want = np.array([[series_match(g, r, 0.05) for r in ref_series] for g in gen_series])
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(want, maximize=True)
    assert data_score(renders["duplicated"].trace, ref) == pytest.approx(
        want[rows, cols].sum() / max(len(gen_series), len(ref_series)), abs=1e-12
    )
    assert color_metric(ref, ref).f1 == pytest.approx(1.0)
    assert set(low_level_metrics(ref, ref)) == set(METRICS)
