"""Legacy-API compatibility (renderers.compat): code written for matplotlib 3.5-3.9,
numpy 1.x and pandas 1.x-2.x renders here; `compat="current"` leaves the libraries as
they are; the benchmark's own scripts all render."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from renderers import RenderPool, strip_output_calls
from renderers.code import prepare_code
from renderers.compat import SHIMS, legacy_freq

ROOT = Path(__file__).resolve().parent.parent

# One script per shim, in the style of real chart code of those releases, and what it must
# show when it renders (a text of the trace).
LEGACY_SCRIPTS = {
    "cm_get_cmap": (
        "import matplotlib.pyplot as plt\nimport matplotlib.cm as cm\ncmap = cm.get_cmap('viridis', 4)\n"
        "plt.bar([1, 2], [3, 4], color=[cmap(0), cmap(3)])\nplt.title('cmap %d' % cmap.N)\n",
        "cmap 4",
    ),
    "register_cmap": (
        "import matplotlib.pyplot as plt\nfrom matplotlib.colors import ListedColormap\n"
        "plt.register_cmap(name='mine', cmap=ListedColormap(['red', 'blue']))\n"
        "plt.imshow([[0, 1]], cmap='mine')\nplt.title('registered')\n",
        "registered",
    ),
    "boxplot_labels": (
        "import matplotlib.pyplot as plt\nplt.boxplot([[1, 2, 3], [2, 3, 4]], labels=['A', 'B'])\nplt.title('box')\n",
        "box",
    ),
    "seaborn_style": (
        "import matplotlib.pyplot as plt\nplt.style.use('seaborn-whitegrid')\nplt.plot([1, 2])\nplt.title('styled')\n",
        "styled",
    ),
    "grid_b": (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nax.grid(b=True)\n"
        "plt.grid(b=True, axis='y')\nax.set_title('grid')\n",
        "grid",
    ),
    "legend_handles": (
        "import matplotlib.pyplot as plt\nplt.plot([1, 2], label='series')\nleg = plt.legend()\n"
        "for h in leg.legendHandles:\n    h.set_linewidth(4)\n",
        "series",
    ),
    "w_xaxis": (
        "import matplotlib.pyplot as plt\nax = plt.figure().add_subplot(projection='3d')\n"
        "ax.w_xaxis.set_pane_color((1, 1, 1, 0))\nax.w_zaxis.set_pane_color((1, 1, 1, 0))\n"
        "ax.plot([0, 1], [0, 1], [0, 1])\nax.set_title('panes')\n",
        "panes",
    ),
    "plot_date": (
        "import matplotlib.pyplot as plt\nimport datetime as dt\n"
        "days = [dt.date(2020, 1, d) for d in (1, 2, 3)]\nplt.plot_date(days, [1, 3, 2], '-')\n"
        "plt.title('dates')\n",
        "dates",
    ),
    "scale_keywords": (
        "import matplotlib.pyplot as plt\nplt.plot([1, 10, 100])\n"
        "plt.yscale('log', nonposy='clip', basey=10)\nplt.title('log')\n",
        "log",
    ),
    "colorbar_draw_all": (
        "import matplotlib.pyplot as plt\nim = plt.imshow([[1, 2], [3, 4]])\ncb = plt.colorbar(im)\n"
        "cb.set_label('value')\ncb.draw_all()\n",
        "value",
    ),
    "scalar_set_data": (
        "import matplotlib.pyplot as plt\nline, = plt.plot([0], [0], 'o')\nline.set_data(1, 2)\nplt.title('moved')\n",
        "moved",
    ),
    "mpl_deprecation": (
        "import warnings\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
        "warnings.filterwarnings('ignore', category=matplotlib.cbook.mplDeprecation)\n"
        "plt.plot([1, 2])\nplt.title('quiet')\n",
        "quiet",
    ),
    "numpy_aliases": (
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.arange(4).astype(np.float)\n"
        "y = np.array([1, np.NaN, 3, np.Inf], dtype=np.float_)\nn = np.int(np.product([2, 3]))\n"
        "plt.plot(x, np.where(np.isfinite(y), y, 0))\nplt.title('n=%d %s' % (n, np.alltrue(x >= 0)))\n",
        "n=6 True",
    ),
    "numpy_functions": (
        "import numpy as np\nimport matplotlib.pyplot as plt\n"
        "area = np.trapz([1, 2, 3])\nkept = np.in1d([1, 5], [1, 2])\n"
        "plt.plot(np.asfarray([1, 2]), np.msort(np.array([2.0, 1.0])))\n"
        "plt.title('%.1f %s %s' % (area, kept.tolist(), np.NINF))\n",
        "4.0 [True, False] -inf",
    ),
    "one_element_scalars": (
        "import numpy as np\nimport matplotlib.pyplot as plt\nv = np.array([2.5])\n"
        "i = int(np.where(np.array([0, 3]) == 3)[0])\nx = np.linspace(0, 4, 5, dtype=int)\n"
        "plt.plot(x, x * float(v))\nplt.title('%s %d %s' % (float(v), i, isinstance(1.0, float)))\n",
        "2.5 1 True",
    ),
    "pandas_freq": (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "s = pd.Series(range(12), index=pd.date_range('2020-01-01', periods=12, freq='M'))\n"
        "q = s.resample('Q').sum()\nh = pd.date_range('2020-01-01', periods=3, freq='H')\n"
        "plt.bar(range(len(q)), q.values)\nplt.title('%d quarters %d hours' % (len(q), len(h)))\n",
        "4 quarters 3 hours",
    ),
    "pandas_methods": (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'a': [1, 2]})\ndf = df.append({'a': 3}, ignore_index=True)\n"
        "df = df.applymap(lambda v: v * 10)\nnames = [k for k, _ in df.iteritems()]\n"
        "s = pd.Series([1.0, None, 3.0]).fillna(method='ffill')\n"
        "plt.plot(df['a'])\nplt.title('%s %d %.1f' % (names[0], len(df), s[1]))\n",
        "a 3 1.0",
    ),
    "pandas_keywords": (
        "import io\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
        "df = pd.read_csv(io.StringIO('x y\\n1 2\\n2 4'), delim_whitespace=True)\n"
        "d = pd.date_range('2020-01-01', periods=3, closed='left')\n"
        "t = pd.to_datetime(['2020-01-05'], infer_datetime_format=True)\n"
        "plt.plot(df['x'], df['y'])\nplt.title('%d %d' % (len(d), t[0].day))\n",
        "2 5",
    ),
    "pandas_numeric_only": (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'team': ['a', 'b', 'a'], 'city': ['x', 'y', 'z'], 'score': [1, 2, 3]})\n"
        "m = df.groupby('team').mean()\nplt.bar(m.index, m['score'])\n"
        "plt.title('mean %.1f' % df.mean()['score'])\n",
        "mean 2.0",
    ),
    "sklearn": (
        "import numpy as np\nimport matplotlib.pyplot as plt\nfrom sklearn.linear_model import LinearRegression\n"
        "x = np.arange(5).reshape(-1, 1)\nfit = LinearRegression().fit(x, 2 * x.ravel())\n"
        "plt.plot(x, fit.predict(x))\nplt.title('slope %.0f' % fit.coef_[0])\n",
        "slope 2",
    ),
    "dev_null": (
        "import matplotlib.pyplot as plt\nwith open('/dev/null', 'w') as f:\n    f.write('quiet')\n"
        "plt.plot([1, 2])\nplt.title('written')\n",
        "written",
    ),
    "show_inside_function": (
        "import matplotlib.pyplot as plt\n\ndef main():\n    plt.plot([1, 2])\n"
        "    plt.title('from main')\n    plt.show()\n\nif __name__ == '__main__':\n    main()\n",
        "from main",
    ),
}


@pytest.fixture(scope="module")
def legacy_results(render_pool):
    assert render_pool.options.compat == "legacy"  # the default
    names = list(LEGACY_SCRIPTS)
    results = render_pool.render_many([strip_output_calls(LEGACY_SCRIPTS[n][0]) for n in names])
    return dict(zip(names, results)), render_pool.compat_shims


@pytest.mark.parametrize("name", list(LEGACY_SCRIPTS))
def test_legacy_script_renders(legacy_results, name):
    results, _ = legacy_results
    result = results[name]
    assert result.ok, f"{name}: {result.error_kind}: {result.error}"
    assert LEGACY_SCRIPTS[name][1] in result.trace["texts"]


def test_every_shim_names_its_release_and_is_installed_on_these_libraries(legacy_results):
    _, installed = legacy_results
    for shim in SHIMS:
        assert shim.removed_in and any(c.isdigit() for c in shim.removed_in), shim.name
    # on the libraries CI installs, every listed API is gone and so every shim applies
    assert set(installed) == {s.name for s in SHIMS}


def test_current_mode_leaves_the_libraries_alone():
    codes = [LEGACY_SCRIPTS[n][0] for n in ("cm_get_cmap", "numpy_aliases", "pandas_freq", "one_element_scalars")]
    with RenderPool(workers=2, timeout=60, compat="current") as pool:
        assert pool.compat_shims == []
        results = pool.render_many(codes)
    assert [r.error_kind for r in results] == ["runtime"] * 4
    with pytest.raises(ValueError, match="legacy, current"):
        RenderPool(compat="oldest")


def test_benchmark_scripts_written_for_older_releases_all_render(render_pool):
    """ChartMimic's 224 "Customized Mimic" scripts and the shipped Direct Mimic samples."""
    paths = sorted((ROOT / "data" / "chartmimic_edit_scripts").glob("*.py"))
    paths += sorted((ROOT / "data" / "chartmimic_samples").glob("*.py"))
    assert len(paths) >= 254
    results = render_pool.render_many([strip_output_calls(p.read_text()) for p in paths])
    failed = [f"{p.name}: {r.error_kind}: {r.error}" for p, r in zip(paths, results) if not r.ok]
    assert not failed, failed


@pytest.mark.parametrize(
    "legacy,current",
    [
        ("M", "ME"),
        ("2M", "2ME"),
        ("BM", "BME"),
        ("Q", "QE"),
        ("Q-DEC", "QE-DEC"),
        ("A", "YE"),
        ("A-JUN", "YE-JUN"),
        ("Y", "YE"),
        ("H", "h"),
        ("3H", "3h"),
        ("T", "min"),
        ("15T", "15min"),
        ("S", "s"),
        ("AS", "YS"),
        ("D", "D"),
        ("W-MON", "W-MON"),
        ("ME", "ME"),
        ("min", "min"),
        (None, None),
        (7, 7),
    ],
)
def test_legacy_frequency_aliases(legacy, current):
    assert legacy_freq(legacy) == current


def test_output_calls_inside_functions_are_kept_unless_official():
    code = (
        "import matplotlib.pyplot as plt\ndef main():\n    plt.plot([1])\n    plt.savefig('a.png')\n"
        "    plt.show()\nmain()\nplt.show()\nplt.close()\n"
    )
    kept = strip_output_calls(code)
    assert kept.endswith("main()") and "plt.close" not in kept and "plt.savefig('a.png')" in kept
    official = strip_output_calls(code, official=True)
    assert official.endswith("plt.plot([1])")
    # model responses in evaluation follow ChartMimic's textual rule
    assert prepare_code("```python\n" + code + "```", strict=True) == official
    assert prepare_code("```python\n" + code + "```") == kept
    # a script that does not parse falls back to the textual rule
    assert strip_output_calls("plt.plot(\nplt.show()") == "plt.plot("


def test_scalar_rewrite_spares_scripts_that_bind_the_names():
    from renderers import compat

    compat._one_element_scalars()
    tree = ast.parse("float = lambda v: 1\nx = float(2)\n")
    assert compat.legacy_scalar_calls(tree) == {} and "__vlrl" not in ast.unparse(tree)
    tree = ast.parse("y = int(a) + float(b)\nz = np.array(c, dtype=float)\n")
    names = compat.legacy_scalar_calls(tree)
    text = ast.unparse(tree)
    if names:  # numpy refuses one-element conversions here: the calls are rewritten
        assert "__vlrl_legacy_int__(a)" in text and "dtype=float" in text


def test_training_config_switches_compat():
    from vlrl.config import Config, set_key
    from vlrl.options import OptionError

    cfg = Config()
    assert cfg.render.compat == "legacy"
    set_key(cfg, "render.compat", "current")
    assert cfg.render.compat == "current"
    with pytest.raises(OptionError, match="legacy, current"):
        set_key(cfg, "render.compat", "newest")


def test_a_3d_bar_chart_is_traced(render_pool):
    code = (
        "import numpy as np\nimport matplotlib.pyplot as plt\nax = plt.figure().add_subplot(projection='3d')\n"
        "for c, z in zip(['r', 'g'], [20, 10]):\n    ax.bar(np.arange(3), [1.0, 2.0, 3.0], zs=z, zdir='y', color=c)\n"
    )
    result = render_pool.render(code)
    assert result.ok, result.error
    assert result.trace["types"] == {"3d.bar": 2}
    assert result.trace["axes"][0]["bars"][0]["values"] == [1.0, 2.0, 3.0]
