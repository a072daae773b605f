"""What a task hands the trainer each step, so the trainer never knows which task it runs.

A training task (chart-to-code, the spy game) owns its data, its prompts, how it drives the
rollout engine and how it turns outcomes into advantages; the trainer owns everything from
advantages on (micro-batches, losses, optimizer, checkpoints, logging).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from vlrl.profiling import PhaseTimer
from vlrl.rollout.base import Completion, Request, RolloutEngine


@dataclass
class StepSamples:
    """One step's samples on this rank."""

    completions: list[Completion]  # flat; each carries prompt_ids, token_ids and behaviour logprobs
    requests: list[Request]  # the prompts that were sampled
    request_of: list[int]  # completions[i] answers requests[request_of[i]]
    advantages: torch.Tensor  # [N] one per completion
    keep: torch.Tensor  # [N] bool: the completion gets gradient
    metrics: dict[str, Any] = field(default_factory=dict)  # the task's own step metrics
    events: list[str] = field(default_factory=list)  # worth a line in the log (e.g. a phase switch)
    # writes this step's human-readable sample report into a directory; returns its path
    report: Callable[[Path, int], Path] | None = None
    # the length limit the completions were sampled under (dr_grpo's constant normaliser);
    # None: rollout.max_new_tokens
    max_completion_length: int | None = None


@dataclass
class SFTExample:
    """One supervised pair: the prompt the policy sees in RL and the answer it should give."""

    messages: Request  # chat messages (images inline), as rollout requests are
    answer: str  # the target text; the recipe adds the end-of-turn token


@dataclass
class SFTData:
    """What a task gives `vlrl sft` (TaskSpec.sft)."""

    examples: list[SFTExample]
    skipped: list[str] = field(default_factory=list)  # examples left out, each with its reason


class TrainingTask(Protocol):
    def collect(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> StepSamples:
        """Sample and score this rank's share of the step's prompts."""
        ...

    def evaluate(self, step: int, rollout: RolloutEngine, timer: PhaseTimer) -> dict[str, float]:
        """Held-out metrics every trainer.eval_every steps (named eval/...); {} when the task has none."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a resume (EMAs, baselines); {} when stateless."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (identity in one process): how tasks keep shared state
    such as EMAs identical on every rank."""
    from vlrl import distributed as dist_utils

    return dist_utils.all_reduce(torch.tensor(values, dtype=torch.float64)).tolist()
