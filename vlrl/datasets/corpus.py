"""`vlrl data synth`: write a rendered synthetic chart corpus.

Layout of DIR:
    images/<id>.png     the rendering the model sees
    index.jsonl         one row per chart: id, image (relative path), code, family, metadata
    failures.jsonl      charts whose code failed to render (skipped and counted)
    summary.json        counts per family and the options used

index.jsonl is plain JSON lines, readable by the training code, the evaluator
(`benchmark=jsonl`) and HF `datasets.load_dataset("json", data_files=...)`. A killed job
resumes: charts already in the index are not rendered again.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from vlrl.jsonl import JsonlWriter, read_jsonl, write_json_atomic
from vlrl.options import OptionError, option


@dataclass(kw_only=True)
class SynthOptions:
    n: int = option(help="number of charts")
    out: str = option(help="output folder")
    seed: int = option(0, help="corpus seed; the same (n, seed) always gives the same charts")
    families: list[str] = option([], help="comma-separated subset of chart families (default: all)")
    style: Literal["full", "starter"] = option(
        "full",
        help="full: the 17 realistic families; starter: ~40-token scripts (bar, barh, line, scatter, pie; one "
        "call and a title) that a tiny model learns in a minute, the default run's corpus",
    )
    workers: int = option(0, help="concurrent renders (0 = CPU cores)")
    dpi: float = option(100.0, help="resolution of the images")
    timeout: float = option(20.0, help="seconds per chart before it is killed")


def chart_id(seed: int, index: int, style: str = "full") -> str:
    return f"{'synth' if style == 'full' else style}-s{seed}-{index:06d}"


def run(opts: SynthOptions) -> int:
    from renderers import RenderPool, strip_output_calls
    from vlrl.datasets.starter import STARTER_FAMILIES, starter_charts
    from vlrl.datasets.synth import FAMILIES, generate_specs

    if opts.n <= 0:
        raise OptionError(f"n={opts.n}: the corpus needs at least one chart")
    known = STARTER_FAMILIES if opts.style == "starter" else FAMILIES
    unknown = [f for f in opts.families if f not in known]
    if unknown:
        raise OptionError(
            f"unknown chart famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
            f"known{' with style=starter' if opts.style == 'starter' else ''}: {', '.join(known)}"
        )
    out = Path(opts.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    index_path, failures_path = out / "index.jsonl", out / "failures.jsonl"
    done = {r["id"] for r in read_jsonl(index_path, skip_torn_tail=True)} if index_path.exists() else set()
    failed_before = (
        {r["id"] for r in read_jsonl(failures_path, skip_torn_tail=True)} if failures_path.exists() else set()
    )

    if opts.style == "starter":
        specs = starter_charts(opts.n, opts.seed, opts.families or None)
    else:
        specs = generate_specs(opts.n, opts.seed, opts.families or None)
    ids = [chart_id(opts.seed, i, opts.style) for i in range(len(specs))]
    todo = [(cid, s) for cid, s in zip(ids, specs) if cid not in done and cid not in failed_before]
    if done or failed_before:
        print(f"resuming: {len(done)} charts already written, {len(todo)} to go", file=sys.stderr)

    written, failed = 0, 0
    with (
        RenderPool(workers=opts.workers, dpi=opts.dpi, timeout=opts.timeout, trace=False) as pool,
        JsonlWriter(index_path) as index,
        JsonlWriter(failures_path) as failures,
    ):
        codes = [s.to_code() for _, s in todo]
        results = pool.imap(strip_output_calls(c) for c in codes)
        for (cid, spec), code, result in tqdm(
            zip(todo, codes, results), total=len(todo), desc="synth", unit="chart", dynamic_ncols=True
        ):
            if not result.ok:
                failed += 1
                failures.write(
                    {"id": cid, "family": spec.family, "error_kind": result.error_kind, "error": result.error}
                )
                continue
            image = f"images/{cid}.png"
            (out / image).write_bytes(result.png)
            index.write({"id": cid, "image": image, "code": code, "family": spec.family, "metadata": spec.metadata()})
            written += 1

    per_family: dict[str, int] = {}
    for row in read_jsonl(index_path):
        per_family[row["family"]] = per_family.get(row["family"], 0) + 1
    write_json_atomic(
        out / "summary.json",
        {
            "charts": sum(per_family.values()),
            "per_family": per_family,
            "failed": failed + len(failed_before),
            "options": asdict(opts),
        },
    )
    print(
        f"wrote {written} charts to {out} ({sum(per_family.values())} in the index)"
        + (f"; {failed} failed to render, see failures.jsonl" if failed else "")
    )
    return 0
