"""What a render returns. Plain data only, so results cross process boundaries as JSON."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

# forged: what came back from the job failed the checks at the boundary (renderers.validate)
ERROR_KINDS = ("syntax", "runtime", "timeout", "memory", "no_figure", "forbidden", "crashed", "forged")


@dataclass
class RenderResult:
    ok: bool
    png: bytes | None = None
    error_kind: str | None = None  # one of ERROR_KINDS when ok is False
    error: str | None = None  # last line of the user code's traceback, or why the job died
    seconds: float = 0.0
    trace: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    violations: list[str] = field(default_factory=list)  # sandbox refusals, even if caught
    phases: dict[str, float] = field(default_factory=dict)  # seconds: fork_to_start, seal, run, load, draw
    isolation: dict[str, str] = field(default_factory=dict)  # what confined the runner (see RenderPool.isolation)

    @property
    def image(self):
        """The rendering as an RGB PIL image (None when nothing was rendered)."""
        if self.png is None:
            return None
        from PIL import Image

        with Image.open(io.BytesIO(self.png)) as im:
            return im.convert("RGB")

    def summary(self) -> dict[str, Any]:
        """The row written to results.jsonl: everything but the image and the trace."""
        return {
            "ok": self.ok,
            "error_kind": self.error_kind,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }

    @classmethod
    def failure(cls, kind: str, error: str, seconds: float = 0.0, **extra: Any) -> "RenderResult":
        assert kind in ERROR_KINDS, kind
        return cls(ok=False, error_kind=kind, error=error, seconds=seconds, **extra)
