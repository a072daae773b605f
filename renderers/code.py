"""Turning model output into a runnable chart script, the way ChartMimic does it.

ChartMimic keeps the first ```python block, drops everything from the first
``plt.savefig(`` or ``plt.show(`` onwards and saves the current figure itself
(its evaluation code). We do the same, except that the save is ours:
the renderer captures the current figure after the script has run.
"""

from __future__ import annotations

import ast
import re

_PYTHON_FENCE = re.compile(r"```python(.*?)```", re.DOTALL)
# A lenient fallback for RL: ```py / ``` fences, or an unclosed ```python block
# (a generation cut by max_new_tokens still holds useful code).
_ANY_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)(?:```|\Z)", re.DOTALL)
_SAVEFIG = re.compile(r"plt\.savefig\(")
# ChartMimic's pattern leaves the dot unescaped; kept so the cut happens at the same place.
_SHOW = re.compile(r"plt.show\(")


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code(text: str, *, strict: bool = False) -> str | None:
    """The chart code inside a model response, or None when there is none.

    strict=True is ChartMimic's rule (only a ```python block counts). Otherwise the
    first fenced block of any language is taken, and a response with no fence at all
    is taken whole when it parses as Python.
    """
    if not isinstance(text, str):
        return None
    match = _PYTHON_FENCE.search(text)
    if match:
        return match.group(1)
    if strict:
        return None
    match = _ANY_FENCE.search(text)
    if match:
        return match.group(1)
    if text.strip() and _parses(text):
        return text
    return None


def strip_output_calls(code: str) -> str:
    """Cut the script at its first plt.savefig( and then at its first plt.show(."""
    match = _SAVEFIG.search(code)
    if match:
        code = code[: match.start()]
    match = _SHOW.search(code)
    if match:
        code = code[: match.start()]
    return code.strip()


def prepare_code(text: str, *, strict: bool = False) -> str | None:
    """Model response -> the script the renderer runs (None when no code was found)."""
    code = extract_code(text, strict=strict)
    if code is None:
        return None
    return strip_output_calls(code)
