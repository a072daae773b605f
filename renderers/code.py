"""Turning model output into a runnable chart script, the way ChartMimic does it.

ChartMimic keeps the first ```python block, drops everything from the first
``plt.savefig(`` or ``plt.show(`` onwards and saves the current figure itself
(its evaluation code). We do the same, except that the save is ours:
the renderer captures the current figure after the script has run.
"""

from __future__ import annotations

import ast
import re
import warnings

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


def _deferred_spans(code: str) -> list[tuple[int, int]] | None:
    """Character spans of function and class bodies (code that runs only when called), or
    None when the script does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in the script's strings: its own business
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            # ast offsets count UTF-8 bytes within a line; chart code is ASCII where it matters
            spans.append((starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset))
    return spans


def _first_cut(code: str, pattern: re.Pattern, spans: list[tuple[int, int]] | None) -> int | None:
    for match in pattern.finditer(code):
        if spans is None or not any(a <= match.start() < b for a, b in spans):
            return match.start()
    return None


def strip_output_calls(code: str, *, official: bool = False) -> str:
    """Cut the script at its first plt.savefig( and then at its first plt.show(.

    official=True is ChartMimic's textual rule, wherever the call sits. Otherwise a call
    inside a function or class body is kept (the script calls that function later: cutting
    there would remove the call and with it the figure), and only one that runs when the
    script runs is cut at; the benchmarks' own reference scripts need this.
    """
    for pattern in (_SAVEFIG, _SHOW):
        if pattern.search(code) is None:
            continue  # most answers have nothing to cut: no parse
        cut = _first_cut(code, pattern, None if official else _deferred_spans(code))
        if cut is not None:
            code = code[:cut]
    return code.strip()


def prepare_code(text: str, *, strict: bool = False) -> str | None:
    """Model response -> the script the renderer runs (None when no code was found).
    strict=True applies ChartMimic's rules throughout: only a ```python block, and its
    textual cut at the first output call."""
    code = extract_code(text, strict=strict)
    if code is None:
        return None
    return strip_output_calls(code, official=strict)
