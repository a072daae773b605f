"""Chart-to-code data loading and scoring on real charts (no model needed)."""

import json

import pytest
from conftest import SAMPLES

from rewards import CompositeReward
from vlrl.datasets.charts import load_chart_examples
from vlrl.options import UserError
from vlrl.tasks.chart_scorer import ChartScorer, chart2code_prompt


def test_chartmimic_folder_and_jsonl_and_parquet(tmp_path):
    report = load_chart_examples(SAMPLES)
    assert len(report.examples) == 30 and report.skipped == []
    ex = report.examples[0]
    assert ex.load_image().mode == "RGB" and ex.meta["chart_type"] == "3d"

    (tmp_path / "img.png").write_bytes((SAMPLES / "bar_1.png").read_bytes())
    rows = [
        {"id": "a", "code": "x=1", "image": "img.png"},
        {"id": "b", "code": "", "image": "img.png"},
        {"id": "c", "code": "x=1", "image": "missing.png"},
    ]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(map(json.dumps, rows)) + "\n{broken\n")
    report = load_chart_examples(jsonl)
    assert [e.id for e in report.examples] == ["a"]
    assert len(report.skipped) == 3
    assert "line 4: not valid JSON" in report.skipped[0]
    assert "row b: no code" in report.skipped[1] and "missing.png not found" in report.skipped[2]

    import pandas as pd

    png = (SAMPLES / "pie_1.png").read_bytes()
    pd.DataFrame({"code": ["plt.pie([1])"], "image": [{"bytes": png, "path": None}]}).to_parquet(tmp_path / "d.parquet")
    report = load_chart_examples(tmp_path / "d.parquet")
    assert report.examples[0].load_image().size[0] > 100
    with pytest.raises(UserError, match="no chart data"):
        load_chart_examples(tmp_path / "nope")


def test_prompt_asks_for_a_python_block_and_the_figure_size():
    p = chart2code_prompt((7, 5))
    assert "```python" in p and "figsize=(7, 5)" in p
    assert "figsize" not in chart2code_prompt(None)


def test_scoring_rewards_the_reference_code_and_punishes_garbage(render_pool, tmp_path):
    examples = [e for e in load_chart_examples(SAMPLES).examples if e.id in ("bar_1", "line_1")]
    task = ChartScorer(render_pool, CompositeReward({"format": 0.1, "exec": 0.2, "msrl_text": 0.7}))
    msgs = task.prompt_messages(examples)
    assert msgs[0][0]["content"][0]["type"] == "image" and "figsize=(7, 5)" in msgs[0][0]["content"][1]["text"]
    good = "```python\n" + examples[0].code + "\n```"
    texts = [good, "I don't know.", "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```"]
    batch = task.score([examples[0]] * 3, texts)
    scores = [o.score for o in batch.outputs]
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == 0.0  # no code: no format, no exec, no text reward
    assert 0.1 < scores[2] < 0.6
    assert batch.renders[1].error_kind == "syntax"
    assert {"format", "exec", "msrl_text", "msrl_text/data"} <= set(batch.outputs[0].components)
    keep, skipped = task.usable(examples)
    assert len(keep) == 2 and skipped == []
