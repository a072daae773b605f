"""JSONL files that survive crashes: rows are appended and flushed one at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from vlrl.options import UserError


class JsonlError(UserError):
    """A malformed line; the message names the file and the line number."""


# A line longer than this is skipped (and counted) without ever being held whole: a file
# with no newline at all must not be read into memory as one line. Real rows (a model's
# answer, a chart's code, a metrics row) are well under 1 MB.
MAX_LINE_BYTES = 8 * 2**20
_SKIP_CHUNK = 2**20
MAX_PROBLEM_CHARS = 200  # of a parser's message quoted in a problem


def _raw_lines(f, max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, bytes, size) per line of a binary file; bytes is None for a line over
    max_bytes, which is read past in chunks and never kept."""
    number = 0
    while True:
        line = f.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            size = len(line)
            while True:
                chunk = f.readline(_SKIP_CHUNK)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield number, None, size
        else:
            yield number, line, len(line)


def parse_json_line(text: str | bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(row, None) for a JSON object, else (None, why): hostile input (a 5,000-digit
    number, 100k nested brackets, NUL bytes) is a problem, never an exception."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    except RecursionError:
        return None, "not valid JSON (nested too deeply to parse)"
    except (ValueError, TypeError, MemoryError) as exc:  # e.g. Python's int string conversion limit
        return None, f"not valid JSON ({type(exc).__name__}: {str(exc)[:MAX_PROBLEM_CHARS]})"
    if not isinstance(row, dict):
        return None, "not a JSON object"
    return row, None


def iter_jsonl_lenient(
    path: str | os.PathLike, *, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row, problem) per non-empty line; a bad line has row None and says why.

    Memory stays bounded whatever the file holds: lines over max_line_bytes are skipped as
    a problem, bytes that are not UTF-8 are replaced (a row is judged by its JSON)."""
    with Path(path).open("rb") as f:
        for number, raw, size in _raw_lines(f, max_line_bytes):
            if raw is None:
                yield number, None, f"longer than {max_line_bytes} bytes ({size} bytes; not read)"
                continue
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            row, problem = parse_json_line(line)
            yield number, row, problem


def _ends_torn(path: Path) -> bool:
    """Whether the file's last byte is not a newline (read alone, not the whole file)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def read_jsonl(path: str | os.PathLike, *, skip_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; a malformed line is an error naming its number.

    skip_torn_tail: a job killed mid-write can leave a partial last line in its own
    output file; when resuming, that line is ignored instead of being an error.
    """
    path = Path(path)
    torn_tail = skip_torn_tail and _ends_torn(path)
    # one line of look-ahead: only the last line may be forgiven, and only a torn one
    pending: tuple[int, dict[str, Any] | None, str | None] | None = None
    for entry in iter_jsonl_lenient(path):
        if pending is not None:
            number, row, problem = pending
            if problem is not None:
                raise JsonlError(f"{path}: line {number} is {problem}")
            yield row
        pending = entry
    if pending is not None:
        number, row, problem = pending
        if problem is not None:
            if torn_tail:
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
        if not self.path.exists() or not _ends_torn(self.path):
            return
        with self.path.open("r+b") as f:  # look back for the last newline a block at a time
            end = f.seek(0, os.SEEK_END)
            cut = 0
            while end > 0:
                start = max(0, end - _SKIP_CHUNK)
                f.seek(start)
                block = f.read(end - start)
                at = block.rfind(b"\n")
                if at >= 0:
                    cut = start + at + 1
                    break
                end = start
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


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write JSONL through a temp file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
