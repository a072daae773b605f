"""JSONL files that survive crashes: rows are appended and flushed one at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from vlrl.options import UserError


class JsonlError(UserError):
    """A malformed line; the message names the file and the line number."""


def iter_jsonl_lenient(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row, problem) per non-empty line; a bad line has row None and says why."""
    with Path(path).open("r", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg})"
                continue
            if not isinstance(row, dict):
                yield number, None, "not a JSON object"
                continue
            yield number, row, None


def read_jsonl(path: str | os.PathLike, *, skip_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; a malformed line is an error naming its number.

    skip_torn_tail: a job killed mid-write can leave a partial last line in its own
    output file; when resuming, that line is ignored instead of being an error.
    """
    path = Path(path)
    torn_tail = skip_torn_tail and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    rows = list(iter_jsonl_lenient(path))
    for i, (number, row, problem) in enumerate(rows):
        if problem is not None:
            if torn_tail and i == len(rows) - 1:
                return
            raise JsonlError(f"{path}: line {number} is {problem}")
        yield row


class JsonlWriter:
    """Append rows to a JSONL file, each flushed to disk before the call returns."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self._f = self.path.open("a", encoding="utf-8")

    def _repair_torn_tail(self) -> None:
        # A previous run killed mid-line left a fragment that never held a complete row:
        # drop it so the next row starts on a line of its own.
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with self.path.open("r+b") as f:
            f.truncate(cut)

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temp file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
