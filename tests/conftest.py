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


@pytest.fixture(scope="session")
def demo_url():
    """The demo app with the tiny model, served on a free local port for the whole session
    (the API tests and the browser tests share it)."""
    import socket

    from app.demo import build_demo
    from app.services import start_services

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with start_services("tiny", render_workers=2) as services:
        demo = build_demo(services)
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield demo.local_url
        finally:
            demo.close()
