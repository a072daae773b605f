"""Chart to code: a chart in, the model's matplotlib code, its rendering and its scores out.

Generation and scoring are separate steps over public APIs:
- generate: the chart2code prompt (vlrl.tasks.chart_scorer) through the RolloutEngine;
- score: the ChartScorer renders each answer in the sandboxed pool and scores it with
  exec + ChartMimic's metrics against an uploaded reference script; the visual rewards
  (SSIM, CLIP when configured) compare every rendering with the uploaded chart.
The "Render & score" button runs the second step alone on the code in the editor.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.guard import guard
from app.services import DemoServices
from app.uploads import (
    BadUpload,
    chart_sample_names,
    copy_sample,
    file_path,
    load_image_upload,
    read_script_upload,
)

MAX_SAMPLES = 8
MAX_NEW_TOKENS = 8192
IMAGE_HEIGHT = 360  # pixels: both charts fit whole, side by side
STATE_TTL = 3600  # seconds a session's last answers are kept

# Why a script produced no chart, in plain words (renderers.ERROR_KINDS).
_ERROR_WORDS = {
    "syntax": "the code is not valid Python",
    "runtime": "the code raised an error while running",
    "timeout": "the code ran past the time limit",
    "memory": "the code used more memory than allowed",
    "no_figure": "the code ran but drew no figure",
    "forbidden": "the code tried something the sandbox forbids",
    "crashed": "the code crashed the renderer",
    "forged": "what the code handed back was not a real figure",
}
_METRICS = ("text", "layout", "type", "color")


@dataclass
class ScoredAnswer:
    """One sample: the model's text, the code found in it, its rendering and its scores."""

    text: str
    code: str | None  # None: no code in the answer
    render: Any  # renderers.RenderResult
    visual: Any  # RewardOutput of the visual rewards (components per reward name)
    chart: Any = None  # RewardOutput of exec + chartmimic, when a reference script was given
    finish_reason: str = ""  # empty for code scored from the editor
    tokens: int | None = None


# --------------------------------------------------------------------------- the two steps


def new_task(services: DemoServices):
    """A ChartScorer for one request (it caches the reference's render between prompt and score)."""
    from vlrl.tasks.chart_scorer import ChartScorer

    return ChartScorer(services.pool, services.chart_reward)


def prompt_for(task, image: Any, reference_code: str | None):
    """The chat request: training's own prompt (with the figure-size hint that the reference's
    render gives, as in training) when a reference exists, else the plain chart2code prompt."""
    from vlrl.tasks.chart_scorer import chart2code_prompt, chat_messages

    if reference_code is None:
        return chat_messages(image, chart2code_prompt())
    return task.prompt_messages([_example(image, reference_code)])[0]


def generate_answers(
    services: DemoServices,
    request,
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int | None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """n completions of one request (vlrl.rollout.base.Completion); `on_step(done, total)`
    follows the decoding steps as the engine reports them."""
    from vlrl.rollout.base import SamplingParams

    params = SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    with services.model_lock:
        return services.engine.generate([request], params, progress=on_step)[0]


def _example(image: Any, reference_code: str):
    """The upload as a ChartExample (the task's unit), keyed by its content."""
    from vlrl.datasets.charts import ChartExample

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    key = hashlib.sha1(buf.getvalue() + reference_code.encode()).hexdigest()[:12]
    return ChartExample(id=f"upload-{key}", code=reference_code, image_bytes=buf.getvalue())


def score_answers(
    services: DemoServices,
    image: Any,
    reference_code: str | None,
    texts: Sequence[str],
    *,
    task=None,
    on_rendered: Callable[[int], None] | None = None,
) -> tuple[list[ScoredAnswer], str | None]:
    """Render and score each text; returns the answers and, if the reference script itself
    fails to render, why (then only the visual similarity is scored)."""
    from renderers import extract_code
    from rewards import RewardInput

    task = task or new_task(services)
    futures = task.start_renders(texts)
    renders = []
    for i, fut in enumerate(futures):
        renders.append(fut.result())
        if on_rendered:
            on_rendered(i)
    chart_outputs: list[Any] = [None] * len(texts)
    reference_problem = None
    if reference_code is not None:
        ex = _example(image, reference_code)
        usable, skipped = task.usable([ex])
        if usable:
            chart_outputs = task.score([ex] * len(texts), texts, renders=futures).outputs
        else:
            reference_problem = skipped[0].split(": ", 1)[-1]
    visual = services.visual_reward(
        [RewardInput(completion=t, reference_image=image, render=r) for t, r in zip(texts, renders)]
    )
    answers = [ScoredAnswer(t, extract_code(t), r, v, c) for t, r, v, c in zip(texts, renders, visual, chart_outputs)]
    return answers, reference_problem


# --------------------------------------------------------------------------- words and tables


def render_outcome(answer: ScoredAnswer) -> str:
    r = answer.render
    if answer.code is None:
        return (
            "**No code found** in the model's answer: it holds no ```python block and is not Python "
            "on its own. (A random or untrained model writes gibberish; that is expected.)"
        )
    if r.ok:
        return f"**Rendered** in {r.seconds:.2f} s."
    words = _ERROR_WORDS.get(r.error_kind, "the code failed")
    return f"**The code did not render**: {words}: `{(r.error or '').strip()[:300]}`"


def scores_markdown(answer: ScoredAnswer, visual_names: Sequence[str], reference_problem: str | None) -> str:
    lines = [render_outcome(answer), ""]
    sims = ", ".join(f"{name.upper()} {answer.visual.components.get(name, 0.0):.3f}" for name in visual_names)
    lines.append(f"**Visual similarity** to your chart (1 = identical): {sims}")
    if reference_problem:
        lines += ["", f"**No ChartMimic metrics**: the reference script does not render ({reference_problem})."]
    elif answer.chart is not None:
        comps = answer.chart.components
        ran = "yes" if comps.get("exec", 0.0) > 0 else "no"
        row = " | ".join(f"{100 * comps.get(f'chartmimic/{m}', 0.0):.1f}" for m in _METRICS)
        lines += [
            "",
            "**ChartMimic metrics** against the reference script (F1 x 100):",
            "",
            "| exec | text | layout | type | color | low-level |",
            "|---|---|---|---|---|---|",
            f"| {ran} | {row} | {100 * comps.get('chartmimic', 0.0):.1f} |",
        ]
        critique = answer.chart.critique.strip()
        lines += ["", f"**Critique**: {critique or 'matches the reference on every metric.'}"]
    else:
        lines += ["", "_Upload the reference script (or pick a bundled sample) for ChartMimic's metrics._"]
    return "\n".join(lines)


def table_headers(visual_names: Sequence[str]) -> list[str]:
    return ["sample", "tokens", "finished", "outcome", *visual_names, "chartmimic low-level"]


def table_rows(answers: Sequence[ScoredAnswer], visual_names: Sequence[str]) -> list[list[Any]]:
    rows = []
    for i, a in enumerate(answers, 1):
        outcome = "no code" if a.code is None else ("rendered" if a.render.ok else a.render.error_kind)
        low = round(100 * a.chart.components.get("chartmimic", 0.0), 1) if a.chart is not None else None
        rows.append(
            [
                i,
                a.tokens,
                a.finish_reason,
                outcome,
                *(round(a.visual.components.get(n, 0.0), 3) for n in visual_names),
                low,
            ]
        )
    return rows


def best_index(answers: Sequence[ScoredAnswer]) -> int:
    """ChartMimic's low-level score when there is a reference, else the visual similarity."""

    def key(i: int) -> tuple[float, float]:
        a = answers[i]
        return (a.chart.score if a.chart is not None else 0.0, a.visual.score)

    return max(range(len(answers)), key=key)


# --------------------------------------------------------------------------- the tab


def _inputs(chart_file, reference_file) -> tuple[Any, str | None]:
    path = file_path(chart_file)
    if path is None:
        raise BadUpload("Upload a chart image first (or pick a bundled sample).")
    image = load_image_upload(path)
    ref_path = file_path(reference_file)
    return image, (read_script_upload(ref_path) if ref_path else None)


def build_chart_tab(services: DemoServices) -> None:
    """The components and events of the tab, inside the caller's gr.Blocks / gr.Tab."""
    visual_names = services.visual_names
    d = services.defaults
    with gr.Row():
        with gr.Column(scale=1):
            # no file_types filter: a wrong file gets the demo's own message in the page, not a toast
            chart_file = gr.File(label="Chart image (PNG, JPEG, WebP, BMP, ...)", type="filepath", elem_id="chart-file")
            sample = gr.Dropdown(
                ["", *chart_sample_names()], value="", label="...or a bundled ChartMimic sample", elem_id="chart-sample"
            )
            reference_file = gr.File(
                label="Reference script (optional): adds ChartMimic's metrics",
                file_types=[".py"],
                type="filepath",
                elem_id="reference-file",
            )
            with gr.Accordion("Sampling", open=True):
                temperature = gr.Slider(0.0, 1.5, value=d.temperature, step=0.05, label="temperature (0 = greedy)")
                max_new_tokens = gr.Slider(
                    16,
                    MAX_NEW_TOKENS,
                    value=d.max_new_tokens,
                    step=16,
                    label="max new tokens",
                    elem_id="max-new-tokens",
                )
                n_samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="samples")
                with gr.Row():
                    fixed_seed = gr.Checkbox(value=True, label="fixed seed (same inputs, same samples)")
                    seed = gr.Number(value=d.seed, precision=0, label="seed")
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column(scale=2):
            status = gr.Markdown("Upload a chart and press **Generate**.", elem_id="chart-status")
            with gr.Row():
                chart_view = gr.Image(
                    label="your chart", type="pil", interactive=False, format="png", height=IMAGE_HEIGHT
                )
                rendering = gr.Image(
                    label="rendering of the generated code",
                    type="pil",
                    interactive=False,
                    format="png",
                    elem_id="rendering",
                    height=IMAGE_HEIGHT,
                )
            result = gr.Markdown(elem_id="chart-result")
            with gr.Row():
                pick = gr.Dropdown([], label="show sample", interactive=True, elem_id="pick-sample")
                download = gr.File(label="download the code", interactive=False)
            code = gr.Code(
                language="python",
                label="generated code (edit it, then Render & score)",
                interactive=True,
                max_lines=24,
                elem_id="generated-code",
            )
            score = gr.Button("Render & score the code above", elem_id="score")
            table = gr.Dataframe(headers=table_headers(visual_names), label="all samples", interactive=False)
            with gr.Accordion("raw model output", open=False):
                raw = gr.Textbox(show_label=False, lines=6, interactive=False)
    # what the last Generate / Render & score produced, for "show sample"; a session that
    # went away (API clients never say so) frees it after STATE_TTL seconds
    answers_state = gr.State({}, time_to_live=STATE_TTL)

    def show(answers: list[ScoredAnswer], index: int, reference_problem: str | None, image) -> dict:
        a = answers[index]
        folder = services.scratch("code-")
        path = folder / f"chart_sample{index + 1}.py"
        code_text = (a.code or "").strip("\n")
        path.write_text(code_text + "\n", encoding="utf-8")
        return {
            chart_view: image,
            rendering: a.render.image if a.render.ok else None,
            code: code_text,
            download: str(path) if a.code is not None else None,
            result: scores_markdown(a, visual_names, reference_problem),
            raw: a.text,
            table: table_rows(answers, visual_names),
        }

    def on_sample(name: str) -> dict:
        if not name:
            return {}
        try:
            png, py = copy_sample(name, services.scratch("sample-"))
        except BadUpload as exc:
            return {status: f"⚠️ {exc}"}
        return {
            chart_file: png,
            reference_file: py,
            chart_view: load_image_upload(png),
            status: f"Bundled sample **{name}** loaded: press **Generate**.",
        }

    def on_generate(
        chart_file_v, reference_v, temperature_v, max_new_v, n_v, fixed_v, seed_v, progress=gr.Progress()
    ) -> dict:  # noqa: B008 - Gradio's idiom
        try:
            image, reference_code = _inputs(chart_file_v, reference_v)
        except BadUpload as exc:
            gr.Warning(str(exc))
            return {status: f"⚠️ {exc}"}
        n = int(min(max(n_v or 1, 1), MAX_SAMPLES))
        max_new = int(min(max(max_new_v or 1, 1), MAX_NEW_TOKENS))
        temp = float(max(temperature_v or 0.0, 0.0))
        seed_used = int(seed_v or 0) if fixed_v else None
        progress(0.02, desc="building the prompt")
        task = new_task(services)
        request = prompt_for(task, image, reference_code)
        what = f"generating {n} sample(s) of up to {max_new} tokens with {services.model_name}"
        progress(0.1, desc=what)

        def on_step(done: int, total: int) -> None:
            if done % 8 == 0 or done == total:  # a few updates a second is plenty for the page
                progress(0.1 + 0.6 * done / total, desc=f"{what}: {done} of {total}")

        completions = generate_answers(
            services, request, n=n, temperature=temp, max_new_tokens=max_new, seed=seed_used, on_step=on_step
        )
        progress(0.7, desc="rendering in the sandbox")
        texts = [c.text for c in completions]
        answers, ref_problem = score_answers(
            services,
            image,
            reference_code,
            texts,
            task=task,
            on_rendered=lambda i: progress(0.7 + 0.25 * (i + 1) / n, desc=f"rendered {i + 1} of {n}"),
        )
        for a, c in zip(answers, completions):
            a.finish_reason = "stop" if c.finish_reason == "stop" else "length limit"
            a.tokens = len(c.token_ids)
        best = best_index(answers)
        rendered = sum(a.render.ok for a in answers)
        seed_note = f"seed {seed_used}" if seed_used is not None else "random seed"
        msg = f"{n} sample(s) at temperature {temp:g} ({seed_note}): {rendered} rendered. Showing sample {best + 1}" + (
            " (the best scored)." if n > 1 else "."
        )
        out = show(answers, best, ref_problem, image)
        out.update(
            {
                status: msg,
                answers_state: _shown(answers, ref_problem, image),
                pick: gr.update(choices=[(f"sample {i + 1}", i) for i in range(n)], value=best),
            }
        )
        return out

    def on_pick(index, shown: dict) -> dict:
        answers = (shown or {}).get("answers", [])
        if index is None or not 0 <= int(index) < len(answers):
            return {}
        return show(answers, int(index), shown["reference_problem"], shown["image"])

    def on_score(chart_file_v, reference_v, code_v, progress=gr.Progress()) -> dict:  # noqa: B008 - Gradio's idiom
        try:
            image, reference_code = _inputs(chart_file_v, reference_v)
        except BadUpload as exc:
            gr.Warning(str(exc))
            return {status: f"⚠️ {exc}"}
        if not (code_v or "").strip():
            return {status: "⚠️ The code box is empty: generate code first or paste a script."}
        progress(0.1, desc="rendering in the sandbox")
        from renderers import extract_code

        # the editor holds a script; a pasted model answer with its own ``` fence is kept as is
        text = code_v if extract_code(code_v) is not None and "```" in code_v else f"```python\n{code_v}\n```"
        answers, ref_problem = score_answers(services, image, reference_code, [text])
        out = show(answers, 0, ref_problem, image)
        out.update(
            {
                status: "Scored the code in the editor.",
                answers_state: _shown(answers, ref_problem, image),
                pick: gr.update(choices=[("edited code", 0)], value=0),
            }
        )
        return out

    outputs = [status, chart_view, rendering, code, download, result, raw, table, pick, answers_state]
    sample.change(
        guard(on_sample, status), [sample], [chart_file, reference_file, chart_view, status], api_name="load_sample"
    )
    chart_file.upload(_preview, [chart_file, sample], [chart_view, status, sample, reference_file], api_name=False)
    generate.click(
        guard(on_generate, status),
        [chart_file, reference_file, temperature, max_new_tokens, n_samples, fixed_seed, seed],
        outputs,
        api_name="generate",
        concurrency_id="model",
        concurrency_limit=1,
    )
    pick.input(guard(on_pick, status), [pick, answers_state], outputs, api_name=False)
    score.click(guard(on_score, status), [chart_file, reference_file, code], outputs, api_name="score")


def _shown(answers: list[ScoredAnswer], reference_problem: str | None, image) -> dict:
    return {"answers": answers, "reference_problem": reference_problem, "image": image}


def _preview(chart_file, sample_name):
    """Show the upload as the model will see it, or say why it cannot be used. A bundled
    sample's reference script belongs to that sample: a new chart drops it, so ChartMimic
    never scores one chart against another chart's script."""
    keep = (gr.update(), gr.update())
    note = ""
    if sample_name:
        keep = ("", None)
        note = f" (the reference script of sample **{sample_name}** was removed: upload this chart's own)"
    try:
        return (load_image_upload(file_path(chart_file)), f"Chart loaded: press **Generate**.{note}", *keep)
    except (BadUpload, TypeError) as exc:
        gr.Warning(str(exc))
        return (None, f"⚠️ {exc}", *keep)
