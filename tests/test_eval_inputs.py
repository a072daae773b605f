"""`vlrl eval` survives any predictions file: hostile input is counted, a few lines are
quoted, and memory stays bounded whatever the file holds."""

import json
import random
import tracemalloc

import pytest
from conftest import SAMPLES

from vlrl.cli import main
from vlrl.evaluation.chart_eval import MAX_EXAMPLE_CHARS, MAX_EXAMPLES
from vlrl.jsonl import MAX_LINE_BYTES, JsonlError, iter_jsonl_lenient, read_jsonl

MB = 2**20
GOOD = {"file": "bar_1.py", "response": "```python\n" + (SAMPLES / "bar_1.py").read_text() + "```"}


def _garbage(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def hostile(kind: str) -> tuple[bytes, int]:
    """(file content, how many malformed lines it holds)."""
    rng = random.Random(0)
    if kind == "huge_numbers":
        lines = [
            b'{"file": "bar_1.py", "response": ' + b"7" * 5000 + b"}",
            b'{"file": ' + b"9" * 100_000 + b"}",
            b"-" + b"1" * 5000,
        ]
        return b"\n".join(lines) + b"\n", 3
    if kind == "deep_nesting":
        lines = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000]
        return b"\n".join(lines) + b"\n", 3
    if kind == "binary_garbage":
        # ~4 MB of random bytes cut into short "lines": thousands of malformed lines
        chunks = [_garbage(rng, rng.randint(1, 400)).replace(b"\n", b"") + b"\n" for _ in range(20_000)]
        return b"".join(chunks), sum(1 for c in chunks if c.decode("utf-8", "replace").strip())
    if kind == "no_newlines":
        return b"[" * (50 * MB), 1  # one 50 MB line: never held whole
    if kind == "invalid_utf8":
        lines = [b'\xff\xfe{"file": "bar_1.py"}', b'{"file": "nope_\xff\xc3.py", "response": "x"}', b"\x80" * 1000]
        return b"\n".join(lines) + b"\n", 2  # the middle one parses (bytes replaced): an unknown file
    if kind == "nul_bytes":
        lines = [b"\x00" * 5000, b'{"file": "bar_1.py\x00", "response": "x"}', b'{"file": "bar_1.py"}\x00']
        return b"\n".join(lines) + b"\n", 3
    raise ValueError(kind)


KINDS = ["huge_numbers", "deep_nesting", "binary_garbage", "no_newlines", "invalid_utf8", "nul_bytes"]


def run_eval(tmp_path, content: bytes, *extra: str) -> tuple[dict, int]:
    """Run `vlrl eval` on the file; (summary, peak Python memory in bytes during the run)."""
    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(content)
    tracemalloc.start()
    try:
        rc = main(
            [
                "eval",
                "benchmark=chartmimic",
                f"data_dir={SAMPLES}",
                f"predictions={preds}",
                f"out={tmp_path / 'eval'}",
                f"cache_dir={tmp_path / 'cache'}",
                "only_predicted=true",
                "workers=1",
                *extra,
            ]
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 0
    return json.loads((tmp_path / "eval" / "summary.json").read_text()), peak


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", KINDS)
def test_eval_survives_a_hostile_predictions_file(tmp_path, kind):
    content, bad = hostile(kind)
    summary, peak = run_eval(tmp_path, content)
    assert summary["malformed_line_count"] == bad
    examples = summary["input_problems"]["malformed_lines"]
    assert len(examples) == min(bad, MAX_EXAMPLES)
    assert all(isinstance(e, str) and len(e) <= MAX_EXAMPLE_CHARS for e in examples)
    assert examples[0].startswith("line 1: ")
    assert summary["n"] == 0  # nothing usable was predicted: nothing is scored
    # the summary quotes a few lines, not the file (binary_garbage is ~4 MB)
    assert len((tmp_path / "eval" / "summary.json").read_bytes()) < 20_000
    # a line is read MAX_LINE_BYTES at most (Python's buffered readline may hold it twice);
    # holding the 50 MB line as bytes and text, or every bad line, would cost 100 MB and more
    assert peak < 2 * MAX_LINE_BYTES + 16 * MB, f"peak {peak / MB:.0f} MB"
    if kind == "no_newlines":
        assert "longer than" in examples[0]
    if kind == "deep_nesting":
        assert "nested too deeply" in examples[0]
    if kind == "huge_numbers":
        assert "ValueError" in examples[0]
    if kind == "invalid_utf8":
        assert summary["input_problems"]["unknown_files"] == ["nope_\ufffd\ufffd.py"]


@pytest.mark.timeout(300)
def test_a_good_prediction_among_garbage_is_scored(tmp_path):
    content, _ = hostile("binary_garbage")
    good = json.dumps(GOOD).encode() + b"\n"
    summary, _ = run_eval(tmp_path, content[:200_000] + b"\n" + good + b"\x00\xff\n[[[[\n")
    assert summary["n"] == 1 and summary["exec_rate"] == 100.0 and summary["low_level"] > 90
    assert summary["malformed_line_count"] > 100
    assert len(summary["input_problems"]["malformed_lines"]) == MAX_EXAMPLES


def test_judge_responses_with_garbage_are_read_leniently(tmp_path):
    from vlrl.evaluation.chart_eval import read_judge_scores

    path = tmp_path / "judge.jsonl"
    path.write_bytes(
        b"[" * 100_000
        + b"\n"
        + b"\x00\xff\n"
        + b'{"x": '
        + b"1" * 5000
        + b"}\n"
        + json.dumps({"file": "bar_1.py", "response": "fine. Score: 80"}).encode()
        + b"\n"
        + json.dumps({"file": "pie_1.py", "response": 12}).encode()
        + b"\n"
    )
    assert read_judge_scores(path) == {"bar_1": 80.0, "pie_1": None}


def test_lenient_reader_skips_an_overlong_line_and_goes_on(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 5000 + b"\n" + b'{"b": 2}\n' + b"y" * 3000)
    got = list(iter_jsonl_lenient(path, max_line_bytes=1000))
    assert got[0] == (1, {"a": 1}, None)
    assert got[1][0] == 2 and got[1][1] is None and "longer than 1000 bytes (5001 bytes" in got[1][2]
    assert got[2] == (3, {"b": 2}, None)
    assert got[3][0] == 4 and got[3][1] is None and "3000 bytes" in got[3][2]


def test_strict_reader_names_hostile_lines_and_forgives_only_a_torn_tail(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": ' + b"1" * 5000 + b"}\n")
    with pytest.raises(JsonlError, match="line 2 is not valid JSON"):
        list(read_jsonl(path))
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": [[[')
    assert list(read_jsonl(path, skip_torn_tail=True)) == [{"a": 1}, {"b": 2}]
    with pytest.raises(JsonlError, match="line 3"):
        list(read_jsonl(path))
    path.write_bytes(b'{"a": 1}\n[[[\n{"c": 3}')
    with pytest.raises(JsonlError, match="line 2"):
        list(read_jsonl(path, skip_torn_tail=True))


def test_writer_drops_a_torn_tail_longer_than_a_read_block(tmp_path):
    from vlrl.jsonl import JsonlWriter

    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"z" * (3 * MB))
    with JsonlWriter(path) as w:
        w.write({"b": 2})
    assert list(read_jsonl(path)) == [{"a": 1}, {"b": 2}]
    path.write_bytes(b"q" * (MB + 5))  # no newline at all: nothing complete to keep
    with JsonlWriter(path) as w:
        w.write({"c": 3})
    assert list(read_jsonl(path)) == [{"c": 3}]
