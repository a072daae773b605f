"""Benchmark layouts: ChartMimic Direct Mimic, ReachQA test, and our own JSONL datasets.

Each loader returns BenchmarkItems keyed the way that benchmark's predictions name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlrl.jsonl import read_jsonl
from vlrl.options import UserError


@dataclass
class BenchmarkItem:
    key: str  # what a prediction's "file" (or "id") resolves to
    code: str | None  # ground-truth script (None when unreadable: counted as a reference failure)
    image: str | None  # reference image path, when the benchmark ships one
    chart_type: str
    problem: str | None = None  # why the ground truth cannot be used


def _read_code(path: Path) -> tuple[str | None, str | None]:
    try:
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError:
        return None, f"{path.name} is not UTF-8"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"


def prediction_key(file: str) -> str:
    """ChartMimic predictions name the ground-truth file by path; only its stem matters."""
    name = Path(str(file)).name
    for suffix in (".py", ".pdf", ".png", ".jpg"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_chartmimic(data_dir: Path) -> list[BenchmarkItem]:
    scripts = sorted(data_dir.glob("*.py"))
    if not scripts:
        raise UserError(f"{data_dir} holds no ChartMimic scripts (<type>_<n>.py)")
    items = []
    for path in scripts:
        code, problem = _read_code(path)
        image = next((str(path.with_suffix(s)) for s in (".png", ".jpg") if path.with_suffix(s).exists()), None)
        items.append(BenchmarkItem(path.stem, code, image, path.stem.rsplit("_", 1)[0], problem))
    return items


def load_reachqa(data_dir: Path) -> list[BenchmarkItem]:
    code_dir = data_dir / "code"
    scripts = sorted(code_dir.glob("*.py"))
    if not scripts:
        raise UserError(f"{code_dir} holds no ReachQA scripts (code/00001.py ...)")
    info: dict[str, dict] = {}
    info_path = data_dir / "plot_info.jsonl"
    if info_path.exists():
        for row in read_jsonl(info_path):
            key = prediction_key(str(row.get("id", row.get("image", ""))))
            info[key] = row
    items = []
    for path in scripts:
        code, problem = _read_code(path)
        row = info.get(path.stem, {})
        image = None
        if row.get("image"):
            candidate = data_dir / row["image"]
            image = str(candidate) if candidate.exists() else None
        chart_type = str(row.get("major_chart_type") or "unknown")
        items.append(BenchmarkItem(path.stem, code, image, chart_type, problem))
    return items


def load_jsonl_dataset(data: Path) -> list[BenchmarkItem]:
    """Our own datasets: a JSONL file, or a folder with index.jsonl (e.g. `vlrl data synth`)."""
    index = data / "index.jsonl" if data.is_dir() else data
    if not index.exists():
        raise UserError(f"no dataset index at {index}")
    items = []
    for row in read_jsonl(index):
        if "id" not in row or "code" not in row:
            raise UserError(f"{index}: every row needs 'id' and 'code' (row {row.get('id', '?')})")
        image = row.get("image")
        if image and not Path(image).is_absolute():
            image = str(index.parent / image)
        items.append(BenchmarkItem(str(row["id"]), row["code"], image, str(row.get("family", "unknown"))))
    return items


LOADERS = {"chartmimic": load_chartmimic, "reachqa": load_reachqa, "jsonl": load_jsonl_dataset}
