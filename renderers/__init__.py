"""Untrusted chart code -> image + trace, in a sandboxed warm process pool.

Knows nothing of models or rewards (see DESIGN.md): code strings in, RenderResult out.
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
