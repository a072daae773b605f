"""The render pool on real inputs: shared ChartMimic samples, traces, isolation, concurrency."""

import json

import pytest

from renderers import RenderResult
from renderers.execute import render_in_process

BAR = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
bars = ax.bar(["Q1", "Q2", "Q3"], [3, 5, 2], color=["#1f77b4", "#ff7f0e", "#2ca02c"], label="Sales")
ax.set_title("Revenue 2023")
ax.set_xlabel("Quarter")
ax.set_ylabel("EUR (m)")
ax.legend()
"""


def test_every_shared_chartmimic_sample_renders_with_a_trace(sample_renders):
    assert len(sample_renders) == 30
    for name, r in sample_renders.items():
        assert r.ok, f"{name}: {r.error_kind} {r.error}"
        assert r.violations == [], name
        assert r.image.size[0] > 100 and r.image.size[1] > 100, name
        t = r.trace
        assert t["types"], f"{name}: no plotting calls recorded"
        assert t["colors"], f"{name}: no colours recorded"
        assert t["layout"], f"{name}: no layout recorded"
        assert t["axes"], name
        json.dumps(t)  # plain data only


def test_trace_of_a_bar_chart(render_pool):
    r = render_pool.render(BAR)
    assert r.ok, r.error
    t = r.trace
    assert t["types"] == {"bar": 1}
    assert t["colors"] == [["bar", "#1F77B4"], ["bar", "#FF7F0E"], ["bar", "#2CA02C"]]
    assert sorted(t["texts"]) == sorted(["Revenue 2023", "Quarter", "EUR (m)", "Sales"])
    assert {"Q1", "Q2", "Q3"} <= set(t["tick_labels"])
    assert t["layout"] == [[1, 1, 0, 0, 0, 0]]
    ax = t["axes"][0]
    assert ax["title"] == "Revenue 2023" and ax["xlabel"] == "Quarter" and ax["legend"] == ["Sales"]
    assert ax["bars"][0]["values"] == [3, 5, 2]
    assert t["figure"]["width_in"] == 4 and t["figure"]["height_in"] == 3


def test_trace_polar_plot_is_its_own_kind_and_nested_calls_are_not_counted(render_pool):
    code = """
import matplotlib.pyplot as plt
import numpy as np
fig = plt.figure()
ax = fig.add_subplot(projection="polar")
ax.plot([0, 1, 2], [1, 2, 3], color="red")
ax2 = fig.add_axes([0.7, 0.7, 0.2, 0.2])
ax2.hist([1, 2, 2, 3])          # hist draws bars internally: one hist, no bar
ax2.errorbar([1, 2], [1, 2], yerr=[0.1, 0.2])  # errorbar draws a line: one errorbar, no plot
"""
    r = render_pool.render(code)
    assert r.ok, r.error
    assert r.trace["types"] == {"plot_polar": 1, "hist": 1, "errorbar": 1}
    # the inset axes is outside any gridspec, so only the polar subplot has a layout row
    assert r.trace["layout"] == [[1, 1, 0, 0, 0, 0]]
    groups = {g for g, _ in r.trace["colors"]}
    assert "plot_polar" in groups and "hist" in groups and "line" in groups


def test_colours_are_read_at_the_end(render_pool):
    code = """
import matplotlib.pyplot as plt
line, = plt.plot([1, 2], [1, 2], color="red")
line.set_color("blue")
"""
    r = render_pool.render(code)
    assert r.trace["colors"] == [["line", "#0000FF"]]


def test_gridspec_layout_rows(render_pool):
    code = """
import matplotlib.pyplot as plt
fig = plt.figure()
gs = fig.add_gridspec(2, 3)
fig.add_subplot(gs[0, :2]).plot([1, 2])
fig.add_subplot(gs[1, 2]).plot([1, 2])
"""
    r = render_pool.render(code)
    assert r.trace["layout"] == [[2, 3, 0, 0, 0, 1], [2, 3, 1, 1, 2, 2]]


def test_error_kinds_and_messages(render_pool):
    r = render_pool.render("import matplotlib.pyplot as plt\nx = [1, 2]\nplt.plot(x, [1, 2, 3])")
    assert (r.ok, r.error_kind) == (False, "runtime")
    assert r.error.startswith("line 3: ValueError")
    r = render_pool.render("plt.plot(")
    assert r.error_kind == "syntax" and r.error.startswith("line 1")
    r = render_pool.render("x = 1")
    assert r.error_kind == "no_figure"
    r = render_pool.render("while True:\n    pass", timeout=1)
    assert r.error_kind == "timeout" and r.seconds < 3


def test_response_without_code(render_pool):
    r = render_pool.render_response("I cannot draw that chart.", strict=True)
    assert (r.ok, r.error_kind) == (False, "syntax")


def test_no_state_leaks_between_jobs(render_pool):
    first = render_pool.render(
        "import matplotlib.pyplot as plt\nimport matplotlib\nmatplotlib.rcParams['lines.linewidth'] = 9\n"
        "LEAK = 1\nplt.plot([1, 2])"
    )
    assert first.ok
    second = render_pool.render(
        "import matplotlib.pyplot as plt\nimport matplotlib\n"
        "assert matplotlib.rcParams['lines.linewidth'] == 1.5, matplotlib.rcParams['lines.linewidth']\n"
        "assert len(plt.get_fignums()) == 0\nplt.plot([1])\nLEAK"
    )
    assert second.error_kind == "runtime" and "NameError" in second.error


def test_concurrent_renders_come_back_in_order(render_pool):
    codes = [f"import matplotlib.pyplot as plt\nplt.title('chart {i}')\nplt.plot([0, {i}])" for i in range(12)]
    results = render_pool.render_many(codes)
    assert [r.trace["texts"] for r in results] == [[f"chart {i}"] for i in range(12)]
    assert [r.ok for r in render_pool.imap(codes[:5], window=2)] == [True] * 5


def test_huge_figures_are_capped(render_pool):
    r = render_pool.render("import matplotlib.pyplot as plt\nplt.figure(figsize=(300, 200))\nplt.plot([1, 2])")
    assert r.ok, r.error
    w, h = r.image.size
    assert w * h <= render_pool.options.max_pixels * 1.01
    assert abs(w / h - 1.5) < 0.02


def test_in_process_rendering_gives_the_same_trace(render_pool):
    pooled = render_pool.render(BAR)
    local = render_in_process(BAR)
    assert local["ok"]
    assert local["trace"]["types"] == pooled.trace["types"]
    assert local["trace"]["colors"] == pooled.trace["colors"]
    assert local["trace"]["texts"] == pooled.trace["texts"]


def test_result_summary_row():
    r = RenderResult.failure("timeout", "too slow", seconds=1.23456)
    assert r.summary() == {"ok": False, "error_kind": "timeout", "error": "too slow", "seconds": 1.2346}
    assert r.image is None


def test_jobs_run_as_an_unprivileged_user(render_pool):
    import os

    if os.geteuid() != 0 or render_pool.isolation.get("job_uid") != 65534:
        pytest.skip(f"jobs cannot change uid here: {render_pool.isolation}")
    r = render_pool.render(
        "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
    )
    assert r.ok, r.error
    assert r.stdout.strip() == "65534 65534 []"
    assert r.isolation["user"] == "uid 65534, no capabilities"
