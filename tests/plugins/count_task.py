"""A third training task, used only by tests/test_layers.py to show that adding a task is
one module and no change in the engine (docs/architecture.md, "Adding a task").

The policy sees a text-only prompt and is rewarded for answers of `count.target` tokens.
It owns a config section (`count.*`), presets (plugins/count_presets) and SFT data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vlrl.algo.advantages import group_advantages
from vlrl.options import OptionError, option
from vlrl.rollout.base import SamplingParams
from vlrl.tasks.base import SFTData, SFTExample, StepSamples
from vlrl.tasks.registry import TaskSpec, register_task


@dataclass(kw_only=True)
class CountSettings:
    target: int = option(4, minimum=1, help="answers of this many tokens earn the most")
    prompts: int = option(2, minimum=1, help="prompts per step on each rank")

    def validate(self) -> None:
        if self.target > 100:
            raise OptionError(f"target={self.target}: at most 100")


def count_prompt(i: int, target: int) -> list:
    return [{"role": "user", "content": [{"type": "text", "text": f"Answer in {target} words ({i})."}]}]


def sft_data(cfg) -> SFTData:
    """`vlrl sft task=count`: each prompt answered with `target` words."""
    target = cfg.count.target
    return SFTData([SFTExample(count_prompt(i, target), " ".join(["word"] * target)) for i in range(4)])


class CountTask:
    def __init__(self, cfg) -> None:
        self.cfg, self.settings = cfg, cfg.count  # the section this task owns

    def collect(self, step: int, rollout, timer) -> StepSamples:
        n = self.cfg.rollout.n
        requests = [count_prompt(i, self.settings.target) for i in range(self.settings.prompts)]
        params = SamplingParams(
            n=n,
            temperature=self.cfg.rollout.temperature,
            max_new_tokens=self.cfg.rollout.max_new_tokens,
            seed=self.cfg.seed * 1000 + step,
        )
        with timer.phase("generate"):
            completions = [c for group in rollout.generate(requests, params) for c in group]
        rewards = torch.tensor(
            [-abs(len(c.token_ids) - self.settings.target) for c in completions], dtype=torch.float32
        )
        return StepSamples(
            completions=completions,
            requests=requests,
            request_of=[i // n for i in range(len(completions))],
            advantages=group_advantages(rewards, n),
            keep=torch.ones(len(completions), dtype=torch.bool),
            metrics={"reward/mean": float(rewards.mean())},
        )

    def evaluate(self, step: int, rollout, timer) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def close(self) -> None:
        pass


register_task(
    TaskSpec(
        name="count",
        build=CountTask,
        sections={"count": CountSettings},
        presets=Path(__file__).parent / "count_presets",
        sft=sft_data,
        help="answers of a target length (a test task)",
    )
)
