"""Iterative self-play policy optimisation (Iterative-SPO, Vision-Zero, docs/reference.md §7.7).

Two phases: "decision" (RLVR on the votes) and "clue" (self-play on the clues); training
starts in the decision phase. After every step the EMAs (decay rho, start 0) of the vote
accuracy and the N/A rate are updated with that step's figures, then:

    decision -> clue      when acc_ema >= acc_to_clue and na_ema <= na_to_clue
    clue -> decision      when 1 - acc_ema >= err_to_decision or na_ema >= na_to_decision

each only after the phase has lasted min_phase_steps (K_min) steps. A switch decided after
step t applies from step t + 1. Only the active phase's samples get gradient (the loss is
m * L_clue + (1 - m) * L_dec with m the phase).

The released code instead alternates every step and trains on both phases' samples:
schedule="alternate_both"; schedule="alternate" alternates but trains only the active phase.
"""

from __future__ import annotations

from typing import Any

from games.settings import SpySettings

DECISION, CLUE = "decision", "clue"


class PhaseScheduler:
    def __init__(self, settings: SpySettings) -> None:
        self.s = settings
        self.phase = DECISION
        self.acc_ema = 0.0
        self.na_ema = 0.0
        self.steps_in_phase = 0
        self.switches = 0

    def trains(self, kind: str) -> bool:
        """Whether samples of this phase ("decision" / "clue") get gradient this step."""
        return self.s.schedule == "alternate_both" or kind == self.phase

    def update(self, step: int, accuracy: float, na_rate: float) -> list[str]:
        """Fold in one finished step's vote accuracy and N/A rate; returns the switch event, if any."""
        rho = self.s.spo_rho
        self.acc_ema = rho * self.acc_ema + (1 - rho) * accuracy
        self.na_ema = rho * self.na_ema + (1 - rho) * na_rate
        self.steps_in_phase += 1
        if self.s.schedule != "iterative":
            self._switch()
            return []  # a switch every step is the schedule, not news
        if self.steps_in_phase < self.s.min_phase_steps:
            return []
        if self.phase == DECISION:
            go = self.acc_ema >= self.s.acc_to_clue and self.na_ema <= self.s.na_to_clue
        else:
            go = 1.0 - self.acc_ema >= self.s.err_to_decision or self.na_ema >= self.s.na_to_decision
        if not go:
            return []
        old = self.phase
        self._switch()
        return [f"phase {old} -> {self.phase} at step {step} (acc_ema {self.acc_ema:.3f}, na_ema {self.na_ema:.3f})"]

    def _switch(self) -> None:
        self.phase = CLUE if self.phase == DECISION else DECISION
        self.steps_in_phase = 0
        self.switches += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "acc_ema": self.acc_ema,
            "na_ema": self.na_ema,
            "steps_in_phase": self.steps_in_phase,
            "switches": self.switches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["phase"] not in (DECISION, CLUE):
            raise ValueError(f"unknown phase {state['phase']!r} in the scheduler state")
        self.phase = state["phase"]
        self.acc_ema = float(state["acc_ema"])
        self.na_ema = float(state["na_ema"])
        self.steps_in_phase = int(state["steps_in_phase"])
        self.switches = int(state.get("switches", 0))
