"""`vlrl eval`: ChartMimic / ReachQA / JSONL chart-to-code evaluation of a model or of predictions.

    vlrl eval benchmark=chartmimic data_dir=DIR model=PATH out=DIR        generate, then score
    vlrl eval benchmark=chartmimic data_dir=DIR predictions=FILE out=DIR  score only

With model=, the answers are generated first (vlrl.evaluation.generate: the benchmark's
prompt, greedy, resumable, shardable) into out/predictions.jsonl. Predictions are
ChartMimic's output format, JSONL rows {"file": <ground-truth path>, "response": <raw model
text>} (our own datasets may use "id" instead of "file"). Each response goes through
ChartMimic's post-processing (first ```python block, cut at the first plt.savefig(/plt.show(),
the figure captured), is rendered once in the sandbox, and scored against the ground
truth's trace (cached across runs). Writes:

    out/items.jsonl   per item: exec, precision/recall/F1 per metric, error, critique
    out/renders/      each answer's rendering (PNG), what a judge looks at
    out/summary.json  n, exec_rate, text, layout, type, color, low_level (0-100), optional
                      high_level/overall (judge_model= or judge_responses=), per chart type,
                      counts of bad input, and the generation settings
    out/summary.md    the same as a table laid out like the MSRL paper's

The run resumes: items already in items.jsonl are not scored again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from vlrl.evaluation.benchmarks import LOADERS, BenchmarkItem, prediction_key
from vlrl.jsonl import JsonlWriter, iter_jsonl_lenient, read_jsonl, write_json_atomic
from vlrl.options import OptionError, UserError, option

TRACE_VERSION = "2-legacy"  # bump when the renderer's trace or compatibility layer changes (cached references)
METRICS = ("text", "layout", "type", "color")


@dataclass(kw_only=True)
class EvalOptions:
    benchmark: Literal["chartmimic", "reachqa", "jsonl"] = option(help="layout of data_dir")
    data_dir: str = option(
        help="benchmark folder (chartmimic: *.py + images; reachqa: code/, plot_info.jsonl; jsonl: index.jsonl or a .jsonl file)"
    )
    out: str = option(help="output folder")
    model: str = option(
        "",
        help="generate the answers with this model first: a checkpoint directory (e.g. RUN/stage2/final) or tiny; "
        "writes OUT/predictions.jsonl, then scores it",
    )
    predictions: str = option("", help='score this JSONL of {"file": ..., "response": ...} rows instead of generating')
    prompt: str = option(
        "",
        help="model=: a file holding the instruction to use instead of the benchmark's "
        "({width} and {height} are filled with the original figure size in inches)",
    )
    batch_size: int = option(8, minimum=1, help="model= / judge_model=: charts per generate call")
    shard: int = option(
        -1,
        help="model= with num_shards=K: answer only the charts of shard I (0..K-1) and stop; "
        "run once more without shard= to merge the K shards' answers and score them",
    )
    num_shards: int = option(1, minimum=1, help="disjoint shards the charts are split into (by position in key order)")
    seed: int = option(0, help="sampling seed (greedy decoding, the default, does not use it)")
    overrides: list[str] = option(
        [],
        help="model.* and rollout.* keys as in `vlrl train --help`, written key=value: rollout.engine=vllm, "
        "rollout.temperature (default 0: greedy), rollout.max_new_tokens (default 4096), model.max_pixels ...",
    )
    judge_model: str = option(
        "",
        help="a local VLM (checkpoint directory or tiny) that judges each rendered answer against the "
        "reference with ChartMimic's rubric -> OUT/judge.jsonl, high_level, overall",
    )
    judge_responses: str = option(
        "", help='optional JSONL of {"file", "response"} judge replies ending in "Score: N" -> high_level, overall'
    )
    workers: int = option(0, help="concurrent renders (0 = CPU cores)")
    timeout: float = option(20.0, help="seconds per script before it is killed")
    strict: bool = option(True, help="only a ```python block counts as code (ChartMimic's rule)")
    only_predicted: bool = option(False, help="score only items that have a prediction (default: missing ones score 0)")
    cache_dir: str = option("", help="reference trace cache (default ~/.cache/vlrl/reference_traces)")
    name: str = option("", help="row label in summary.md (default: the model or predictions file name)")

    def validate(self) -> None:
        if not self.model and not self.predictions and not (self.num_shards > 1 and self.shard < 0):
            raise OptionError("give predictions=FILE to score, or model=PATH to generate the answers and score them")
        if self.model and self.predictions:
            raise OptionError("predictions= and model= exclude each other: score a file, or generate with a model")
        if self.shard >= 0 and not self.model:
            raise OptionError("shard= needs model=: a shard generates its charts' answers")
        if self.shard >= self.num_shards:
            raise OptionError(f"shard={self.shard} num_shards={self.num_shards}: need 0 <= shard < num_shards")
        if self.judge_model and self.judge_responses:
            raise OptionError("judge_model= and judge_responses= exclude each other")
        for token in self.overrides:
            key = token.partition("=")[0]
            if not key.startswith(("model.", "rollout.")):
                raise OptionError(f"{key}: only model.* and rollout.* keys of the run config apply to evaluation")
        if self.overrides and not (self.model or self.judge_model):
            raise OptionError(f"{self.overrides[0]}: model.* and rollout.* keys need model= or judge_model=")


# --------------------------------------------------------------------------- inputs


MAX_EXAMPLES = 5  # malformed lines quoted in the summary; the rest are only counted
MAX_EXAMPLE_CHARS = 200
MAX_NAME_CHARS = 200  # of a row's "file" as quoted back: it may be any JSON value


@dataclass
class Predictions:
    responses: dict[str, Any]
    bad_lines: list[str]  # the first MAX_EXAMPLES malformed lines, each cut to MAX_EXAMPLE_CHARS
    unknown_files: list[str]
    duplicates: list[str]
    missing_response: list[str]
    bad_line_count: int = 0  # every malformed line, quoted or not


def _note_bad_line(p: Predictions, number: int, problem: str) -> None:
    p.bad_line_count += 1
    if len(p.bad_lines) < MAX_EXAMPLES:
        p.bad_lines.append(f"line {number}: {problem}"[:MAX_EXAMPLE_CHARS])


def read_predictions(path: Path, known: set[str]) -> Predictions:
    """Tolerant reader: every problem is counted, none is fatal, and memory stays bounded
    whatever the file holds (iter_jsonl_lenient caps line lengths; only a few malformed
    lines are quoted)."""
    if not path.exists():
        raise UserError(f"no predictions file at {path}")
    p = Predictions({}, [], [], [], [])
    for number, row, problem in iter_jsonl_lenient(path):
        if problem is not None:
            _note_bad_line(p, number, problem)
            continue
        name = row.get("file", row.get("id"))
        if name is None:
            _note_bad_line(p, number, "no 'file' or 'id' field")
            continue
        name = str(name)[:MAX_NAME_CHARS]
        key = prediction_key(name)
        if key not in known:
            p.unknown_files.append(name)
            continue
        if key in p.responses:
            p.duplicates.append(name)
            continue
        response = row.get("response")
        if not isinstance(response, str) or not response.strip():
            p.missing_response.append(name)
            response = None
        p.responses[key] = response
    return p


def read_judge_scores(path: Path) -> dict[str, float | None]:
    """Judge scores by item; malformed lines are skipped and reported on stderr (a count
    and the first few), like the predictions'."""
    from rewards.judge import parse_judge_score

    if not path.exists():
        raise UserError(f"no judge responses file at {path}")
    scores: dict[str, float | None] = {}
    bad = Predictions({}, [], [], [], [])
    for number, row, problem in iter_jsonl_lenient(path):
        name = row.get("file", row.get("id")) if problem is None else None
        if problem is None and name is None:
            problem = "no 'file' or 'id' field"
        if problem is not None:
            _note_bad_line(bad, number, problem)
            continue
        scores[prediction_key(str(name)[:MAX_NAME_CHARS])] = parse_judge_score(row.get("response", ""))
    for example in bad.bad_lines:
        print(f"{path}: {example} (skipped)", file=sys.stderr)
    if bad.bad_line_count > len(bad.bad_lines):
        print(f"{path}: {bad.bad_line_count} malformed lines in all (skipped)", file=sys.stderr)
    return scores


# --------------------------------------------------------------------------- references


class ReferenceCache:
    """Ground-truth renders keyed by a hash of their code, kept across runs."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def _key(self, code: str) -> str:
        return hashlib.sha256((TRACE_VERSION + "\0" + code).encode()).hexdigest()

    def get(self, code: str) -> dict[str, Any] | None:
        path = self.dir / f"{self._key(code)}.json"
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        png = self.dir / f"{self._key(code)}.png"
        entry["png_path"] = str(png) if png.exists() else None
        return entry

    def put(self, code: str, result) -> dict[str, Any]:
        key = self._key(code)
        entry = {"ok": result.ok, "error_kind": result.error_kind, "error": result.error, "trace": result.trace}
        if result.png:
            (self.dir / f"{key}.png").write_bytes(result.png)
        write_json_atomic(self.dir / f"{key}.json", entry)
        entry["png_path"] = str(self.dir / f"{key}.png") if result.png else None
        return entry


def render_references(items: list[BenchmarkItem], pool, cache: ReferenceCache) -> dict[str, dict[str, Any]]:
    from renderers import strip_output_calls

    refs: dict[str, dict[str, Any]] = {}
    todo = []
    for item in items:
        if item.code is None:
            refs[item.key] = {"ok": False, "error_kind": "unreadable", "error": item.problem, "trace": {}}
            continue
        code = strip_output_calls(item.code)  # a reference runs whole, as in the benchmark's environment
        cached = cache.get(code)
        if cached is not None:
            refs[item.key] = cached
        else:
            todo.append((item, code, pool.submit(code)))
    for item, code, fut in tqdm(todo, desc="references", unit="chart", dynamic_ncols=True, disable=not todo):
        refs[item.key] = cache.put(code, fut.result())
    return refs


# --------------------------------------------------------------------------- scoring


def ran_like_chartmimic(result) -> bool:
    """ChartMimic's exec: the script ran without error and its appended savefig worked.

    A script that draws nothing still "runs": plt.savefig saves an empty figure, so
    ChartMimic counts it as executed (it then scores 0 on every metric).
    """
    return bool(result.ok or result.error_kind == "no_figure")


def score_item(item: BenchmarkItem, response: str | None, result, ref: dict[str, Any]) -> dict[str, Any]:
    from rewards.chartmimic import low_level_metrics
    from rewards.critique import chart_critique

    row: dict[str, Any] = {"key": item.key, "chart_type": item.chart_type, "reference_failed": not ref["ok"]}
    if not ref["ok"]:
        # Counted as the benchmark counts it: the item stays in n and scores 0 on every
        # metric; whether the answer itself ran still counts towards exec.
        executed = response is not None and result is not None and ran_like_chartmimic(result)
        row.update(
            exec=executed,
            error_kind="reference_failed",
            error=f"ground truth failed: {ref.get('error_kind')}: {ref.get('error')}",
        )
        scores = low_level_metrics(None, {}, gen_ok=False)
    elif response is None:
        row.update(exec=False, error_kind="no_prediction", error="no prediction or an empty response")
        scores = low_level_metrics(None, ref["trace"], gen_ok=False)
    else:
        executed = ran_like_chartmimic(result)
        row.update(exec=executed, error_kind=result.error_kind, error=result.error)
        scores = low_level_metrics(
            result.trace if result.ok else None, ref["trace"], gen_ok=result.ok, graph=item.chart_type == "graph"
        )
        row["critique"] = chart_critique(
            result.trace if result.ok else None,
            ref["trace"],
            gen_ok=result.ok,
            error=f"{result.error_kind}: {result.error}",
        )
    for m in METRICS:
        row[m] = scores[m].as_dict()
    row["low_level"] = 100.0 * sum(scores[m].f1 for m in METRICS) / len(METRICS)
    return row


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """ChartMimic's code_pass aggregation: 100 * sum(F1 of executed items) / n."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    out: dict[str, Any] = {"n": n, "exec_rate": 100.0 * sum(bool(r["exec"]) for r in rows) / n}
    for m in METRICS:
        out[m] = 100.0 * sum(r[m]["f1"] for r in rows if r["exec"]) / n
    out["low_level"] = sum(out[m] for m in METRICS) / len(METRICS)
    if any("judge" in r for r in rows):
        out["high_level"] = sum(r.get("judge") or 0.0 for r in rows if r["exec"]) / n
        out["overall"] = (out["low_level"] + out["high_level"]) / 2
    return out


def summary_markdown(name: str, summary: dict[str, Any]) -> str:
    def f(key):
        v = summary.get(key)
        return f"{v:.1f}" if isinstance(v, (int, float)) else "-"

    lines = [
        f"# Chart-to-code evaluation: {summary['benchmark']}",
        "",
        "| model | Exec | Low | High | Overall | Text | Layout | Type | Color | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {name} | {f('exec_rate')} | {f('low_level')} | {f('high_level')} | {f('overall')} | {f('text')} | "
        f"{f('layout')} | {f('type')} | {f('color')} | {summary.get('n', 0)} |",
        "",
        "## By chart type",
        "",
        "| chart type | n | Exec | Low | Text | Layout | Type | Color |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ctype, s in sorted(summary.get("per_chart_type", {}).items()):
        lines.append(
            f"| {ctype} | {s['n']} | {s['exec_rate']:.1f} | {s['low_level']:.1f} | {s['text']:.1f} | "
            f"{s['layout']:.1f} | {s['type']:.1f} | {s['color']:.1f} |"
        )
    issues = summary.get("input_problems", {})
    counts = {k: len(v) for k, v in issues.items()}
    counts["malformed_lines"] = summary.get(
        "malformed_line_count", counts.get("malformed_lines", 0)
    )  # only a few quoted
    if any(issues.values()):
        lines += ["", "## Input problems", ""]
        lines += [
            f"- {k.replace('_', ' ')}: {counts[k]}"
            + (f" ({', '.join(map(str, v[:5]))}{', ...' if counts[k] > 5 else ''})" if v else "")
            for k, v in issues.items()
            if v
        ]
    return "\n".join(lines) + "\n"


def run(opts: EvalOptions, *, engine: Any = None, judge_engine: Any = None) -> int:
    """The command: generate the answers (model=) or read them (predictions=), then render,
    score and summarise. `engine` and `judge_engine` stand in for the models (tests)."""
    data_dir = Path(opts.data_dir)
    if not data_dir.exists():
        raise UserError(f"no such benchmark folder or file: {data_dir}")
    items = LOADERS[opts.benchmark](data_dir)
    generation = None
    if opts.model or opts.num_shards > 1:
        predictions, generation = produce_predictions(opts, items, engine)
        if predictions is None:  # one shard's answers: scoring waits for the merge
            return 0
    else:
        predictions = Path(opts.predictions)
    return score(opts, items, predictions, generation, judge_engine)


def reference_cache(opts: EvalOptions) -> ReferenceCache:
    return ReferenceCache(
        Path(opts.cache_dir) if opts.cache_dir else Path(os.path.expanduser("~/.cache/vlrl/reference_traces"))
    )


def generation_config(model: str, overrides: list[str]):
    """The model and rollout sections for evaluation: the model's preset (image sizes), then
    greedy decoding with the benchmark's 4,096-token limit, vLLM with the GPU to itself,
    then the user's model.* / rollout.* keys."""
    from vlrl.config import load_config
    from vlrl.evaluation.generate import DEFAULT_MAX_NEW_TOKENS

    return load_config(
        [
            f"model={model}",
            "rollout.temperature=0",
            "rollout.top_p=1.0",
            f"rollout.max_new_tokens={DEFAULT_MAX_NEW_TOKENS}",
            "rollout.vllm_gpu_memory_utilization=0.85",
            "rollout.vllm_sleep=false",
            *overrides,
        ]
    )


def produce_predictions(opts: EvalOptions, items: list[BenchmarkItem], engine: Any) -> tuple[Path | None, dict | None]:
    """OUT/predictions.jsonl, generated (resumably) or merged from complete shards; None
    for a run that answers one shard."""
    from renderers import RenderPool
    from vlrl.data_order import shard_suffix
    from vlrl.evaluation import generate as gen
    from vlrl.rollout.base import SamplingParams
    from vlrl.rollout.build import build_rollout_engine

    out = Path(opts.out)
    if opts.num_shards > 1 and opts.shard < 0:
        if not out.is_dir():
            raise UserError(
                f"{out}: no answers to merge; run shard=0..{opts.num_shards - 1} num_shards={opts.num_shards} "
                f"out={out} first"
            )
        path = gen.merge_shards(out, items, opts.num_shards)
        settings = out / "generation.json"
        return path, (json.loads(settings.read_text(encoding="utf-8")) if settings.exists() else None)
    cfg = generation_config(opts.model, opts.overrides)  # a bad key fails here, before anything is written
    template = gen.load_template(opts.prompt) if opts.prompt else None
    settings = {
        "model": opts.model,
        "engine": cfg.rollout.engine,
        "prompt": opts.prompt or ("chartmimic_direct_mimic" if opts.benchmark == "chartmimic" else "msrl_chart2code"),
        "temperature": cfg.rollout.temperature,
        "top_p": cfg.rollout.top_p,
        "max_new_tokens": cfg.rollout.max_new_tokens,
        "min_pixels": cfg.model.min_pixels,
        "max_pixels": cfg.model.max_pixels,
        "seed": opts.seed,
        "num_shards": opts.num_shards,
    }
    recorded = out / "generation.json"
    if recorded.exists():
        before = json.loads(recorded.read_text(encoding="utf-8"))
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise UserError(
                f"{out} holds answers generated with other settings ("
                + ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
                + "); give another out= or the same settings"
            )
    if engine is None:
        engine = build_rollout_engine(
            cfg.model, cfg.rollout, seed=opts.seed, max_batch_requests=opts.batch_size, max_images_per_prompt=1
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(recorded, settings)
    mine = gen.shard_items(items, max(0, opts.shard), opts.num_shards)
    with RenderPool(workers=opts.workers, timeout=opts.timeout, compat="legacy") as pool:
        refs = render_references(mine, pool, reference_cache(opts))  # figure sizes; images ReachQA lacks
    params = SamplingParams(
        n=1,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        max_new_tokens=cfg.rollout.max_new_tokens,
        seed=opts.seed,
    )
    path = out / f"predictions{shard_suffix(max(0, opts.shard), opts.num_shards)}.jsonl"
    report = gen.generate_predictions(
        mine, refs, engine, params, path, benchmark=opts.benchmark, batch_size=opts.batch_size, template=template
    )
    print(f"generated {report.written} answers ({report.already} from an earlier run) -> {path}", file=sys.stderr)
    if opts.num_shards > 1:
        print(
            f"shard {opts.shard} of {opts.num_shards} done; once every shard is, run again without shard= to merge and score",
            file=sys.stderr,
        )
        return None, settings
    return path, settings


def score(
    opts: EvalOptions,
    items: list[BenchmarkItem],
    predictions: Path,
    generation: dict[str, Any] | None,
    judge_engine: Any = None,
) -> int:
    from renderers import RenderPool, RenderResult, prepare_code

    by_key = {it.key: it for it in items}
    preds = read_predictions(predictions, set(by_key))
    for problem in preds.bad_lines:
        print(f"{predictions}: {problem} (skipped)", file=sys.stderr)
    if preds.bad_line_count > len(preds.bad_lines):
        print(f"{predictions}: {preds.bad_line_count} malformed lines in all (skipped)", file=sys.stderr)
    judge = read_judge_scores(Path(opts.judge_responses)) if opts.judge_responses else None

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    items_path = out / "items.jsonl"
    done = {r["key"]: r for r in read_jsonl(items_path, skip_torn_tail=True)} if items_path.exists() else {}
    scope = [it for it in items if not opts.only_predicted or it.key in preds.responses]
    todo = [it for it in scope if it.key not in done]
    cache = reference_cache(opts)
    renders = out / "renders"  # each answer's PNG: what a judge (and a reader) looks at

    with (
        RenderPool(workers=opts.workers, timeout=opts.timeout, compat="legacy") as pool,
        JsonlWriter(items_path) as writer,
    ):
        # a judge also needs the reference images of items scored in an earlier run (cached)
        refs = render_references(scope if opts.judge_model else todo, pool, cache)
        if opts.benchmark == "reachqa":
            _save_missing_reference_images(todo, refs, out)
        jobs = []
        for it in todo:
            response = preds.responses.get(it.key)
            fut = None
            if response is not None:  # answered even when the reference failed: exec still counts
                code = prepare_code(response, strict=opts.strict)
                fut = pool.submit(code) if code is not None else None
                if code is None:
                    response_result = RenderResult.failure("syntax", "no python code block found in the response")
                    jobs.append((it, response, None, response_result))
                    continue
            jobs.append((it, response, fut, None))
        for it, response, fut, ready in tqdm(jobs, desc=f"eval {opts.benchmark}", unit="item", dynamic_ncols=True):
            result = ready if ready is not None else (fut.result() if fut is not None else None)
            if result is not None and result.ok and result.png:
                renders.mkdir(exist_ok=True)
                (renders / f"{_safe_name(it.key)}.png").write_bytes(result.png)
            row = score_item(it, response, result, refs[it.key])
            writer.write(row)
            done[it.key] = row
    rows = [done[it.key] for it in scope if it.key in done]
    if opts.judge_model:
        judge = run_judge(opts, rows, by_key, refs, renders, judge_engine)

    if judge is not None:
        for r in rows:
            r["judge"] = judge.get(r["key"])
    scored = rows  # a failed reference stays in n (scoring 0), as in the benchmark
    failed_refs = [r["key"] for r in rows if r.get("reference_failed")]
    if failed_refs:
        print(
            f"WARNING: {len(failed_refs)} reference script(s) failed to render and score 0 on every metric: "
            f"{', '.join(failed_refs[:20])}{' ...' if len(failed_refs) > 20 else ''} (see items.jsonl)",
            file=sys.stderr,
        )
    summary: dict[str, Any] = {"benchmark": opts.benchmark, **aggregate(scored)}
    per_type: dict[str, list[dict[str, Any]]] = {}
    for r in scored:
        per_type.setdefault(r["chart_type"], []).append(r)
    summary["per_chart_type"] = {k: aggregate(v) for k, v in sorted(per_type.items())}
    summary["input_problems"] = {
        "malformed_lines": preds.bad_lines,  # the first MAX_EXAMPLES; the count is malformed_line_count
        "unknown_files": preds.unknown_files,
        "duplicates": preds.duplicates,
        "missing_response": preds.missing_response,
        "missing_prediction": [it.key for it in scope if it.key not in preds.responses],
        "reference_failed": [r["key"] for r in rows if r.get("reference_failed")],
    }
    summary["malformed_line_count"] = preds.bad_line_count
    summary["reference_failed"] = len(failed_refs)
    summary["failures"] = {
        k: sum(1 for r in scored if r.get("error_kind") == k)
        for k in sorted({r.get("error_kind") for r in scored if r.get("error_kind")})
    }
    summary["options"] = asdict(opts)
    if generation is not None:
        summary["generation"] = generation
    write_json_atomic(out / "summary.json", summary)
    name = opts.name or (Path(opts.model).name if opts.model else predictions.stem)
    (out / "summary.md").write_text(summary_markdown(name, summary), encoding="utf-8")
    print(
        f"{opts.benchmark}: n={summary.get('n', 0)} exec={summary.get('exec_rate', 0):.1f} "
        f"low={summary.get('low_level', 0):.1f} (text {summary.get('text', 0):.1f}, layout {summary.get('layout', 0):.1f}, "
        f"type {summary.get('type', 0):.1f}, color {summary.get('color', 0):.1f})"
        + (f" high={summary['high_level']:.1f} overall={summary['overall']:.1f}" if "high_level" in summary else "")
        + f" -> {out}/summary.json"
    )
    problems = {k: len(v) for k, v in summary["input_problems"].items() if v}
    if preds.bad_line_count:  # malformed_lines quotes only the first few
        problems["malformed_lines"] = preds.bad_line_count
    if problems:
        print(
            "input problems: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in problems.items()), file=sys.stderr
        )
    return 0


def _safe_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:MAX_NAME_CHARS]


def run_judge(
    opts: EvalOptions,
    rows: list[dict[str, Any]],
    by_key: dict[str, BenchmarkItem],
    refs: dict[str, dict[str, Any]],
    renders: Path,
    engine: Any,
) -> dict[str, float | None]:
    """judge_model=: the local judge's score of every answer that rendered (OUT/judge.jsonl)."""
    import gc

    from vlrl.evaluation.judging import judge_renders
    from vlrl.rollout.build import build_rollout_engine

    pairs = []
    for r in rows:
        png = renders / f"{_safe_name(r['key'])}.png"
        reference = by_key[r["key"]].image or refs.get(r["key"], {}).get("png_path")
        if r["exec"] and png.exists() and reference:
            pairs.append((r["key"], reference, str(png)))
    gc.collect()  # the policy's engine, when it generated the answers, is gone before the judge loads
    if engine is None:
        cfg = generation_config(opts.judge_model, opts.overrides)
        engine = build_rollout_engine(
            cfg.model, cfg.rollout, seed=opts.seed, max_batch_requests=opts.batch_size, max_images_per_prompt=2
        )
    path = Path(opts.out) / "judge.jsonl"
    asked = judge_renders(pairs, engine, path, batch_size=opts.batch_size, seed=opts.seed)
    print(f"judged {asked} rendered answers ({len(pairs) - asked} from an earlier run) -> {path}", file=sys.stderr)
    return read_judge_scores(path)


def _save_missing_reference_images(items: list[BenchmarkItem], refs: dict[str, dict[str, Any]], out: Path) -> None:
    """ReachQA ships code; where its image is absent, keep the rendering we made of it."""
    target = out / "reference_images"
    for it in items:
        ref = refs.get(it.key, {})
        if it.image is None and ref.get("png_path"):
            target.mkdir(exist_ok=True)
            dest = target / f"{it.key}.png"
            if not dest.exists():
                dest.write_bytes(Path(ref["png_path"]).read_bytes())
