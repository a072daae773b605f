"""Building rewards by name and combining them: the registry's users.

Kept apart from rewards.base so that the reward modules import only the base (their
registration), and this module imports them all: no module imports its own importer.
"""

from __future__ import annotations

from typing import Any, Sequence

# every built-in reward registers itself on import
from rewards import chart_rewards, judge, visual  # noqa: F401
from rewards.base import REGISTRY, Reward, RewardInput, RewardOutput, score_isolated


def build_reward(name: str, **kwargs: Any) -> Reward:
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        raise KeyError(
            f"unknown reward '{name}'"
            + (f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(sorted(REGISTRY))}")
        )
    return REGISTRY[name](**kwargs)


def load_plugins(modules: Sequence[str]) -> None:
    """Import user modules that register rewards: a module name, or a path to a .py file."""
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

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
        per_reward = {n: score_isolated(r, batch, n) for n, r in self.rewards.items()}
        outputs = []
        for i in range(len(batch)):
            total, components, critiques, errors = 0.0, {}, [], []
            for n, outs in per_reward.items():
                out = outs[i]
                total += self.weights[n] * out.score
                components[n] = out.score
                components.update({f"{n}/{k}": v for k, v in out.components.items()})
                if out.critique:
                    critiques.append(out.critique)
                errors += out.errors
            outputs.append(RewardOutput(total, components, " ".join(critiques), errors))
        return outputs

    def unscorable(self, output: RewardOutput) -> bool:
        """Every weighted reward failed on this item: its total measures nothing (a trainer
        leaves it out of the baseline, as TRL does when every reward function returns None)."""
        failed = {e.split("/")[1] for e in output.errors if e.count("/") >= 2}
        return bool(self.weights) and failed >= set(self.weights)
