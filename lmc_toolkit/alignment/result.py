"""The record of one alignment: the permutation found and how it was found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lmc_toolkit.alignment.permute import Permutation
from lmc_toolkit.alignment.spec import PermutationSpec


@dataclass(frozen=True, eq=False)
class Alignment:
    """The permutation taking `b` onto `a` (`permute(b, result.permutation)` ≈ a), with the
    method (`"weights"` or `"activations"`), its objective after each sweep (Σ⟨W_a, π(W_b)⟩
    for weight matching; the mean matched correlation per group for activation matching), the
    sweeps run, whether the last changed nothing, the seed of the group order and the time."""

    method: str
    permutation: Permutation
    objective: tuple[float, ...]
    sweeps: int
    converged: bool
    seed: int | None
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "permutation": self.permutation.to_dict(),
            "objective": list(self.objective),
            "sweeps": self.sweeps,
            "converged": self.converged,
            "seed": self.seed,
            "seconds": self.seconds,
            "meta": dict(self.meta),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any], spec: PermutationSpec) -> Alignment:
        """The alignment `to_dict` wrote; `spec` gives the permutation's groups."""
        return Alignment(
            d["method"], Permutation.from_dict(d["permutation"], spec), tuple(d["objective"]),
            int(d["sweeps"]), bool(d["converged"]), d["seed"], float(d["seconds"]),
            dict(d.get("meta", {})),
        )  # fmt: skip
