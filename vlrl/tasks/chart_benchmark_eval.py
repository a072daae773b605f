"""Chart-to-code's held-out evaluation during training, measured as the benchmarks measure.

When data.eval is a ChartMimic or ReachQA folder (or one of our JSONL sets), each
evaluation asks with that benchmark's prompt (vlrl.evaluation.generate), renders the
answers under ChartMimic's rules (only a ```python block, cut at the first output call)
and logs the benchmark's own numbers, `eval/<benchmark>/low_level` and the rest, computed
exactly as `vlrl eval` computes them (vlrl.evaluation.chart_eval), beside the training
reward's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from vlrl.datasets.charts import ChartExample, LoadReport
from vlrl.evaluation.benchmarks import BenchmarkItem


def benchmark_kind(path: str) -> str:
    """chartmimic: a folder of scripts beside their images; reachqa: a folder with code/;
    jsonl: anything else (a `vlrl data synth` folder, a JSONL or Parquet file)."""
    src = Path(path)
    if src.is_dir() and (src / "code").is_dir() and not (src / "index.jsonl").exists():
        return "reachqa"
    if src.is_dir() and not (src / "index.jsonl").exists():
        return "chartmimic"
    return "jsonl"


def load_eval_examples(path: str) -> LoadReport:
    """The held-out charts; ReachQA's are read with the benchmark's own loader (a chart
    whose image the release lacks is left out: the policy would have nothing to look at)."""
    from vlrl.datasets.charts import load_chart_examples
    from vlrl.evaluation.benchmarks import load_reachqa

    if benchmark_kind(path) != "reachqa":
        return load_chart_examples(path)
    examples, skipped = [], []
    for item in load_reachqa(Path(path)):
        if item.code is None or item.image is None:
            skipped.append(f"{item.key}: {item.problem or 'no image in the release'}")
            continue
        examples.append(ChartExample(item.key, item.code, image_path=item.image, meta={"chart_type": item.chart_type}))
    return LoadReport(examples, skipped)


def eval_messages(kind: str, scorer: Any, examples: Sequence[ChartExample]) -> list:
    """ChartMimic's own instruction for ChartMimic; the training prompt (MSRL's, which is
    how ReachQA is asked too) otherwise."""
    from vlrl.evaluation.generate import benchmark_messages, figure_size

    if kind != "chartmimic":
        return scorer.prompt_messages(examples)
    return [
        benchmark_messages(kind, scorer.image(ex), figure_size({"trace": ref.trace if ref.ok else {}}))
        for ex, ref in zip(examples, scorer.references(examples))
    ]


def benchmark_rows(
    examples: Sequence[ChartExample], texts: Sequence[str], renders: Sequence[Any], references: Sequence[Any]
) -> list[dict[str, Any]]:
    """One `vlrl eval` items.jsonl row per answer (renders made with strict=True)."""
    from vlrl.evaluation.chart_eval import score_item

    rows = []
    for ex, text, result, ref in zip(examples, texts, renders, references):
        item = BenchmarkItem(
            ex.id, ex.code, ex.image_path, str(ex.meta.get("chart_type") or ex.meta.get("family") or "unknown")
        )
        ref_entry = {
            "ok": ref.ok,
            "trace": ref.trace if ref.ok else {},
            "error_kind": ref.error_kind,
            "error": ref.error,
        }
        rows.append(score_item(item, text, result, ref_entry))
    return rows


def benchmark_metrics(kind: str, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """eval/<benchmark>/{n, exec_rate, text, layout, type, color, low_level}, on 0-100 as the
    benchmark reports them."""
    from vlrl.evaluation.chart_eval import aggregate

    return {f"eval/{kind}/{k}": v for k, v in aggregate(list(rows)).items()}
