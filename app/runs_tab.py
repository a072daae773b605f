"""Runs: a training run's reward and KL curves and its latest sample report.

Curves are drawn by vlrl.metrics_log.plot_metrics (the `vlrl plot` figures); the report is
the page vlrl.reports wrote (samples/step-N.html), shown in a sandboxed iframe (no scripts,
no same-origin access) from an escaped srcdoc, so nothing in it can reach the app.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from app.guard import guard
from app.services import DemoServices

MAX_DEPTH = 4  # run folders hold stage folders (and evals) a level or two down
MAX_REPORT_BYTES = 30_000_000  # pages inline their images; beyond this, link the file instead
_PLOT_LOCK = threading.Lock()  # pyplot's global state is not thread-safe


class RunProblem(ValueError):
    """A run folder the tab cannot show; the message is for the page."""


def find_stages(run_dir: str) -> list[str]:
    """Folders under run_dir (itself included) holding metrics.jsonl, relative to run_dir."""
    root = Path(run_dir or ".").expanduser()
    if not root.is_dir():
        raise RunProblem(f"No run folder at `{root}`.")
    found = []
    for depth in range(MAX_DEPTH + 1):  # level by level: a folder such as / is not walked whole
        for metrics in sorted(root.glob("/".join(["*"] * depth + ["metrics.jsonl"]))):
            found.append(metrics.parent.relative_to(root).as_posix())
    if not found:
        raise RunProblem(
            f"`{root}` holds no metrics.jsonl (a run writes one per stage folder, "
            f"e.g. runs/chart2code/stage1/metrics.jsonl)."
        )
    return found


def latest_report(stage_dir: Path) -> Path | None:
    """The sample page of the highest step, by the step number in its name."""
    pages = []
    for page in (stage_dir / "samples").glob("step-*.html"):
        try:
            pages.append((int(page.stem.split("-", 1)[1]), page))
        except ValueError:
            continue
    return max(pages)[1] if pages else None


def report_iframe(page: Path) -> str:
    size = page.stat().st_size
    if size > MAX_REPORT_BYTES:
        return f"<p>The sample report {html.escape(str(page))} is {size // 1_000_000} MB: open it in a browser.</p>"
    text = page.read_text(encoding="utf-8", errors="replace")
    return (
        f"<p>{html.escape(page.name)}</p>"
        f'<iframe sandbox="" title="sample report" srcdoc="{html.escape(text, quote=True)}" '
        f'style="width:100%;height:720px;border:1px solid #ddd;"></iframe>'
    )


def last_metrics(metrics: Path) -> list[list[Any]]:
    """The last logged step as (metric, value) rows, the step and rewards first."""
    from vlrl.jsonl import read_jsonl

    rows = [r for r in read_jsonl(metrics, skip_torn_tail=True) if isinstance(r, dict)]
    if not rows:
        return []
    last = rows[-1]
    keys = sorted(last, key=lambda k: (k != "step", not k.startswith("reward"), k))
    return [
        [k, round(last[k], 5) if isinstance(last[k], float) else last[k]]
        for k in keys
        if isinstance(last[k], (int, float, str))
    ]


def plot_curves(metrics: Path, out: Path) -> dict[str, str]:
    """panel name -> PNG for the reward and KL panels this run logged."""
    from vlrl.metrics_log import plot_metrics

    with _PLOT_LOCK:
        paths = plot_metrics(metrics, out, panels=("rewards", "kl"))
    return {p.stem: str(p) for p in paths}


def build_runs_tab(services: DemoServices, runs_dir: str = "runs") -> None:
    try:
        initial = find_stages(runs_dir)
        first_note = f"{len(initial)} stage folder(s) in `{runs_dir}`: pick one."
    except RunProblem as exc:
        initial, first_note = [], f"{exc} Type a run folder and press **Scan**."
    with gr.Row():
        run_dir = gr.Textbox(value=runs_dir, label="run folder", scale=3, elem_id="run-dir")
        scan = gr.Button("Scan", scale=1)
        stage = gr.Dropdown(
            initial,
            value=None,
            label="stage (folders with metrics.jsonl)",
            scale=3,
            elem_id="run-stage",
            allow_custom_value=True,
        )
    status = gr.Markdown(first_note, elem_id="runs-status")
    with gr.Row():
        rewards_plot = gr.Image(label="reward", type="filepath", interactive=False, elem_id="run-rewards")
        kl_plot = gr.Image(label="KL to the reference", type="filepath", interactive=False, elem_id="run-kl")
    last = gr.Dataframe(headers=["metric", "value"], label="last logged step", interactive=False)
    report = gr.HTML(elem_id="sample-report")

    def on_scan(folder: str) -> dict:
        """List the stages and show the newest. A scan always redraws: a live run's newest
        stage keeps its name while its metrics grow, so the dropdown's value may not change."""
        try:
            stages = find_stages(folder)
        except RunProblem as exc:
            return {**on_show(folder, None), stage: gr.update(choices=[], value=None), status: f"⚠️ {exc}"}
        shown = on_show(folder, stages[-1])
        return {
            **shown,
            stage: gr.update(choices=stages, value=stages[-1]),
            status: f"{len(stages)} stage folder(s) in `{folder}`; showing {shown[status]}",
        }

    def on_show(folder: str, stage_name: str | None) -> dict:
        if not stage_name:  # nothing picked (a failed scan): clear what an earlier run left
            return {status: "", rewards_plot: None, kl_plot: None, last: [], report: ""}
        stage_dir = Path(folder or ".").expanduser() / stage_name
        metrics = stage_dir / "metrics.jsonl"
        if not metrics.is_file():
            return {
                status: f"⚠️ No metrics.jsonl in `{stage_dir}`.",
                rewards_plot: None,
                kl_plot: None,
                last: [],
                report: "",
            }
        from vlrl.options import UserError

        try:
            plots = plot_curves(metrics, services.scratch("plots-"))
            table = last_metrics(metrics)
        except UserError as exc:  # no steps yet, a malformed line (named with its number)
            plots, table, note = {}, [], f"⚠️ {exc}"
        else:
            note = f"`{stage_dir}`" + ("" if "kl" in plots else ": no KL logged (algo.beta=0 loads no reference).")
        page = latest_report(stage_dir)
        return {
            status: note,
            rewards_plot: plots.get("rewards"),
            kl_plot: plots.get("kl"),
            last: table,
            report: report_iframe(page)
            if page
            else "<p>No sample report in this stage yet (trainer.log_samples_every=N writes one every N steps).</p>",
        }

    outputs = [status, rewards_plot, kl_plot, last, report]
    scanned = [stage, *outputs]
    scan.click(guard(on_scan, status), [run_dir], scanned, api_name="scan_runs")
    run_dir.submit(guard(on_scan, status), [run_dir], scanned, api_name=False)
    stage.input(guard(on_show, status), [run_dir, stage], outputs, api_name="show_run")
