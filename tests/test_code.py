from renderers.code import extract_code, prepare_code, strip_output_calls


def test_first_python_block_wins():
    text = "intro\n```python\na = 1\n```\nmore\n```python\nb = 2\n```"
    assert extract_code(text).strip() == "a = 1"


def test_strict_mode_needs_a_python_fence():
    assert extract_code("```\nimport matplotlib\n```", strict=True) is None
    assert extract_code("import matplotlib.pyplot as plt", strict=True) is None


def test_lenient_mode_accepts_other_fences_unclosed_blocks_and_bare_code():
    assert extract_code("```py\nx = 1\n```").strip() == "x = 1"
    assert extract_code("```python\nx = 1\nplt.plot(").strip().startswith("x = 1")  # cut by max tokens
    assert extract_code("x = 1\ny = 2") == "x = 1\ny = 2"
    assert extract_code("Here is your chart!") is None  # prose does not parse
    assert extract_code("") is None
    assert extract_code(None) is None


def test_everything_from_the_first_savefig_is_dropped():
    code = "plt.plot([1])\nplt.savefig('a.png')\nplt.title('late')\nplt.show()"
    assert strip_output_calls(code) == "plt.plot([1])"


def test_show_is_dropped_when_there_is_no_savefig():
    assert strip_output_calls("plt.plot([1])\nplt.show()\nprint(1)") == "plt.plot([1])"


def test_savefig_on_a_figure_object_is_kept_like_chartmimic():
    # ChartMimic only cuts at plt.savefig( / plt.show(; fig.savefig stays in the script.
    assert "fig.savefig" in strip_output_calls("fig.savefig('x.png')\nplt.plot([1])")


def test_prepare_code_combines_both_steps():
    assert prepare_code("```python\nplt.plot([1])\nplt.savefig('x')\n```") == "plt.plot([1])"
    assert prepare_code("no code here", strict=True) is None
