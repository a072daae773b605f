"""Where step metrics go: metrics.jsonl always, TensorBoard and W&B when enabled."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vlrl.jsonl import JsonlWriter
from vlrl.options import UserError


class MetricsLogger:
    def __init__(self, directory: Path, *, tensorboard: bool, wandb: bool, run_name: str, config: dict) -> None:
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


def plot_rewards(metrics_path: Path, out_png: Path) -> Path:
    """Reward curves (total and per component) from a metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vlrl.jsonl import read_jsonl

    rows = list(read_jsonl(metrics_path, skip_torn_tail=True))
    steps = [r["step"] for r in rows]
    keys = ["reward/mean"] + sorted(k for k in (rows[0] if rows else {}) if k.startswith("reward/")
                                    and k.count("/") == 1 and k not in ("reward/mean", "reward/std", "reward/group_std_mean"))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in keys:
        ax.plot(steps, [r.get(k) for r in rows], label=k.split("/", 1)[1] if k != "reward/mean" else "total",
                linewidth=2.5 if k == "reward/mean" else 1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.set_title(f"Rewards: {metrics_path.parent.name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
