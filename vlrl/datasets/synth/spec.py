"""The chart spec: one chart as plain, JSON-serialisable data.

The spec, not the code, is the source of truth because the spy game and the contrastive
rewards need to know *exactly* what differs between two charts; recovering that from a
code diff (or a pixel diff) is unreliable.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass
class ChartSpec:
    """One chart as plain data; see the module docstring for why."""

    family: str
    params: dict

    def to_code(self) -> str:
        """A complete, deterministic matplotlib script ending in ``plt.savefig("chart.png")``."""
        # Imported here, not at the top, so that perturbing specs (the spy game) does not
        # load the emitter; after the first call this is a dictionary lookup.
        from vlrl.datasets.synth.emit import _render

        return _render(self.family, self.params)

    def metadata(self) -> dict:
        """JSON-serialisable summary: labels, series, colours, sizes and subplot grid."""
        from vlrl.datasets.synth.metadata import _metadata  # lazily, as in to_code

        return _metadata(self.family, self.params)

    def to_dict(self) -> dict:
        return {"family": self.family, "params": copy.deepcopy(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> "ChartSpec":
        return cls(d["family"], copy.deepcopy(d["params"]))
