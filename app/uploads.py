"""What users upload, checked before anything uses it: images and reference scripts.

Every problem becomes a `BadUpload` whose message names the file and says what is wrong
in plain words; the tabs show it in the page instead of a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
CHART_SAMPLES = REPO_DATA / "chartmimic_samples"
# Larger uploads are shrunk to this many pixels on the long side: the processor resizes far
# below it anyway, and the page and the similarity rewards need no more.
MAX_SIDE = 2048
MAX_SCRIPT_BYTES = 1_000_000


class BadUpload(ValueError):
    """An upload the demo cannot use; the message is shown to the user as is."""


def file_path(value: Any) -> str | None:
    """The local path of a gr.File / gr.Image value (a str, or a dict or FileData with .path)."""
    if value is None or value == "":
        return None
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, dict):
        return value.get("path") or value.get("name")
    return getattr(value, "path", None) or getattr(value, "name", None)


def display_name(path: str) -> str:
    return Path(path).name


def load_image_upload(path: str, *, what: str = "chart") -> Any:
    """An RGB PIL image, shrunk to MAX_SIDE; BadUpload for anything that is not a usable image.

    The checks are the datasets' own (vlrl.datasets.charts.ChartExample.load_image): the
    header is read first and an image over its pixel limit is refused before decoding
    (a decompression bomb), CMYK, palette and alpha images are converted to RGB on white.
    """
    from vlrl.datasets.charts import MAX_IMAGE_PIXELS, ChartExample

    name = display_name(path)
    try:
        image = ChartExample(id=name, code="", image_path=path).load_image()
    except ValueError as exc:
        # the server's temp path is the server's business: the user sees the file's own name
        detail = str(exc).replace(str(path), name).replace(str(Path(path).parent), "")
        if "too large" in detail:
            raise BadUpload(
                f"The {what} '{name}' is too large: more than {MAX_IMAGE_PIXELS // 1_000_000} "
                f"million pixels is no chart (a decompression bomb?)."
            ) from None
        raise BadUpload(
            f"The {what} '{name}' is not an image this demo can read "
            f"(PNG, JPEG, WebP, BMP, ...): {detail.split(': ', 1)[-1]}"
        ) from None
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def read_script_upload(path: str) -> str:
    """The text of an uploaded reference script; BadUpload when it is not a UTF-8 Python file."""
    name = display_name(path)
    size = Path(path).stat().st_size
    if size > MAX_SCRIPT_BYTES:
        raise BadUpload(f"The reference script '{name}' is {size // 1000} kB; a chart script is far smaller.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadUpload(f"The reference script '{name}' is not UTF-8 text.") from None
    if not text.strip():
        raise BadUpload(f"The reference script '{name}' is empty.")
    return text


def chart_sample_names(directory: Path = CHART_SAMPLES) -> list[str]:
    """Bundled ChartMimic samples: `<name>.py` with `<name>.png` beside it."""
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.py") if p.with_suffix(".png").exists())


def copy_sample(name: str, dest: Path, directory: Path = CHART_SAMPLES) -> tuple[str, str]:
    """Copy a bundled sample's chart and script into dest (served from there), return both paths.

    Copies rather than links: Gradio serves only files under the temp dir or the working
    directory, and the demo may run from anywhere.
    """
    if name not in chart_sample_names(directory):
        raise BadUpload(f"No bundled sample named '{name}'.")
    png, py = directory / f"{name}.png", directory / f"{name}.py"
    dest.mkdir(parents=True, exist_ok=True)
    return str(shutil.copy(png, dest / png.name)), str(shutil.copy(py, dest / py.name))
