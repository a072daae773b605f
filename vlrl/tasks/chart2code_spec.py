"""Chart-to-code as a registered training task (`task=chart2code`, the default).

The registration record and the config sections the task owns (`reward.*`, `render.*`):
finding the task by name (`vlrl train --help` lists every task's options) must not import
torch or the task's code, which load when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vlrl.options import option
from vlrl.tasks.registry import TaskSpec


@dataclass(kw_only=True)
class RewardConfig:
    weights: dict[str, float] = option(
        {"format": 0.1, "exec": 0.2, "msrl_text": 0.7}, help="reward name -> weight (stage 2 adds a visual reward)"
    )
    options: dict[str, dict] = option({}, help="reward name -> constructor options, e.g. clip: {checkpoint: PATH}")
    plugins: list[str] = option(
        [], help="modules (names or .py paths) imported first, so their @register rewards can be weighted"
    )


@dataclass(kw_only=True)
class RenderConfig:
    compat: Literal["legacy", "current"] = option(
        "legacy",
        help="legacy: chart code written for matplotlib 3.5-3.9, numpy 1.x and pandas 1.x-2.x runs (removed APIs put back, see docs/compat.md); current: today's libraries as they are",
    )
    timeout: float = option(20.0, help="seconds a completion's script may run before it is killed")


TASK = TaskSpec(
    name="chart2code",
    build="vlrl.tasks.chart2code:Chart2CodeTask",
    help="chart image -> matplotlib code, rendered and scored (MSRL's GRPO curriculum)",
    sections={"reward": RewardConfig, "render": RenderConfig},
    presets="vlrl.tasks:presets",
    sft="vlrl.tasks.chart2code_sft:sft_data",
    # the learnable tiny model: a bare `vlrl train` warms it up on starter charts and its
    # reward visibly rises within minutes on a CPU (presets/tiny-learn.yaml)
    default_model="tiny-learn",
)
