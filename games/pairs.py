"""Image pairs for Who-is-the-Spy: the folder layout, its loader, and `vlrl data pairs`.

Layout (Vision-Zero's): one flat folder of
    <base>_original.png   what the civilians see
    <base>_modified.png   what the spy sees
    <base>.json           optional record of exactly what differs ({"kind", "changes": [{"text", ...}], ...})

`load_pairs(dir)` reads any such folder (real photos included) and never raises on a bad
pair: a missing half, an unreadable image or two halves of different sizes is named in
`report.skipped` and the rest load.

`vlrl data pairs kind=scenes|charts n=N out=DIR seed=S` writes such a folder from the
CLEVR-like scene renderer (games.scenes) or the synthetic chart corpus (games.chart_pairs),
plus index.jsonl (one row per pair), failures.jsonl (skipped slots and why) and
summary.json. Pair i is a pure function of (kind, seed, i) and its options, so a rerun
keeps the complete pairs and only makes the missing ones.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from vlrl.options import OptionError, UserError, option

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_HALF = re.compile(r"^(?P<base>.+)_(?P<half>original|modified)(?P<suffix>\.[A-Za-z]+)$")


class PairError(UserError):
    """An image of a pair that cannot be read; the message names the file."""


# ---------------------------------------------------------------------------
# Reading a folder of pairs
# ---------------------------------------------------------------------------


@dataclass
class ImagePair:
    base: str  # file name stem shared by both halves (relative path when loaded recursively)
    original: Path
    modified: Path
    record: dict | None = None  # the <base>.json record, when there is one

    def load_images(self):
        """(original, modified) as RGB PIL images."""
        return _open_rgb(self.original), _open_rgb(self.modified)

    @property
    def differences(self) -> list[str]:
        """What the record says differs, one sentence per change (empty without a record)."""
        changes = (self.record or {}).get("changes") or []
        return [str(c.get("text", "")) for c in changes if isinstance(c, dict)]


@dataclass
class PairsReport:
    pairs: list[ImagePair] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<base>: why", one per pair left out
    warnings: list[str] = field(default_factory=list)  # kept pairs with an unreadable record

    def __len__(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        return pairs_fingerprint(self.pairs)

    def summary(self) -> str:
        text = f"{len(self.pairs)} pairs"
        if self.skipped:
            text += (
                f", {len(self.skipped)} skipped ({'; '.join(self.skipped[:3])}"
                + (" ..." if len(self.skipped) > 3 else "")
                + ")"
            )
        return text


def pairs_fingerprint(pairs) -> str:
    """ "count:hash" of the pairs' names in order. Game ids map to pairs by position, so a
    resumed job or a sibling shard must see the same list to play the same games."""
    import hashlib

    names = "\n".join(str(getattr(p, "base", p)) for p in pairs)
    return f"{len(pairs)}:{hashlib.sha256(names.encode('utf-8')).hexdigest()[:16]}"


def _open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PairError(f"{path}: not a readable image ({exc})") from None


def _image_size(path: Path, decode: bool) -> tuple[int, int]:
    """The size of a readable image; PairError names the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if decode:
                im.load()  # a truncated or corrupt body only shows when decoded
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PairError(f"{path.name} is not a readable image ({exc})") from None


def _read_record(path: Path) -> tuple[dict | None, str | None]:
    if not path.exists():
        return None, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name}: record ignored, not valid JSON ({exc})"
    if not isinstance(record, dict):
        return None, f"{path.name}: record ignored, not a JSON object"
    return record, None


def load_pairs(folder: str | os.PathLike, *, recursive: bool = False, decode: bool = True) -> PairsReport:
    """Every usable `<base>_original.*` / `<base>_modified.*` pair in `folder`, sorted by base.

    decode: fully decode each image to catch truncated files (slower on large photos);
    False only reads headers. Raises PairError only when `folder` itself is missing.
    """
    root = Path(folder)
    if not root.is_dir():
        raise PairError(f"{root}: not a folder of image pairs")
    halves: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(root.rglob("*") if recursive else root.iterdir()):
        m = _HALF.match(path.name)
        if not m or m["suffix"].lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        base = (path.parent.relative_to(root) / m["base"]).as_posix()
        halves.setdefault(base, {"original": [], "modified": []})[m["half"]].append(path)

    report = PairsReport()
    for base, found in sorted(halves.items()):
        problem = None
        for half in ("original", "modified"):
            if not found[half]:
                problem = f"missing {half} image ({Path(base).name}_{half}.png)"
            elif len(found[half]) > 1:
                problem = f"ambiguous {half} image ({', '.join(p.name for p in found[half])})"
            if problem:
                break
        if problem is None:
            original, modified = found["original"][0], found["modified"][0]
            try:
                size_o, size_m = _image_size(original, decode), _image_size(modified, decode)
            except PairError as exc:
                problem = str(exc)
            else:
                if size_o != size_m:
                    problem = f"sizes differ (original {size_o[0]}x{size_o[1]}, modified {size_m[0]}x{size_m[1]})"
        if problem is not None:
            report.skipped.append(f"{base}: {problem}")
            continue
        record, warning = _read_record(root / f"{base}.json")
        if warning:
            report.warnings.append(f"{base}: {warning}")
        report.pairs.append(ImagePair(base, original, modified, record))
    return report


# ---------------------------------------------------------------------------
# Writing pairs
# ---------------------------------------------------------------------------


def pair_paths(folder: Path, base: str) -> tuple[Path, Path, Path]:
    """(original PNG, modified PNG, JSON record) of `base` in `folder`."""
    return folder / f"{base}_original.png", folder / f"{base}_modified.png", folder / f"{base}.json"


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_pair(folder: Path, base: str, original_png: bytes, modified_png: bytes, record: dict) -> None:
    """Both images, then the record: a record on disk means its images are complete."""
    from vlrl.jsonl import write_json_atomic

    original, modified, record_path = pair_paths(folder, base)
    _write_bytes_atomic(original, original_png)
    _write_bytes_atomic(modified, modified_png)
    write_json_atomic(record_path, {"base": base, **record})


def _png(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# `vlrl data pairs`
# ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class PairsOptions:
    kind: Literal["scenes", "charts"] = option(help="scenes: CLEVR-like shapes; charts: synthetic charts")
    n: int = option(help="number of pair slots (a slot that yields no pair is skipped and counted)")
    out: str = option(help="output folder")
    seed: int = option(0, help="the same (kind, seed, options) always gives the same pairs")
    workers: int = option(0, help="parallel scene drawers / chart renders (0 = CPU cores)")
    retry_failed: bool = option(False, help="try again the slots an earlier run skipped")
    width: int = option(480, help="scenes: image width in pixels")
    height: int = option(320, help="scenes: image height in pixels")
    min_objects: int = option(3, help="scenes: fewest objects in a scene")
    max_objects: int = option(6, help="scenes: most objects in a scene")
    families: list[str] = option([], help="charts: comma-separated chart families (default: all)")  # noqa: RUF009
    dpi: float = option(100.0, help="charts: resolution of the renders")
    timeout: float = option(20.0, help="charts: seconds per render before it is killed")


@dataclass
class _Made:
    base: str
    original_png: bytes
    modified_png: bytes
    record: dict


@dataclass
class _Skipped:
    base: str
    reason: str  # a short key, counted in the summary
    detail: str


def pair_base(kind: str, seed: int, index: int) -> str:
    return f"{kind[:-1]}-s{seed}-{index:06d}"


def _scene_job(args: tuple) -> _Made | _Skipped:
    from games.scenes import SceneError, make_scene_pair

    base, seed, index, opts = args
    try:
        pair = make_scene_pair(
            seed * 1_000_003 + index,
            width=opts["width"],
            height=opts["height"],
            min_objects=opts["min_objects"],
            max_objects=opts["max_objects"],
        )
    except SceneError as exc:
        return _Skipped(base, "scene_not_placeable", str(exc))
    record = {**pair.record, "index": index, "pair_seed": pair.record["seed"], "seed": seed}
    return _Made(base, _png(pair.original), _png(pair.modified), record)


def _make_scenes(opts: PairsOptions, indices: list[int], workers: int) -> Iterator[_Made | _Skipped]:
    if not indices:
        return
    shared = {k: getattr(opts, k) for k in ("width", "height", "min_objects", "max_objects")}
    jobs = [(pair_base(opts.kind, opts.seed, i), opts.seed, i, shared) for i in indices]
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_scene_job, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_scene_job, jobs, chunksize=4)


def _make_charts(opts: PairsOptions, indices: list[int], workers: int) -> Iterator[_Made | _Skipped]:
    from games.chart_pairs import (
        chart_record,
        plan_chart_pairs,
        render_chart_pairs,
        render_problem,
    )
    from renderers import RenderPool

    if not indices:
        return  # everything is written already: no need to start the render server
    plans = plan_chart_pairs(opts.n, opts.seed, opts.families or None, indices=indices)
    with RenderPool(workers=workers, dpi=opts.dpi, timeout=opts.timeout, trace=False) as pool:
        for plan, renders in render_chart_pairs(plans, pool):
            base = pair_base(opts.kind, opts.seed, plan.index)
            if plan.problem is not None:
                yield _Skipped(base, "no_spy_edit", plan.problem)
                continue
            original, modified = renders[0], renders[-1]
            problem = render_problem(*renders, changes=plan.changes)
            if problem is not None:
                yield _Skipped(base, *problem)
                continue
            yield _Made(base, original.png, modified.png, chart_record(plan, opts.seed, original.image.size))


def _check(opts: PairsOptions) -> None:
    if opts.n <= 0:
        raise OptionError(f"n={opts.n}: ask for at least one pair")
    if opts.kind == "scenes":
        if opts.width < 64 or opts.height < 48:
            raise OptionError(f"width={opts.width} height={opts.height}: scenes need at least 64x48 pixels")
        if not 2 <= opts.min_objects <= opts.max_objects:
            raise OptionError(
                f"min_objects={opts.min_objects} max_objects={opts.max_objects}: need "
                "2 <= min_objects <= max_objects (two objects change)"
            )
    else:
        from vlrl.datasets.synth.conventions import FAMILIES

        unknown = [f for f in opts.families if f not in FAMILIES]
        if unknown:
            raise OptionError(
                f"unknown chart famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                f"known: {', '.join(FAMILIES)}"
            )


def run(opts: PairsOptions) -> int:
    from tqdm import tqdm

    from vlrl.jsonl import JsonlWriter, read_jsonl, write_json_atomic

    _check(opts)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    index_path, failures_path = out / "index.jsonl", out / "failures.jsonl"
    indexed = {r["base"] for r in read_jsonl(index_path, skip_torn_tail=True)} if index_path.exists() else set()
    failed_before = (
        {r["base"]: r["reason"] for r in read_jsonl(failures_path, skip_torn_tail=True)}
        if failures_path.exists()
        else {}
    )

    def complete(base: str) -> bool:
        return base in indexed and all(p.exists() for p in pair_paths(out, base))

    bases = [pair_base(opts.kind, opts.seed, i) for i in range(opts.n)]
    kept = [b for b in bases if complete(b)]
    earlier_skips = [b for b in bases if b in failed_before and b not in kept and not opts.retry_failed]
    todo = [i for i, b in enumerate(bases) if b not in kept and b not in earlier_skips]
    if kept or earlier_skips:
        print(
            f"resuming: {len(kept)} pairs already written, {len(earlier_skips)} skipped earlier, {len(todo)} to go",
            file=sys.stderr,
        )

    workers = (
        opts.workers
        if opts.workers > 0
        else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )
    make = _make_scenes if opts.kind == "scenes" else _make_charts
    made, reasons = 0, Counter(failed_before[b] for b in earlier_skips)
    with JsonlWriter(index_path) as index, JsonlWriter(failures_path) as failures:
        for outcome in tqdm(
            make(opts, todo, workers), total=len(todo), desc=f"pairs ({opts.kind})", unit="pair", dynamic_ncols=True
        ):
            if isinstance(outcome, _Skipped):
                reasons[outcome.reason] += 1
                if outcome.base not in failed_before:
                    failures.write({"base": outcome.base, "reason": outcome.reason, "detail": outcome.detail})
                continue
            write_pair(out, outcome.base, outcome.original_png, outcome.modified_png, outcome.record)
            if outcome.base not in indexed:
                original, modified, record = pair_paths(out, outcome.base)
                index.write(
                    {
                        "base": outcome.base,
                        "kind": outcome.record["kind"],
                        "original": original.name,
                        "modified": modified.name,
                        "record": record.name,
                        "changes": [c["text"] for c in outcome.record["changes"]],
                    }
                )
                indexed.add(outcome.base)
            made += 1

    in_index = sum(1 for b in bases if complete(b))
    skipped = sum(reasons.values())
    write_json_atomic(
        out / "summary.json",
        {
            "kind": opts.kind,
            "pairs": in_index,
            "made": made,
            "kept": len(kept),
            "skipped": skipped,
            "reasons": dict(reasons),
            "options": asdict(opts),
        },
    )
    why = ", ".join(f"{k} {v}" for k, v in reasons.most_common())
    print(
        f"made {made} new {opts.kind[:-1]} pairs ({len(kept)} were there already), skipped {skipped}"
        + (f" ({why})" if why else "")
        + f"; {in_index} of {opts.n} slots hold a pair in {out}"
    )
    return 0
