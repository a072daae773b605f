"""HTML sample reports: what the policy wrote, what it drew, and how it was scored.

One self-contained page per reported step (images inlined), plus an index of all pages:

    OUT/stageN/samples/step-000010.html
    OUT/stageN/samples/index.html
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class SampleView:
    text: str  # the completion
    png: bytes | None  # its rendering, when it rendered
    error: str | None  # why it did not
    score: float
    components: dict[str, float] = field(default_factory=dict)
    critique: str = ""


@dataclass
class PromptView:
    prompt_id: str
    image: Any  # PIL image of the input chart
    samples: list[SampleView]


def _img_tag(png: bytes | None = None, image: Any = None, alt: str = "") -> str:
    if image is not None:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        png = buf.getvalue()
    if png is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.prompt { border-top: 2px solid #888; padding-top: 1em; margin-top: 1.5em; }
.samples { display: flex; flex-wrap: wrap; gap: 1em; }
.sample { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em; width: 420px; }
img { max-width: 400px; border: 1px solid #eee; }
pre { max-height: 240px; overflow: auto; background: #f6f6f6; font-size: 11px; padding: 0.5em; }
.score { font-weight: bold; } .error { color: #b00; } .critique { color: #555; font-style: italic; }
table { border-collapse: collapse; font-size: 12px; } td { padding: 0 0.6em 0 0; }
"""


def render_page(title: str, prompts: Sequence[PromptView]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    for p in prompts:
        parts.append(
            f"<div class='prompt'><h2>{html.escape(p.prompt_id)}</h2>{_img_tag(image=p.image, alt='input chart')}"
        )
        parts.append("<div class='samples'>")
        for i, s in enumerate(p.samples):
            comps = "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in sorted(s.components.items())
            )
            drawn = (
                _img_tag(png=s.png, alt=f"sample {i} rendering")
                if s.png
                else f"<p class='error'>no rendering: {html.escape(s.error)}</p>"
                if s.error
                else ""
            )
            parts.append(
                f"<div class='sample'><div class='score'>sample {i}: reward {s.score:.3f}</div>{drawn}"
                f"<table>{comps}</table><p class='critique'>{html.escape(s.critique)}</p>"
                f"<pre>{html.escape(s.text)}</pre></div>"
            )
        parts.append("</div></div>")
    parts.append("</body></html>")
    return "".join(parts)


def write_sample_report(directory: Path, step: int, prompts: Sequence[PromptView]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    page = directory / f"step-{step:06d}.html"
    tmp = page.with_suffix(".html.tmp")
    tmp.write_text(render_page(f"{directory.parent.name}: samples at step {step}", prompts), encoding="utf-8")
    tmp.replace(page)
    pages = sorted(directory.glob("step-*.html"))
    links = "".join(f"<li><a href='{p.name}'>{p.stem}</a></li>" for p in pages)
    (directory / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>samples</title></head><body>"
        f"<h1>Sample reports</h1><ul>{links}</ul></body></html>",
        encoding="utf-8",
    )
    return page
