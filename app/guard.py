"""Event handlers that never show a traceback: a failure becomes a message in the page."""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("app")


def guard(fn, status):
    """Wrap a handler returning {component: value}; on an unexpected exception write it to
    `status` (a gr.Markdown) and the traceback to the server log, so the app keeps serving."""

    @functools.wraps(fn)  # keeps the signature: Gradio finds gr.Progress parameters through it
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            log.exception("demo handler %s failed", fn.__name__)
            return {status: f"⚠️ Something went wrong: {type(exc).__name__}: {exc}"}

    return wrapped
