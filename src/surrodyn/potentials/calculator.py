"""ASE calculator over a trained :class:`surrodyn.potentials.HDNNP`."""

from __future__ import annotations

from typing import Any

from ase.calculators.calculator import Calculator, all_changes

from .potential import HDNNP

__all__ = ["HDNNPCalculator"]


class HDNNPCalculator(Calculator):
    """Energy, forces and (periodic cells) stress from one pass through the networks.

    Parameters
    ----------
    potential : HDNNP or path
        A trained potential, or the directory it was saved to.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Every call fills all implemented properties at once, and the calculator keeps no cache beyond
    ASE's own ``results`` (which ASE resets whenever the atoms change).
    """

    implemented_properties = ("energy", "free_energy", "energies", "forces", "stress")

    def __init__(self, potential: HDNNP | Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = potential if isinstance(potential, HDNNP) else HDNNP.load(potential)

    def calculate(self, atoms: Any = None, properties: Any = ("energy",), system_changes: Any = all_changes) -> None:
        """Compute energy, per-atom energies, forces and, for a 3-D periodic cell, the stress."""
        super().calculate(atoms, properties, system_changes)
        periodic = bool(self.atoms.pbc.all())
        if "stress" in properties and not periodic:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a structure periodic in all three directions.")
        out = self.potential.predict(self.atoms, forces=True, stress=periodic)
        self.results = {
            "energy": out["energy"],
            "free_energy": out["energy"],
            "energies": out["energies"],
            "forces": out["forces"],
        }
        if periodic:
            self.results["stress"] = out["stress"]
