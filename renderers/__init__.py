"""Untrusted chart code -> image + trace, in a sandboxed warm process pool.

Knows nothing of models or rewards: code strings in, RenderResult out. The render job is
treated as hostile; docs/renderer.md gives the design and the threat model.
"""

from renderers.code import extract_code, prepare_code, strip_output_calls
from renderers.pool import PoolOptions, RenderPool
from renderers.result import ERROR_KINDS, RenderResult

__all__ = [
    "ERROR_KINDS",
    "PoolOptions",
    "RenderPool",
    "RenderResult",
    "extract_code",
    "prepare_code",
    "strip_output_calls",
]
