"""Where step metrics go: metrics.jsonl always, TensorBoard and W&B when enabled."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vlrl.jsonl import JsonlWriter
from vlrl.options import UserError


def set_aside_rows_after(path: Path, step: int) -> int:
    """Keep in metrics.jsonl only the rows up to `step` (the step a run resumes from, 0 for a
    fresh start): rows logged after the checkpoint it resumes from would appear twice. They
    are appended to metrics.discarded.jsonl, not deleted. Returns how many were set aside."""
    import json
    import os

    from vlrl.jsonl import iter_jsonl_lenient

    if not path.exists():
        return 0
    kept, later = [], []
    for _, row, problem in iter_jsonl_lenient(path):
        if (
            problem is None
            and isinstance(row, dict)
            and isinstance(row.get("step"), (int, float))
            and row["step"] > step
        ):
            later.append(row)
        elif problem is None:
            kept.append(row)
    if not later:
        return 0
    with (path.parent / "metrics.discarded.jsonl").open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, default=str) + "\n" for r in later))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(later)


class MetricsLogger:
    def __init__(
        self, directory: Path, *, tensorboard: bool, wandb: bool, run_name: str, config: dict, start_step: int = 0
    ) -> None:
        moved = set_aside_rows_after(directory / "metrics.jsonl", start_step)
        if moved:
            print(
                f"{moved} metrics rows after step {start_step} (not covered by the checkpoint) moved to "
                f"{directory / 'metrics.discarded.jsonl'}",
                file=sys.stderr,
            )
        self.jsonl = JsonlWriter(directory / "metrics.jsonl")
        self.tb = None
        self.wandb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(directory / "tensorboard"))
            except ImportError:
                print("TensorBoard is not installed: metrics go to metrics.jsonl only", file=sys.stderr)
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                raise UserError("trainer.wandb=true needs the wandb package: pip install 'vlrl[wandb]'") from None
            self.wandb = wandb_module.init(project="vlrl", name=run_name, config=config, dir=str(directory))

    def log(self, row: dict[str, Any]) -> None:
        self.jsonl.write(row)
        step = int(row["step"])
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


PANELS = (
    ("rewards", "reward", None),  # total and one line per reward component
    ("kl", "KL to the reference", ["kl"]),
    ("entropy", "entropy (nats/token)", ["entropy"]),
    ("lengths", "completion length (tokens)", ["completion_length/mean", "completion_length/max"]),
    ("throughput", "tokens per second", ["tokens_per_second"]),
    ("time", "seconds per step", ["time/generate", "time/score", "time/train"]),
)


def _reward_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys = {k for r in rows for k in r if k.startswith("reward/") and k.count("/") == 1}
    # reward/errors is a count, on another scale than the rewards: it is not a line of this panel
    return ["reward/mean"] + sorted(
        keys
        - {
            "reward/mean",
            "reward/std",
            "reward/group_std_mean",
            "reward/errors",
            "reward/error_rate",
            "reward/unscorable",
        }
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# why a panel can be missing: said to the user instead of leaving a silent gap
WHY_MISSING = {"kl": "the run logged no KL (algo.beta=0 loads no reference model, so there is no KL term)"}


def plot_metrics(
    metrics_path: Path, out_dir: Path, panels: tuple[str, ...] | None = None, notes: list[str] | None = None
) -> list[Path]:
    """One PNG per panel (rewards, KL, entropy, lengths, throughput, time split) from a
    metrics.jsonl; a panel whose metrics the run never logged is skipped, with a line in
    `notes` saying why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vlrl.jsonl import read_jsonl

    everything = list(read_jsonl(metrics_path, skip_torn_tail=True))
    if not everything:
        raise UserError(f"{metrics_path} holds no steps yet")
    # rows another tool appended, or hand-edited ones, are left out rather than failing the plot
    rows = [r for r in everything if isinstance(r, dict) and _number(r.get("step"))]
    if not rows:
        raise UserError(f'{metrics_path}: none of its {len(everything)} rows has a numeric "step"')
    steps = [r["step"] for r in rows]
    written = []
    for name, ylabel, keys in PANELS:
        if panels is not None and name not in panels:
            continue
        keys = _reward_keys(rows) if keys is None else [k for k in keys if any(k in r for r in rows)]
        if not keys:
            if notes is not None:
                notes.append(f"no {name} plot: {WHY_MISSING.get(name, 'the run logged none of its metrics')}")
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            label = "total" if k == "reward/mean" else k.split("/", 1)[-1]
            ax.plot(
                steps,
                [r.get(k) if _number(r.get(k)) else None for r in rows],
                label=label,
                linewidth=2.5 if k == "reward/mean" else 1.2,
            )
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel}: {metrics_path.parent.name}")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def plot_rewards(metrics_path: Path, out_dir: Path) -> Path:
    """rewards.png in out_dir (written at the end of every run)."""
    return plot_metrics(metrics_path, out_dir, panels=("rewards",))[0]


def reward_trend(metrics_path: Path, *, flat: float = 0.02) -> str:
    """One line on what a run shows: mean reward (and exec rate, when logged) over its first
    and last few steps, and whether it rose, fell or stayed flat (within `flat`)."""
    from vlrl.jsonl import read_jsonl

    rows = [
        r
        for r in read_jsonl(metrics_path, skip_torn_tail=True)
        if isinstance(r, dict) and _number(r.get("step")) and _number(r.get("reward/mean"))
    ]
    if len(rows) < 2:
        return f"what this run shows: {len(rows)} logged step(s), too few to see a trend"
    k = max(1, min(5, len(rows) // 3))
    head, tail = rows[:k], rows[-k:]

    def mean(part: list[dict[str, Any]], key: str) -> float:
        return sum(r[key] for r in part) / len(part)

    def span(part: list[dict[str, Any]]) -> str:
        first, last = part[0]["step"], part[-1]["step"]
        return f"step {first}" if first == last else f"steps {first}-{last}"

    before, after = mean(head, "reward/mean"), mean(tail, "reward/mean")
    verdict = "rose" if after > before + flat else "fell" if after < before - flat else "stayed flat"
    line = f"what this run shows: the mean reward {verdict}, {before:.3f} ({span(head)}) -> {after:.3f} ({span(tail)})"
    if all(_number(r.get("exec_rate")) for r in head + tail):
        line += f"; exec rate {mean(head, 'exec_rate'):.0%} -> {mean(tail, 'exec_rate'):.0%}"
    if verdict == "stayed flat" and after < flat:
        line += (
            " (a model that never earns a reward gets no gradient: start from weights that can, e.g. "
            "the default model=tiny-learn with its warm start, or `vlrl sft` first)"
        )
    return line + f"; curve: {metrics_path.parent / 'rewards.png'}"
