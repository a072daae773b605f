"""The reward API: inputs, outputs, a registry by name and a weighted composite.

A reward scores a batch. Each item carries the completion text, the reference (its code
and/or image) and render results; each output is a score, a dict of named components
(all logged by the trainer) and a short critique in plain words. Rewards are pure
functions of their inputs: rendering happens before, in `renderers`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


@dataclass
class RewardInput:
    completion: str
    reference_code: str | None = None
    reference_image: Any = None  # PIL image of the target chart, when there is one
    render: Any = None  # renderers.RenderResult of the completion's code
    reference_render: Any = None  # RenderResult of the reference code (for its trace)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RewardOutput:
    score: float
    components: dict[str, float] = field(default_factory=dict)
    critique: str = ""
    # "reward_error/<reward>/<ExceptionType>" per reward that failed on this item (it then
    # scored 0); the trainer counts them as reward/errors
    errors: list[str] = field(default_factory=list)


class Reward(Protocol):
    name: str

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]: ...


REGISTRY: dict[str, Callable[..., Reward]] = {}


def register(name: str):
    """Class decorator: make a reward constructible by name from a config."""

    def wrap(cls):
        if name in REGISTRY:
            raise ValueError(f"reward '{name}' is registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


# --------------------------------------------------------------------------- isolation

MAX_ERROR_CHARS = 300  # of an exception's message in a critique or a log line
_LOGGED_PER_CALL = 3  # failing items named on stderr per reward call; the rest are counted


def reward_error_name(reward: str, exc: BaseException | str) -> str:
    kind = exc if isinstance(exc, str) else type(exc).__name__
    return f"reward_error/{reward}/{kind}"


def _check_outputs(outs: Any, n: int) -> list[RewardOutput]:
    """The reward's outputs, if they are n RewardOutputs with finite scores (a NaN would
    poison every advantage of its group); otherwise InvalidRewardOutput."""
    if not isinstance(outs, (list, tuple)) or len(outs) != n:
        got = f"{len(outs)} outputs" if isinstance(outs, (list, tuple)) else f"a {type(outs).__name__}"
        raise InvalidRewardOutput(f"returned {got} for {n} items")
    for o in outs:
        if not isinstance(o, RewardOutput):
            raise InvalidRewardOutput(f"returned a {type(o).__name__}, not a RewardOutput")
        if not _finite(o.score):
            raise InvalidRewardOutput(f"returned the score {str(o.score)[:80]!r}")
        if not isinstance(o.components, dict) or not all(_finite(v) for v in o.components.values()):
            raise InvalidRewardOutput("returned components that are not finite numbers")
    return list(outs)


class InvalidRewardOutput(ValueError):
    pass


def _finite(value: Any) -> bool:
    # numbers.Real takes numpy scalars (float32 is no float) as well as int and bool
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _failed(reward: str, exc: BaseException) -> RewardOutput:
    message = str(exc)[:MAX_ERROR_CHARS]
    return RewardOutput(
        0.0,
        {},
        f"The '{reward}' reward failed on this answer ({type(exc).__name__}: {message}).",
        [reward_error_name(reward, exc)],
    )


def score_isolated(
    reward: Callable[[Sequence[RewardInput]], Any], batch: Sequence[RewardInput], name: str | None = None
) -> list[RewardOutput]:
    """reward(batch), where one bad item cannot fail the others.

    The whole batch goes in one call (rewards batch their model calls); only when that call
    raises or returns something unusable is each item scored alone, to find the culprits:
    those score 0 with the error named in `errors`, the others get what they get alone.
    KeyboardInterrupt and SystemExit still stop the run.
    """
    name = name or getattr(reward, "name", None) or type(reward).__name__
    batch = list(batch)
    if not batch:
        return []
    try:
        return _check_outputs(reward(batch), len(batch))
    except Exception as exc:  # noqa: BLE001 - any failure of reward code is the item's, not the run's
        if len(batch) == 1:
            outs = [_failed(name, exc)]
            _log_failures(name, [(0, exc)], 1)
            return outs
    outs, failures = [], []
    for i, item in enumerate(batch):
        try:
            outs += _check_outputs(reward([item]), 1)
        except Exception as exc:  # noqa: BLE001
            outs.append(_failed(name, exc))
            failures.append((i, exc))
    _log_failures(name, failures, len(batch))
    return outs


def _log_failures(name: str, failures: list[tuple[int, BaseException]], n: int) -> None:
    import sys

    for i, exc in failures[:_LOGGED_PER_CALL]:
        print(
            f"reward '{name}' failed on item {i} of {n}, which scores 0: {type(exc).__name__}: "
            f"{str(exc)[:MAX_ERROR_CHARS]}",
            file=sys.stderr,
        )
    if len(failures) > _LOGGED_PER_CALL:
        print(f"reward '{name}' failed on {len(failures) - _LOGGED_PER_CALL} more item(s) of {n}", file=sys.stderr)
