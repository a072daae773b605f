"""`vlrl render PATH... out=DIR`: render chart scripts in the sandboxed pool.

Writes DIR/<name>.png, DIR/<name>.json (the trace) and DIR/results.jsonl (one row per
input: name, path, ok, error_kind, error, seconds). Inputs already in results.jsonl are
skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vlrl.jsonl import JsonlWriter, read_jsonl
from vlrl.options import OptionError, option


@dataclass(kw_only=True)
class RenderOptions:
    paths: list[str] = option([], help="chart scripts (.py) or folders of them")
    out: str = option(help="output folder")
    workers: int = option(0, help="concurrent renders (0 = CPU cores)")
    timeout: float = option(20.0, help="seconds per script before it is killed")
    dpi: float = option(100.0, help="resolution of the PNGs")
    memory_mb: int = option(2048, help="memory a script may use on top of the render server")
    disk_mb: int = option(256, help="all files a script may write, together (where namespaces work)")
    strict: bool = option(False, help="treat inputs as model responses and take only their ```python block")
    compat: str = option(
        "legacy", help="legacy: APIs that newer matplotlib/numpy/pandas removed work again; current: none"
    )


def collect_scripts(paths: list[str]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of .py scripts."""
    if not paths:
        raise OptionError("no scripts given: vlrl render PATH... out=DIR")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise OptionError(f"no such file or folder: {raw}")
        if p.is_dir():
            scripts = sorted(x for x in p.rglob("*.py") if x.is_file())
            if not scripts:
                raise OptionError(f"folder {raw} holds no .py scripts")
            found.extend(scripts)
        else:
            found.append(p)
    seen, unique = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_names(scripts: list[Path]) -> list[str]:
    """File stems, made unique with a numeric suffix when two folders share a name."""
    counts: dict[str, int] = {}
    names = []
    for p in scripts:
        n = counts.get(p.stem, 0)
        counts[p.stem] = n + 1
        names.append(p.stem if n == 0 else f"{p.stem}-{n + 1}")
    return names


def read_script(path: Path) -> tuple[str | None, str | None]:
    """(code, problem): a script that is not UTF-8 is reported, not rendered."""
    try:
        return path.read_bytes().decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"{path} is not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"


def run(opts: RenderOptions) -> int:
    from renderers import RenderPool, RenderResult, prepare_code, strip_output_calls

    scripts = collect_scripts(opts.paths)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = {row["name"] for row in read_jsonl(results_path, skip_torn_tail=True)} if results_path.exists() else set()
    todo = [(p, n) for p, n in zip(scripts, output_names(scripts)) if n not in done]
    if done:
        print(f"resuming: {len(done)} already rendered, {len(todo)} to go", file=sys.stderr)

    counts = {"ok": 0, "failed": 0}
    kinds: dict[str, int] = {}
    with (
        RenderPool(
            workers=opts.workers,
            timeout=opts.timeout,
            dpi=opts.dpi,
            memory_mb=opts.memory_mb,
            disk_mb=opts.disk_mb,
            compat=opts.compat,
        ) as pool,
        JsonlWriter(results_path) as writer,
    ):
        futures = []
        for path, name in todo:
            code, problem = read_script(path)
            if code is None:
                futures.append((path, name, None, problem))
                continue
            code = prepare_code(code, strict=True) if opts.strict else strip_output_calls(code)
            if code is None:
                futures.append((path, name, None, "no ```python block in the response"))
                continue
            futures.append((path, name, pool.submit(code), None))
        for path, name, fut, problem in tqdm(futures, desc="render", unit="chart", dynamic_ncols=True):
            result = fut.result() if fut is not None else RenderResult.failure("syntax", problem)
            if problem:
                print(f"skipped {path}: {problem}", file=sys.stderr)
            if result.ok:
                (out / f"{name}.png").write_bytes(result.png)
                (out / f"{name}.json").write_text(json.dumps(result.trace), encoding="utf-8")
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                kinds[result.error_kind] = kinds.get(result.error_kind, 0) + 1
            writer.write({"name": name, "path": str(path), **result.summary()})
    if not todo:
        print(f"all {len(done)} charts were already rendered into {out}; nothing to do")
        return 0
    detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    print(
        f"rendered {counts['ok']} of {len(todo)} charts into {out}"
        + (f"; {counts['failed']} failed ({detail})" if counts["failed"] else "")
    )
    # a run in which nothing rendered failed, whatever the reason: scripts calling it must see it
    return 1 if counts["ok"] == 0 else 0
