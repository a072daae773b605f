"""Settings of the Who-is-the-Spy game and its training schedule (Vision-Zero, docs/reference.md §7.1 and §7.8).

Defaults follow the paper (arXiv 2509.25541); where the released code differs, some of its
choices are one switch away and the help text says so (docs/reference.md 7.8 lists what of
the release is not reproduced). Plain field types only: the
training config embeds this dataclass as its `spy` section and `vlrl selfplay` takes the
same keys on its command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vlrl.options import OptionError, check_options, option
from vlrl.tasks.registry import TaskSpec

MAX_PLAYERS = 9  # votes are read as one digit 1-9


@dataclass(kw_only=True)
class SpySettings:
    # the game
    civilians: int = option(4, help="civilians per game, plus one spy (paper 4; released script 3)")
    rounds: int = option(2, minimum=1, help="clue rounds; players speak in seat order each round (paper 2)")
    decision: Literal["civilians_vote", "observer"] = option(
        "civilians_vote",
        help="who votes: civilians_vote = each civilian votes privately, the spy does not (paper); "
        "observer = a role-less observer shown the original image and all clues (released code)",
    )
    decision_samples: int = option(
        8, minimum=1, help="G: votes sampled per decision prompt, the group of the decision reward (paper 8)"
    )
    answer_box: Literal["last", "first"] = option(
        "last",
        help="which \\boxed{} of a completion is its answer: last (the final answer after reasoning) or first (released code)",
    )
    show_own_reasoning: bool = option(
        True, help="a player's prompts show its own earlier reasoning (never anyone else's)"
    )
    clue_max_new_tokens: int = option(512, minimum=1, help="length limit of a clue turn (reasoning + boxed clue)")
    vote_max_new_tokens: int = option(512, minimum=1, help="length limit of a decision turn (reasoning + boxed vote)")
    games_per_step: int = option(8, minimum=1, help="games per optimizer step across all ranks (training)")

    # clue rewards (zero-sum) and role-advantage estimation
    beta: float = option(0.1, help="clue reward weight of the spy-vs-civilians vote gap (paper 0.1)")
    lam: float = option(
        0.1, help="lambda: clue penalty of a civilian drawing more votes than the civilians' mean (paper 0.1)"
    )
    rae_alpha: float = option(0.95, help="EMA decay of the per-role reward baselines (paper 0.95; released code 0.9)")

    # decision rewards
    reward_correct: float = option(1.0, help="decision reward of a vote for the spy")
    reward_abstain: float = option(-0.5, help="decision reward of an N/A vote")
    reward_wrong: float = option(-1.0, help="decision reward of a wrong or invalid vote")
    decision_eps: float = option(
        1e-4, help="eps of the group normalisation (r - mean) / (std + eps) of one decision prompt's votes"
    )
    format_shaping: bool = option(
        False, help="add +-format_weight for a well-formed / malformed answer (off in the paper)"
    )
    format_weight: float = option(0.1, help="size of the format shaping term when format_shaping=true")

    # Iterative-SPO
    schedule: Literal["iterative", "alternate", "alternate_both"] = option(
        "iterative",
        help="iterative = Iterative-SPO, switch phases on the accuracy / N/A EMAs, train only the active "
        "phase (paper); alternate = switch every step, train only the active phase; alternate_both = "
        "switch every step and train both phases' samples (the released code's schedule only: see "
        "docs/reference.md 7.8 for what of the release is not reproduced)",
    )
    spo_rho: float = option(0.95, help="EMA decay of vote accuracy and N/A rate (paper 0.95)")
    acc_to_clue: float = option(0.9, help="decision -> clue when acc_ema >= this ...")
    na_to_clue: float = option(0.1, help="... and na_ema <= this")
    err_to_decision: float = option(0.4, help="clue -> decision when 1 - acc_ema >= this ...")
    na_to_decision: float = option(0.5, help="... or na_ema >= this")
    min_phase_steps: int = option(5, minimum=0, help="K_min: steps a phase lasts at least before switching")

    def __post_init__(self) -> None:
        check_options(self)  # settings built directly (the demo, tests) are checked at once

    def validate(self) -> None:
        """Rules across fields and ranges `minimum` cannot say (vlrl.options.check_options)."""
        if self.civilians < 2:
            raise OptionError(f"civilians={self.civilians}: the game needs at least 2 civilians")
        if self.players > MAX_PLAYERS:
            raise OptionError(
                f"civilians={self.civilians}: at most {MAX_PLAYERS - 1} civilians (votes are one digit 1-{MAX_PLAYERS})"
            )
        for name in ("rae_alpha", "spo_rho"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise OptionError(f"{name}={getattr(self, name)}: an EMA decay must lie in [0, 1)")
        if self.decision_eps <= 0:
            raise OptionError(f"decision_eps={self.decision_eps}: must be positive")

    @property
    def players(self) -> int:
        return self.civilians + 1


# The spy game as a training task (vlrl.tasks.registry): `task=spy`, its options under `spy.*`.
# Declared here, where its settings live, so finding the task imports no game code.
TASK = TaskSpec(
    name="spy",
    build="games.spy_task:SpyTask",
    sections={"spy": SpySettings},
    presets="games:presets",
    help="Who-is-the-Spy visual self-play with verifiable rewards (Vision-Zero, Iterative-SPO)",
)
