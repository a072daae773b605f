"""Chart-to-code's supervised pairs for `vlrl sft` (TaskSpec.sft): each usable chart of
data.train with the RL prompt, answered by its own code in a ```python block."""

from __future__ import annotations

from vlrl.config import Config
from vlrl.options import UserError
from vlrl.tasks.base import SFTData, SFTExample


def answer_text(code: str) -> str:
    from renderers import strip_output_calls

    return "```python\n" + strip_output_calls(code) + "\n```"


def sft_data(cfg: Config) -> SFTData:
    """Pairs whose image loads and whose code renders (the prompt's figsize hint comes from
    that render, as in RL)."""
    from renderers import RenderPool
    from rewards import CompositeReward
    from vlrl.datasets.charts import load_chart_examples
    from vlrl.tasks.chart2code import ensure_default_corpus
    from vlrl.tasks.chart_scorer import ChartScorer

    ensure_default_corpus(cfg)
    report = load_chart_examples(cfg.data.train)
    with RenderPool(timeout=cfg.render.timeout, compat=cfg.render.compat) as pool:
        scorer = ChartScorer(pool, CompositeReward({"format": 1.0}))
        examples, bad = scorer.usable(report.examples)
        if not examples:
            raise UserError(f"{cfg.data.train}: no usable chart/code pairs")
        messages = scorer.prompt_messages(examples)
    pairs = [SFTExample(m, answer_text(ex.code)) for m, ex in zip(messages, examples)]
    return SFTData(pairs, [str(p) for p in report.skipped] + bad)
