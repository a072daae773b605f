"""The reward API: inputs, outputs, a registry by name and a weighted composite.

A reward scores a batch. Each item carries the completion text, the reference (its code
and/or image) and render results; each output is a score, a dict of named components
(all logged by the trainer) and a short critique in plain words. Rewards are pure
functions of their inputs: rendering happens before, in `renderers`.
"""

from __future__ import annotations

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


def build_reward(name: str, **kwargs: Any) -> Reward:
    import rewards  # noqa: F401 - importing the package registers every built-in reward

    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        raise KeyError(f"unknown reward '{name}'" + (f"; did you mean {' or '.join(close)}?" if close
                                                      else f"; known: {', '.join(sorted(REGISTRY))}"))
    return REGISTRY[name](**kwargs)


def load_plugins(modules: Sequence[str]) -> None:
    """Import user modules that register rewards: a module name, or a path to a .py file."""
    import importlib
    import importlib.util
    from pathlib import Path

    import sys

    for module in modules:
        if module.endswith(".py"):
            path = Path(module)
            if not path.exists():
                raise FileNotFoundError(f"reward plugin {module} does not exist")
            name = f"vlrl_reward_plugin_{path.resolve().stem}"
            if name in sys.modules:  # loaded once per process: its rewards are registered already
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        else:
            importlib.import_module(module)


class CompositeReward:
    """score = sum_i w_i * score_i over the named rewards (MSRL: w_t R_text + w_v R_vis + w_e R_exec).

    Components of reward `r` are kept as `r` (its score) and `r/<component>`; rewards with
    weight 0 are not run at all (stage 1 of the curriculum leaves out the visual reward).
    """

    name = "composite"

    def __init__(self, weights: dict[str, float], options: dict[str, dict[str, Any]] | None = None) -> None:
        options = options or {}
        unknown_opts = set(options) - set(weights)
        if unknown_opts:
            raise KeyError(f"options given for rewards that are not weighted: {', '.join(sorted(unknown_opts))}")
        self.weights = {n: float(w) for n, w in weights.items() if float(w) != 0.0}
        self.rewards = {n: build_reward(n, **options.get(n, {})) for n in self.weights}

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        per_reward = {n: r(batch) for n, r in self.rewards.items()}
        outputs = []
        for i in range(len(batch)):
            total, components, critiques = 0.0, {}, []
            for n, outs in per_reward.items():
                out = outs[i]
                total += self.weights[n] * out.score
                components[n] = out.score
                components.update({f"{n}/{k}": v for k, v in out.components.items()})
                if out.critique:
                    critiques.append(out.critique)
            outputs.append(RewardOutput(total, components, " ".join(critiques)))
        return outputs
