"""A few `vlrl train` steps on random-weight Qwen2.5-VL models of two sizes: tokens/s, the time
split per phase and peak GPU memory.

    python benchmarks/gpu_train_bench.py [--sizes tiny,3b] [--steps 4] [--zero zero2]

Each size is written to disk as a random-weight checkpoint (`vlrl.models.tiny.save_tiny_model`;
"3b" has Qwen2.5-VL-3B's shapes: 36 layers of width 2048 with 16 heads and 2 KV heads, MLP
11008, a 32-block vision tower of width 1280; the vocabulary is the shipped tokenizer's, so the
embedding is far smaller than the real model's 151k rows). It is then trained with
`vlrl train model=PATH --profile` on a synthetic chart corpus: bf16 on a GPU, float32 on a CPU,
with DeepSpeed ZeRO-2 by default. A random model writes no runnable code, so every reward is
0; the step still generates, renders, scores and trains on every sample, which is what the
figures measure. The first step (warm-up, allocator growth) is left out of the medians.

The table gives per size: median step time, median generated tokens/s, the mean seconds per
phase and the peak memory the trainer recorded (`gpu_memory/peak_gib`, GPU only). The last
line is machine-readable: one `<size>_tokens_per_s=<x> <size>_peak_gib=<x>` pair per size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    "tiny": {},
    "small": dict(
        hidden_size=512,
        layers=8,
        heads=8,
        kv_heads=2,
        intermediate_size=1536,
        vision_depth=4,
        vision_hidden=256,
        vision_heads=4,
    ),
    "3b": dict(
        hidden_size=2048,
        layers=36,
        heads=16,
        kv_heads=2,
        intermediate_size=11008,
        vision_depth=32,
        vision_hidden=1280,
        vision_heads=16,
        vision_intermediate=3420,
    ),
}
PHASES = ("generate", "score", "encode", "forward", "reference", "backward", "optimizer", "sync")


def run_size(name: str, work: Path, corpus: Path, args) -> dict:
    import torch

    from vlrl.models.tiny import save_tiny_model

    model_dir = work / f"model-{name}"
    if not (model_dir / "config.json").exists():  # bf16 files on a GPU: the 3B model in 7 GB, not 14
        save_tiny_model(
            model_dir,
            kind="qwen2_5_vl",
            seed=0,
            **SIZES[name],
            save_dtype="bfloat16" if torch.cuda.is_available() else None,
        )
    out = work / f"run-{name}"
    cmd = [
        sys.executable,
        "-m",
        "vlrl.cli",
        "train",
        f"model={model_dir}",
        f"data.train={corpus}",
        f"out={out}",
        f"deepspeed={args.zero}",
        f"trainer.steps={args.steps}",
        f"rollout.n={args.n}",
        f"data.prompts_per_step={args.prompts}",
        f"rollout.chunk_prompts={args.prompts}",
        f"rollout.max_new_tokens={args.tokens}",
        "model.max_pixels=200704",
        "trainer.save_every=0",
        "trainer.save_final=false",  # no 50 GB ZeRO checkpoint of a random 3B model: only the steps count
        "trainer.tensorboard=false",
        "trainer.lr=1e-6",
        "trainer.resume=never",
        "--profile",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    metrics = out / "stage1" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    if result.returncode != 0:
        # the steps that finished still count (an out-of-memory at a late step says a lot)
        print(f"{name}: vlrl train failed after {len(rows)} logged step(s)\n{result.stderr[-4000:]}", file=sys.stderr)
        if not rows:
            raise SystemExit(f"{name}: no step finished")
    timed = rows[1:] or rows
    summary = {
        "params_m": count_params(model_dir) / 1e6,
        "step_s": statistics.median(r["time/step"] for r in timed),
        "tokens_per_s": statistics.median(r["tokens_per_second"] for r in timed),
        "peak_gib": max((r.get("gpu_memory/peak_gib", 0.0) for r in rows), default=0.0),
    }
    for phase in PHASES:
        summary[phase] = statistics.mean(r.get(f"time/{phase}", 0.0) for r in timed)
    return summary


def count_params(model_dir: Path) -> int:
    import math

    from safetensors import safe_open

    total = 0
    for shard in model_dir.glob("*.safetensors"):
        with safe_open(str(shard), "pt") as f:
            total += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="tiny,3b", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--tokens", type=int, default=256, help="max new tokens")
    parser.add_argument("--zero", default="zero2")
    parser.add_argument("--work", default="", help="folder for models and runs (default: a temporary one)")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size {unknown[0]!r}: choose from {', '.join(SIZES)}")

    import torch

    from vlrl.cli import main as cli

    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-train-bench-"))
    corpus = work / "corpus"
    if not (corpus / "index.jsonl").exists():
        cli(["data", "synth", "n=32", f"out={corpus}", "seed=0", "families=bar,line,pie,scatter"])
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    results = {name: run_size(name, work, corpus, args) for name in sizes}

    print(
        f"{device}; {args.zero}; {args.prompts} prompts x {args.n} samples, <= {args.tokens} new tokens; "
        f"medians over steps 2..{args.steps}"
    )
    header = ["size", "params (M)", "step s", "tokens/s", "peak GiB", *PHASES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, r in results.items():
        cells = [
            name,
            f"{r['params_m']:.1f}",
            f"{r['step_s']:.2f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['peak_gib']:.1f}",
            *(f"{r[p]:.2f}" for p in PHASES),
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        " ".join(
            f"{n}_tokens_per_s={r['tokens_per_s']:.1f} {n}_peak_gib={r['peak_gib']:.2f}" for n, r in results.items()
        )
    )


if __name__ == "__main__":
    main()
