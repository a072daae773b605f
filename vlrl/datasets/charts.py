"""Chart/code pairs for training and evaluation, from every layout users bring.

- a `vlrl data synth` folder (index.jsonl + images/);
- a JSONL file of rows with `code` and `image` (a path, relative to the file);
- a Parquet file with `code` and `image` columns (a path, raw bytes, or HF's
  {"bytes": ..., "path": ...} image struct);
- a ChartMimic-layout folder (<name>.py with <name>.png beside it).

Rows that cannot be used (no code, a missing or unreadable image) are skipped and counted,
never fatal; `load_chart_examples` returns them with a list of the problems.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards.images import to_rgb_on_white
from vlrl.jsonl import iter_jsonl_lenient
from vlrl.options import UserError

MAX_IMAGE_PIXELS = 40_000_000  # a chart larger than this is a decompression bomb, not a chart


@dataclass
class ChartExample:
    id: str
    code: str
    image_path: str | None = None
    image_bytes: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def load_image(self):
        """The chart as an RGB PIL image (alpha composited on white, as it is shown to models).

        Raises ValueError naming the example for an image that is empty, corrupt,
        truncated or implausibly large; CMYK, palette and alpha images are converted.
        """
        from PIL import Image, UnidentifiedImageError

        source = io.BytesIO(self.image_bytes) if self.image_bytes is not None else self.image_path
        where = self.image_path or f"example {self.id}"
        try:
            with Image.open(source) as im:
                w, h = im.size  # header only: nothing decoded yet
                if w * h > MAX_IMAGE_PIXELS:
                    raise ValueError(f"{where}: image of {w}x{h} pixels is too large to be a chart")
                im.load()
                from PIL import ImageOps

                # a photo of a chart is shown upright, as its EXIF orientation says
                return to_rgb_on_white(ImageOps.exif_transpose(im))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
            raise ValueError(f"{where}: unreadable image ({type(exc).__name__}: {exc})") from None


@dataclass
class LoadReport:
    examples: list[ChartExample]
    skipped: list[str]  # one line per unusable row, naming it and why


def _row_example(row: dict[str, Any], index: int, base: Path, where: str) -> tuple[ChartExample | None, str | None]:
    rid = str(row.get("id", index))
    code = row.get("code")
    if not isinstance(code, str) or not code.strip():
        return None, f"{where} row {rid}: no code"
    image = row.get("image")
    if isinstance(image, dict):  # HF datasets' image struct
        image = image.get("bytes") or image.get("path")
    meta = {k: v for k, v in row.items() if k not in ("code", "image", "id")}
    if isinstance(image, (bytes, bytearray)):
        return ChartExample(rid, code, image_bytes=bytes(image), meta=meta), None
    if isinstance(image, str) and image:
        path = Path(image) if Path(image).is_absolute() else base / image
        if not path.exists():
            return None, f"{where} row {rid}: image {path} not found"
        return ChartExample(rid, code, image_path=str(path), meta=meta), None
    return None, f"{where} row {rid}: no image"


def load_chart_examples(source: str | Path) -> LoadReport:
    src = Path(source)
    if not src.exists():
        raise UserError(f"no chart data at {src}")
    examples: list[ChartExample] = []
    skipped: list[str] = []
    if src.is_dir() and (src / "index.jsonl").exists():
        src = src / "index.jsonl"
    if src.is_dir():  # ChartMimic layout
        scripts = sorted(src.glob("*.py"))
        if not scripts:
            raise UserError(f"{src} holds neither index.jsonl nor chart scripts (*.py with images)")
        for py in scripts:
            png = next((py.with_suffix(s) for s in (".png", ".jpg") if py.with_suffix(s).exists()), None)
            if png is None:
                skipped.append(f"{py.name}: no image beside it")
                continue
            try:
                code = py.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                skipped.append(f"{py.name}: not UTF-8")
                continue
            examples.append(
                ChartExample(py.stem, code, image_path=str(png), meta={"chart_type": py.stem.rsplit("_", 1)[0]})
            )
        return LoadReport(examples, skipped)
    if src.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(src)
        missing = {"code", "image"} - set(frame.columns)
        if missing:
            raise UserError(f"{src} lacks column(s) {', '.join(sorted(missing))}")
        rows = frame.to_dict("records")
    else:
        rows = []
        for number, row, problem in iter_jsonl_lenient(src):
            if problem is None:
                rows.append(row)
            else:
                skipped.append(f"{src.name} line {number}: {problem}")
    for i, row in enumerate(rows):
        ex, problem = _row_example(row, i, src.parent, src.name)
        if ex is None:
            skipped.append(problem)
        else:
            examples.append(ex)
    if not examples:
        raise UserError(f"{src}: no usable chart examples ({len(skipped)} skipped; first: {skipped[:1]})")
    return LoadReport(examples, skipped)
