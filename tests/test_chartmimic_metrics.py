"""ChartMimic's metrics against hand-computed precision / recall / F1."""

import pytest

from rewards.chartmimic import (
    PRF,
    color_metric,
    filter_colors,
    layout_metric,
    low_level_metrics,
    text_metric,
    type_metric,
)
from rewards.colors import color_similarity, delta_e_ciede2000, hex_to_lab


def f1(p, r):
    return 2 * p * r / (p + r)


def test_text_is_a_multiset_match():
    gen = {"texts": ["A", "A", "B", "C"]}
    ref = {"texts": ["A", "B", "B", "D", "E"]}
    m = text_metric(gen, ref)
    # matches: one A, one B -> 2; precision 2/4, recall 2/5
    assert m.precision == pytest.approx(0.5)
    assert m.recall == pytest.approx(0.4)
    assert m.f1 == pytest.approx(f1(0.5, 0.4))


def test_empty_side_scores_zero():
    assert text_metric({"texts": []}, {"texts": ["A"]}) == PRF()
    assert text_metric({"texts": ["A"]}, {"texts": []}) == PRF()
    assert type_metric({"types": {}}, {"types": {"bar": 1}}) == PRF()
    assert color_metric({"colors": []}, {"colors": [["bar", "#FF0000"]]}) == PRF()


def test_layout_tuples_must_match_exactly():
    ref = {"layout": [[1, 2, 0, 0, 0, 0], [1, 2, 0, 0, 1, 1]]}
    gen = {"layout": [[2, 1, 0, 0, 0, 0], [2, 1, 1, 1, 0, 0]]}  # 2x1 instead of 1x2
    assert layout_metric(gen, ref).f1 == 0
    assert layout_metric(ref, ref).f1 == 1
    half = {"layout": [[1, 2, 0, 0, 0, 0]]}
    m = layout_metric(half, ref)
    assert (m.precision, m.recall) == (1.0, 0.5)


def test_graph_charts_count_one_cell_per_axes():
    gen = {"layout": [], "figure": {"n_axes": 2}}
    ref = {"layout": [[1, 1, 0, 0, 0, 0]], "figure": {"n_axes": 1}}
    m = layout_metric(gen, ref, graph=True)
    assert (m.precision, m.recall) == (0.5, 1.0)


def test_type_counts_calls_per_kind():
    gen = {"types": {"bar": 3, "plot": 1}}
    ref = {"types": {"bar": 2, "plot_polar": 2}}
    m = type_metric(gen, ref)
    # correct = min(3,2) + 0 = 2; precision 2/4, recall 2/4
    assert (m.precision, m.recall, m.f1) == (0.5, 0.5, 0.5)


def test_cie_lab_and_ciede2000_known_values():
    # sRGB white and black in CIELAB (D65)
    assert hex_to_lab("#FFFFFF")[0] == pytest.approx(100.0, abs=0.01)
    assert hex_to_lab("#000000") == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    # Sharma, Wu & Dalal (2005) test pair 1: dE00 = 2.0425
    assert delta_e_ciede2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    # pair 7 (a hue pair where colormath's mean hue equals the standard one): dE00 = 2.3669
    assert delta_e_ciede2000((50.0, 0.0, 0.0), (50.0, -1.0, 2.0)) == pytest.approx(2.3669, abs=1e-4)
    assert color_similarity("#FF0000", "#FF0000") == 1.0
    assert color_similarity("viridis", "viridis") == 1.0
    assert color_similarity("viridis", "plasma") == 0.0
    assert color_similarity("#FF0000", "viridis") == 0.0


def test_colormath_agrees_when_installed():
    pytest.importorskip("colormath")
    import numpy as np
    from colormath.color_conversions import convert_color
    from colormath.color_diff import delta_e_cie2000
    from colormath.color_objects import LabColor, sRGBColor

    if not hasattr(np, "asscalar"):
        np.asscalar = lambda a: a.item()  # colormath predates numpy 2
    rng = np.random.default_rng(0)
    for _ in range(200):
        c1, c2 = ("#%06X" % v for v in rng.integers(0, 1 << 24, size=2))
        lab = [
            convert_color(sRGBColor(*[int(c[i : i + 2], 16) for i in (1, 3, 5)], is_upscaled=True), LabColor)
            for c in (c1, c2)
        ]
        assert color_similarity(c1, c2) == pytest.approx(max(0, 1 - delta_e_cie2000(*lab) / 100), abs=1e-9)


def test_colour_assignment_is_optimal_within_each_group():
    red, dark_red, blue = "#FF0000", "#EE0000", "#0000FF"
    gen = {"colors": [["bar", dark_red], ["bar", blue], ["line", red]]}
    ref = {"colors": [["bar", blue], ["bar", red]]}
    s_rr = color_similarity(dark_red, red)
    # bar group: best pairing is dark_red<->red and blue<->blue; the line colour has no partner
    total = s_rr + 1.0
    m = color_metric(gen, ref)
    assert m.precision == pytest.approx(total / 3)
    assert m.recall == pytest.approx(total / 2)
    assert m.f1 == pytest.approx(f1(total / 3, total / 2))


def test_colour_assignment_beats_greedy():
    # Greedy would pair a1 with b1 (the single best pair) and leave a poor match for a2.
    a1, a2 = "#808080", "#FF0000"
    b1, b2 = "#8A7070", "#808080"
    s = color_similarity
    optimal = max(s(a1, b1) + s(a2, b2), s(a1, b2) + s(a2, b1))
    m = color_metric({"colors": [["bar", a1], ["bar", a2]]}, {"colors": [["bar", b1], ["bar", b2]]})
    assert m.precision == pytest.approx(optimal / 2)


def test_more_than_ten_colours_are_filtered_greedily():
    greys = [["plot", "#%02X%02X%02X" % (v, v, v)] for v in range(100, 112)]  # 12 near-identical greys
    colors = greys[:11] + [["plot", "#0000FF"]]
    kept = filter_colors(colors)
    # the first grey is kept, the other 10 greys are > 0.7 similar to it, blue is kept
    assert kept == [greys[0], ["plot", "#0000FF"]]
    assert filter_colors(colors[:10]) == colors[:10]  # 10 or fewer: untouched


def test_failed_script_scores_zero_everywhere():
    ref = {"texts": ["A"], "types": {"bar": 1}, "layout": [[1, 1, 0, 0, 0, 0]], "colors": [["bar", "#FF0000"]]}
    scores = low_level_metrics(ref, ref, gen_ok=False)
    assert all(m == PRF() for m in scores.values())
    assert all(m.f1 == 1 for m in low_level_metrics(ref, ref).values())
