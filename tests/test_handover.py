"""The figure handover (renderers.handover): what the drawer loads and how records are checked.

The runner is hostile, so every pickle here is one a script could send. The honest ones
must load and draw exactly as the figure drew where it was made; the forged ones must be
refused before anything runs.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import SAMPLES  # noqa: E402
from PIL import Image  # noqa: E402

from renderers import instrument  # noqa: E402
from renderers.code import strip_output_calls  # noqa: E402
from renderers.execute import draw_figure, run_script  # noqa: E402
from renderers.handover import ForgedHandover, load_handover, pack_handover  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_records():
    instrument.install()
    instrument.RECORDS.reset()
    plt.close("all")
    yield
    plt.close("all")


def _run(code: str) -> dict:
    out = run_script(code)
    assert out["ok"], out
    return out


def _pack(out: dict) -> bytes:
    blob, _ = pack_handover(out["figure"], instrument.type_call_records(), instrument.color_records())
    return blob


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.py")))
def test_every_sample_travels_and_draws_the_same(name):
    out = _run(strip_output_calls((SAMPLES / f"{name}.py").read_text()))
    calls, colors = instrument.type_call_records(), instrument.color_records()
    direct_png, direct_trace, _ = draw_figure(out["figure"], calls=calls, colors=colors)
    data = load_handover(_pack(out))
    png, trace, _ = draw_figure(data["figure"], calls=data["calls"], colors=data["colors"])
    assert trace == direct_trace
    assert np.array_equal(_pixels(png), _pixels(direct_png))


@pytest.mark.parametrize(
    "code",
    [
        # a lambda tick formatter: frozen to the labels it gives
        "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import FuncFormatter\nfig, ax = plt.subplots()\n"
        "ax.bar([1, 2, 3], [3, 1, 2])\nax.yaxis.set_major_formatter(FuncFormatter(lambda v, p: f'{v:.0f}%'))\n",
        # a formatter class defined inside a function
        "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import Formatter\ndef make():\n"
        "    class F(Formatter):\n        def __call__(self, x, pos=None):\n            return f'<{x:g}>'\n    return F()\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2], [3, 4])\nax.xaxis.set_major_formatter(make())\n",
        # pandas' own date plotting (its converters and tickers stay in the runner)
        "import pandas as pd\ns = pd.Series([1, 2, 3], index=pd.date_range('2020-01-01', periods=3))\ns.plot()\n",
        "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]}, index=pd.period_range('2020-01', periods=3, freq='M'))\n"
        "df.plot(kind='bar')\n",
        # networkx: curved edge labels (a local Text class) and a self loop (a local connector)
        "import networkx as nx, matplotlib.pyplot as plt\nG = nx.DiGraph([(1, 2), (2, 3), (3, 3)])\n"
        "pos = {1: (0, 0), 2: (1, 0), 3: (1, 1)}\nnx.draw(G, pos, with_labels=True, connectionstyle='arc3,rad=0.2')\n"
        "nx.draw_networkx_edge_labels(G, pos, edge_labels={(1, 2): 'a'}, connectionstyle='arc3,rad=0.2')\n",
        "import matplotlib.pyplot as plt\nfrom matplotlib_venn import venn2\nvenn2(subsets=(3, 2, 1))\nplt.title('venn')\n",
    ],
)
def test_charts_that_do_not_pickle_as_they_are_still_travel(code):
    out = _run(code)
    data = load_handover(_pack(out))
    png, trace, _ = draw_figure(data["figure"], calls=data["calls"], colors=data["colors"])
    assert png.startswith(b"\x89PNG") and trace["types"]


def test_frozen_formatter_keeps_the_labels_drawn():
    out = _run(
        "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import FuncFormatter\n"
        "fig, ax = plt.subplots()\nax.bar([1, 2, 3], [30, 10, 20])\n"
        "ax.yaxis.set_major_formatter(FuncFormatter(lambda v, p: f'{v:.0f}%'))\n"
    )
    data = load_handover(_pack(out))
    _, trace, _ = draw_figure(data["figure"], calls=data["calls"], colors=data["colors"])
    assert "30%" in trace["tick_labels"] and "0%" in trace["tick_labels"]


# --------------------------------------------------------------------------- forged pickles


def _global_call(module: str, name: str, *args) -> bytes:
    """A protocol-2 pickle that calls module.name(*args) (args: str or bytes)."""
    body = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n("
    for a in args:
        data = a.encode() if isinstance(a, str) else a
        body += b"X" + struct.pack("<I", len(data)) + data
    return body + b"tR."


def _honest_blob() -> bytes:
    return _pack(_run("import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nplt.title('real')\n"))


@pytest.mark.parametrize(
    "blob",
    [
        _global_call("os", "system", "touch /tmp/vlrl-pwned"),
        _global_call("builtins", "eval", "__import__('os').getpid()"),
        _global_call("builtins", "exec", "x = 1"),
        _global_call("subprocess", "check_output", "id"),
        _global_call("numpy", "load", "/etc/passwd"),
        _global_call("numpy", "memmap", "/tmp/x"),
        _global_call("numpy", "fromfile", "/etc/passwd"),
        _global_call("matplotlib.pyplot", "savefig", "/tmp/vlrl-pwned.png"),
        _global_call("matplotlib.figure", "Figure.savefig", "/tmp/x"),  # a dotted walk to a function
        _global_call("matplotlib.figure", "Figure.__init__.__globals__"),
        _global_call("matplotlib.backends.backend_pdf", "PdfPages", "/tmp/x.pdf"),
        _global_call("matplotlib.animation", "FFMpegWriter"),
        _global_call("matplotlib.cbook", "subprocess"),
        _global_call("matplotlib", "use", "pdf"),
        _global_call("pickle", "loads", b"x"),
        _global_call("renderers.instrument", "install"),
        b"\x80\x02X\x04\x00\x00\x00evilq\x00.",  # not a figure at all
        b"\x80\x02]q\x00.",
        b"garbage that is no pickle",
        b"",
    ],
)
def test_forged_pickles_are_refused(blob):
    with pytest.raises(ForgedHandover):
        load_handover(blob)


def test_getattr_reaches_only_stored_methods():
    # getattr(figure, 'savefig') would hand drawing code a method of the sender's choosing
    honest = _honest_blob()
    for name in ("savefig", "__class__", "__init__", "__reduce_ex__", "clear"):
        forged = (
            b"\x80\x02cbuiltins\ngetattr\n"
            + b"cmatplotlib.figure\nFigure\n)\x81"
            + b"X"
            + struct.pack("<I", len(name))
            + name.encode()
            + b"\x86R."
        )
        with pytest.raises(ForgedHandover):
            load_handover(forged)
    assert load_handover(honest)["figure"] is not None


def _patched(blob: bytes, old: bytes, new: bytes) -> bytes:
    assert old in blob
    return blob.replace(old, new, 1)


def test_a_class_cannot_be_patched_from_the_pickle():
    """BUILD on a class object sets class attributes: the drawer's own Figure.draw."""
    from matplotlib.figure import Figure

    original = Figure.draw
    # a dict whose 'figure' is first set to the Figure class with a slot state replacing draw
    forged = (
        b"\x80\x02}(X\x06\x00\x00\x00figurecmatplotlib.figure\nFigure\n"
        b"N}X\x04\x00\x00\x00drawcmatplotlib.figure\nFigure\n\x86b"  # BUILD (None, {'draw': Figure})
        b"X\x05\x00\x00\x00calls]X\x06\x00\x00\x00colors]u."
    )
    try:
        with pytest.raises(ForgedHandover):
            load_handover(forged)
    finally:
        Figure.draw = original


def test_an_instance_cannot_shadow_its_own_methods():
    out = _run("import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.title('real')\n")
    fig = out["figure"]
    ax = fig.axes[0]
    ax.draw = fig.delaxes  # a method figures do keep bound, put where drawing calls it
    with pytest.raises(ForgedHandover, match="overrides"):
        load_handover(_pack(out))
    del ax.draw
    ax.title.get_text = ax.xaxis.label.get_text  # a method no figure keeps bound
    with pytest.raises(ForgedHandover, match="not a method a figure keeps"):
        load_handover(_pack(out))


def test_shadowing_through_string_subclass_keys_and_warm_method_table_is_refused():
    from renderers import handover

    out = _run("import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\n")
    fig = out["figure"]
    ax = fig.axes[0]
    handover._method_names(type(ax))  # the table the server fills before forking the zygote
    assert "draw" in handover._METHOD_NAMES[type(ax)]
    vars(ax)[np.str_("draw")] = fig.delaxes  # equal to "draw" and hashed like it, not a str
    with pytest.raises(ForgedHandover, match="overrides"):
        load_handover(_pack(out))


def test_wrong_shapes_are_refused():
    fig = plt.figure()
    for payload in (
        {"figure": "not a figure", "calls": [], "colors": []},
        {"figure": fig, "calls": [("bar", "not a list")], "colors": []},
        {"figure": fig, "calls": [], "colors": [("bar", 1, "color", None)]},
        {"figure": fig, "calls": []},
        {"figure": fig, "calls": [], "colors": [], "extra": 1},
    ):
        with pytest.raises(ForgedHandover):
            load_handover(pickle.dumps(payload, protocol=5))


def test_pickles_of_real_charts_name_no_function_outside_the_list():
    blob = _pack(_run(strip_output_calls((SAMPLES / "bar_1.py").read_text())))
    names = {arg for op, arg, _ in pickletools.genops(blob) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")}
    assert "system" not in names and load_handover(blob)


# --------------------------------------------------------------------------- records


def test_claimed_calls_count_only_with_their_artists_in_the_figure():
    out = _run(
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nbars = ax.bar([1, 2], [3, 4])\n"
        "line, = ax.plot([1, 2], [1, 2])\n"
    )
    fig = out["figure"]
    bars = list(fig.axes[0].patches)
    line = fig.axes[0].lines[0]
    stray = plt.figure().add_subplot().plot([0, 1])[0]  # drawn elsewhere, not in this figure
    calls = [
        ("bar", bars),
        ("plot", [line]),
        ("pie", [stray]),
        ("scatter", []),
        ("bar", bars),  # the same artists claimed twice back one call only
        ("no_such_kind", [line]),
    ]
    data = load_handover(pickle.dumps({"figure": fig, "calls": calls, "colors": []}))
    _, trace, _ = draw_figure(data["figure"], calls=data["calls"], colors=data["colors"])
    assert trace["types"] == {"bar": 1, "plot": 1}


def test_claimed_colours_are_read_from_the_artists_drawn():
    out = _run("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.bar([1, 2], [3, 4], color='red')\n")
    fig = out["figure"]
    bar = fig.axes[0].patches[0]
    colors = [
        ("bar", "#00FF00", "facecolor", bar),  # a claimed key colour is re-read: red
        ("bar", "#0000FF", "no_such_rule", bar),
        ("nonsense_group", "#0000FF", "facecolor", bar),
        ("scatter", "made_up_cmap", "fixed", bar),
    ]
    data = load_handover(pickle.dumps({"figure": fig, "calls": [], "colors": colors}))
    _, trace, _ = draw_figure(data["figure"], calls=data["calls"], colors=data["colors"])
    assert trace["colors"] == [["bar", "#FF0000"]]


def test_shadowing_objects_hidden_in_partials_and_object_arrays_are_found():
    import functools

    out = _run("import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\n")
    fig = out["figure"]
    ax = fig.axes[0]
    decoy = plt.figure().add_subplot()
    decoy.draw = fig.delaxes  # a shadowing object, reachable only through the containers below
    for holder in (functools.partial(np.log, decoy), np.array([decoy, None], dtype=object)):
        ax._vlrl_test_holder = holder
        with pytest.raises(ForgedHandover, match="overrides"):
            load_handover(_pack(out))
