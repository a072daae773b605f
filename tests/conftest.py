"""Shared fixtures. Everything runs offline: no code path may download anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SAMPLES = DATA / "chartmimic_samples"
PARITY = DATA / "chartmimic_parity"
# A reward plugin random text can earn (longer completions score more): real gradients even
# for the untrained tiny model.
LENGTH_REWARD_PLUGIN = ROOT / "tests" / "plugins" / "length_reward.py"


@pytest.fixture(scope="session")
def render_pool():
    """One warm pool for the whole session (start-up imports the chart stack once)."""
    from renderers import RenderPool

    pool = RenderPool(workers=2, timeout=20)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def sample_renders(render_pool):
    """name -> RenderResult of every shared ChartMimic ground-truth script."""
    from renderers import strip_output_calls

    names = sorted(p.stem for p in SAMPLES.glob("*.py"))
    codes = [strip_output_calls((SAMPLES / f"{n}.py").read_text()) for n in names]
    return dict(zip(names, render_pool.render_many(codes)))


def _serve(services):
    """Launch the demo over `services` on a free local port; returns the Blocks."""
    import socket

    from app.demo import build_demo, launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(services)
    launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    return demo


@pytest.fixture(scope="session")
def demo_services():
    """The demo's services with the tiny model and a real sandboxed render pool."""
    from app.services import start_services

    with start_services("tiny", render_workers=2) as services:
        yield services


@pytest.fixture(scope="session")
def demo_url(demo_services):
    """The demo app with the tiny model, served for the whole session (the API tests and the
    browser tests share it)."""
    demo = _serve(demo_services)
    try:
        yield demo.local_url
    finally:
        demo.close()


class ScriptedChartEngine:
    """A RolloutEngine whose answers are known, for what a random model never writes: sample
    k of a request answers [a fenced copy of SCRIPTED_SAMPLE's script, prose with no code,
    code that raises][k % 3]; seed 1 makes every sample prose. It reports progress like the
    HF engine, one step per word."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.progress_calls = 0

    def answers(self, seed):
        prose = "This chart shows some bars; I would rather not write code for it."
        if seed == 1:
            return [prose] * 3
        return [
            f"Here is the code:\n```python\n{self.script}\n```",
            prose,
            "```python\nimport matplotlib.pyplot as plt\nplt.bar([1], [2])\nraise ValueError('bad data')\n```",
        ]

    def generate(self, requests, params, *, progress=None):
        from vlrl.rollout.base import Completion

        out = []
        for _ in requests:
            group = []
            for k in range(params.n):
                text = self.answers(params.seed)[k % 3]
                ids = list(range(1, min(len(text.split()), params.max_new_tokens) + 1))
                group.append(Completion(text, ids, [-0.1] * len(ids), "stop", prompt_ids=[0]))
            out.append(group)
            if progress is not None:
                for step in range(1, params.max_new_tokens + 1):
                    progress(step, params.max_new_tokens)
                    self.progress_calls += 1
        return out

    def sync_weights(self, model):
        pass

    def sleep(self) -> None:
        pass

    def wake_up(self) -> None:
        pass


SCRIPTED_SAMPLE = "bar_1"


@pytest.fixture(scope="session")
def scripted_demo(demo_services):
    """The same app over the same render pool, with ScriptedChartEngine instead of the model:
    (url, engine)."""
    import dataclasses

    engine = ScriptedChartEngine((SAMPLES / f"{SCRIPTED_SAMPLE}.py").read_text())
    services = dataclasses.replace(demo_services, engine=engine, model_name="scripted answers")
    demo = _serve(services)
    try:
        yield demo.local_url, engine
    finally:
        demo.close()  # the services are the tiny app's: closed once, by demo_services
