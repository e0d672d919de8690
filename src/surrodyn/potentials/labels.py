"""Reference labelling through a persistent cache: every label paid for is kept.

Reference calculations (DFT, xTB, or EMT in tests) are the expensive part of active learning.
:class:`LabelCache` stores each result in its own file, named by a hash of the structure, the
moment it is computed and atomically, so a loop killed halfway through a batch loses nothing and
re-asks for nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..data.io import atomic_savez
from ..errors import ConfigError

__all__ = ["LabelCache", "structure_key"]

_VACUUM_A = 15.0


def structure_key(atoms: Atoms) -> str:
    """Hash numbers, positions (to 1e-8 Å), cell and periodicity into a stable key."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=float), 8).tobytes())
    h.update(np.round(np.asarray(atoms.cell.array, dtype=float), 8).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()[:32]


class LabelCache:
    """Energies and forces of structures, computed once by a reference calculator.

    Parameters
    ----------
    directory : path
        Where the labels live (one ``<hash>.npz`` per structure); created if needed.
    calculator : ase Calculator or callable returning one
        The reference. A factory is called once per labelling session, which suits
        calculators that hold state between calls.

    Attributes
    ----------
    n_computed : int
        Labels computed (paid for) by this object; cache hits are not counted.
    """

    def __init__(self, directory: str | Path, calculator: Any) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._calculator = calculator
        self._calc: Any = None
        self.n_computed = 0

    def _calc_instance(self) -> Any:
        if self._calc is None:
            factory = self._calculator
            is_factory = isinstance(factory, type) or (
                isinstance(factory, Callable) and not hasattr(factory, "get_potential_energy")
            )
            self._calc = factory() if is_factory else factory
        return self._calc

    def path(self, atoms: Atoms) -> Path:
        """File holding the label of ``atoms``."""
        return self.directory / f"{structure_key(atoms)}.npz"

    def __contains__(self, atoms: Atoms) -> bool:
        return self.path(atoms).is_file()

    def get(self, atoms: Atoms) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (eV/Å) of ``atoms``, computing and storing them if new."""
        path = self.path(atoms)
        if path.is_file():
            with np.load(path) as z:
                if z["forces"].shape != (len(atoms), 3):
                    raise ConfigError(f"{path} holds forces for {len(z['forces'])} atoms, not {len(atoms)}.")
                return float(z["energy"]), z["forces"].copy()
        work = atoms.copy()
        if not work.pbc.any() and work.cell.rank < 3:
            # some calculators (asap3) need a cell even for an isolated cluster: pad one on the copy
            work.center(vacuum=_VACUUM_A)
        work.calc = self._calc_instance()
        energy = float(work.get_potential_energy())
        forces = np.asarray(work.get_forces(), dtype=float).copy()
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise ConfigError(f"the reference calculator returned non-finite values for {path.stem}.")
        atomic_savez(path, energy=energy, forces=forces)
        self.n_computed += 1
        return energy, forces

    def label(self, structures: Sequence[Atoms]) -> tuple[list[float], list[np.ndarray]]:
        """Labels of several structures, in order."""
        pairs = [self.get(a) for a in structures]
        return [e for e, _ in pairs], [f for _, f in pairs]
