"""`vlrl demo`: a Gradio app over the toolkit's own components.

    vlrl demo model=tiny|PATH host=127.0.0.1 port=7860

Tabs: chart to code (generate, render, score), the spy game (play one game), runs (curves
and sample reports of a training run). Everything is composed from public APIs; the app
owns one model, one sandboxed render pool and a scratch folder, all released on shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlrl.options import option

# Uploads beyond this are refused by the server before they reach the disk (a chart image or
# script is far smaller; bigger images are downscaled anyway).
MAX_UPLOAD = "25mb"
# Requests waiting beyond this are turned away with "queue full" instead of piling up.
MAX_QUEUE = 64


@dataclass(kw_only=True)
class DemoOptions:
    model: str = option(
        "tiny",
        help="a local checkpoint directory, or tiny / tiny-qwen2_5_vl (random weights: "
        "the page works, the answers are gibberish)",
    )
    host: str = option(
        "127.0.0.1",
        help="address to listen on (0.0.0.0 serves the network: the page runs "
        "models and sandboxed code for whoever reaches it)",
    )
    port: int = option(7860, help="port to listen on")
    device: str = option("auto", help="auto = cuda when available, else cpu")
    dtype: str = option("auto", help="auto = bfloat16 on GPU, float32 on CPU")
    seed: int = option(0, help="default sampling seed (and the tiny model's weights)")
    clip_checkpoint: str = option("", help="local open_clip checkpoint: adds CLIP similarity next to SSIM")
    clip_model: str = option("ViT-B-32", help="open_clip architecture of clip_checkpoint")
    runs: str = option("runs", help="run folder the Runs tab opens")
    spy_pairs: str = option(
        "", help="folder of <base>_original.png / <base>_modified.png pairs (default: the bundled data/spy_pairs)"
    )
    render_timeout: float = option(20.0, help="seconds a generated script may run before it is killed")


def build_demo(services, *, runs_dir: str = "runs", spy_pairs: str = ""):
    """The gr.Blocks of the app over started services (app.services.start_services).

    The caller launches it (`demo.launch(...)`) and closes the services afterwards.
    """
    import gradio as gr

    from app.chart_tab import build_chart_tab
    from app.runs_tab import build_runs_tab
    from app.spy_tab import build_spy_tab

    # delete_cache: uploads and outputs older than a day are removed hourly (a demo runs for weeks)
    with gr.Blocks(title="vlrl demo", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            f"# vlrl demo\nModel: `{services.model_name}`. Generated code runs in the sandboxed "
            f"render pool; nothing leaves this machine."
        )
        with gr.Tab("Chart to code"):
            build_chart_tab(services)
        with gr.Tab("Who is the spy?"):
            build_spy_tab(services, spy_pairs or None)
        with gr.Tab("Runs"):
            build_runs_tab(services, runs_dir)
    demo.queue(default_concurrency_limit=2, max_size=MAX_QUEUE)
    return demo


def launch(demo, host: str, port: int, **kwargs):
    """Serve the app with the demo's limits (the command and the tests use this one call)."""
    return demo.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_UPLOAD, **kwargs
    )


def run(opts: DemoOptions) -> int:
    """Start the services, serve until interrupted, release everything."""
    import os
    import signal

    from app.services import start_services

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline first: no telemetry calls

    def stop(signum, frame):  # a service manager's SIGTERM shuts down like Ctrl-C: pool closed
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        print(f"loading {opts.model} and starting the render pool ...", flush=True)
        with start_services(
            opts.model,
            device=opts.device,
            dtype=opts.dtype,
            seed=opts.seed,
            clip_checkpoint=opts.clip_checkpoint,
            clip_model=opts.clip_model,
            render_timeout=opts.render_timeout,
        ) as services:
            demo = build_demo(services, runs_dir=opts.runs, spy_pairs=opts.spy_pairs)
            try:
                launch(demo, opts.host, opts.port)
            finally:
                demo.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
