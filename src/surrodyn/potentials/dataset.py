"""Labelled structures turned into fingerprints once, and batches of them for training.

A :class:`FingerprintSet` computes every structure's fingerprints and pair Jacobian a single time
(the n2p2/RuNNer strategy) and keeps them as per-structure tensors; :meth:`FingerprintSet.batch`
concatenates any subset into a :class:`surrodyn.potentials.model.Batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..errors import ConfigError
from .model import Batch
from .symmetry import Fingerprints, SymmetryFunctions

__all__ = ["FingerprintSet", "labels_of"]


def labels_of(atoms: Atoms, index: int | None = None) -> tuple[float, np.ndarray]:
    """Read the reference energy (eV) and forces (eV/Å) attached to ``atoms``.

    Reads a single-point calculator (what ``ase.io.read`` of an extended XYZ gives) or the
    ``info["energy"]`` / ``arrays["forces"]`` fields.

    Raises
    ------
    ConfigError
        If the structure carries no energy or no forces.
    """
    where = f"structure {index}" if index is not None else "the structure"
    energy = forces = None
    if atoms.calc is not None:
        results = getattr(atoms.calc, "results", {})
        energy, forces = results.get("energy"), results.get("forces")
    if energy is None:
        energy = atoms.info.get("energy")
    if forces is None:
        forces = atoms.arrays.get("forces")
    if energy is None or forces is None:
        raise ConfigError(
            f"{where} has no reference {'energy' if energy is None else 'forces'}; label it with an ASE "
            "calculator first (surrodyn.potentials.LabelCache) or read an extended XYZ that stores energy and forces."
        )
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3) or not np.isfinite(forces).all() or not np.isfinite(energy):
        raise ConfigError(f"{where}: energy/forces are not finite or the forces are not of shape ({len(atoms)}, 3).")
    return float(energy), forces


@dataclass
class _Item:
    G: torch.Tensor
    species: torch.Tensor
    pair_i: torch.Tensor
    pair_j: torch.Tensor
    dG: torch.Tensor
    R: torch.Tensor


class FingerprintSet:
    """Fingerprints, Jacobians and (optionally) labels of a list of structures.

    Parameters
    ----------
    structures : sequence of ase.Atoms
    descriptor : SymmetryFunctions
    labelled : bool, default True
        Read the reference energies and forces (:func:`labels_of`); with ``False`` only the
        fingerprints are kept (a candidate pool).
    dtype : torch.dtype, default torch.float32
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        descriptor: SymmetryFunctions,
        *,
        labelled: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if len(structures) == 0:
            raise ConfigError("no structures given: a fingerprint set needs at least one.")
        self.descriptor = descriptor
        self.dtype = dtype
        self.n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
        self.items = [self._item(descriptor.compute(a), dtype) for a in structures]
        self.energy = self.forces = None
        if labelled:
            labels = [labels_of(a, k) for k, a in enumerate(structures)]
            self.energy = np.array([e for e, _ in labels])
            self.forces = [torch.as_tensor(f, dtype=dtype) for _, f in labels]
        self.composition = np.stack(
            [np.bincount(it.species.numpy(), minlength=len(descriptor.elements)) for it in self.items]
        )

    @staticmethod
    def _item(fp: Fingerprints, dtype: torch.dtype) -> _Item:
        return _Item(
            torch.as_tensor(fp.G, dtype=dtype),
            torch.as_tensor(fp.species),
            torch.as_tensor(fp.pair_i),
            torch.as_tensor(fp.pair_j),
            torch.as_tensor(fp.dG, dtype=dtype),
            torch.as_tensor(fp.R, dtype=dtype),
        )

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int]) -> FingerprintSet:
        """Structures ``indices`` of this set, sharing its fingerprints, without labels."""
        idx = [int(k) for k in indices]
        out = object.__new__(FingerprintSet)
        out.descriptor, out.dtype = self.descriptor, self.dtype
        out.n_atoms = self.n_atoms[idx]
        out.items = [self.items[k] for k in idx]
        out.composition = self.composition[idx]
        out.energy = out.forces = None
        return out

    def labelled_subset(
        self, indices: Sequence[int], energies: Sequence[float], forces: Sequence[np.ndarray]
    ) -> FingerprintSet:
        """Make a labelled set of structures ``indices`` of this one, sharing its fingerprints.

        Parameters
        ----------
        indices : sequence of int
        energies : sequence of float
            Reference energies (eV) of those structures, in the same order.
        forces : sequence of ndarray, shape (n_atoms_k, 3)
            Reference forces (eV/Å).
        """
        out = self.subset(indices)
        if len(energies) != len(out) or len(forces) != len(out):
            raise ConfigError(f"{len(out)} structures but {len(energies)} energies and {len(forces)} force arrays.")
        out.energy = np.asarray(energies, dtype=float)
        out.forces = [torch.as_tensor(np.asarray(f), dtype=self.dtype) for f in forces]
        for k, n, f in zip(indices, out.n_atoms, out.forces, strict=True):
            if f.shape != (int(n), 3):
                raise ConfigError(f"forces of structure {k} have shape {tuple(f.shape)}, expected ({n}, 3).")
        return out

    def atomic_fingerprints(self, indices: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom fingerprints and species of the chosen structures, concatenated."""
        idx = range(len(self)) if indices is None else indices
        return torch.cat([self.items[k].G for k in idx]), torch.cat([self.items[k].species for k in idx])

    def batch(self, indices: Sequence[int]) -> tuple[Batch, torch.Tensor | None, torch.Tensor | None]:
        """Concatenate structures ``indices`` into one batch.

        Returns
        -------
        batch : Batch
        energy : Tensor, shape (n,) or None
            Reference energies (eV).
        forces : Tensor, shape (n_atoms, 3) or None
            Reference forces (eV/Å).
        """
        items = [self.items[k] for k in indices]
        shifts = np.concatenate([[0], np.cumsum([it.G.shape[0] for it in items])[:-1]])
        structure = torch.cat([torch.full((it.G.shape[0],), s, dtype=torch.long) for s, it in enumerate(items)])
        batch = Batch(
            G=torch.cat([it.G for it in items]),
            species=torch.cat([it.species for it in items]),
            structure=structure,
            n_structures=len(items),
            pair_i=torch.cat([it.pair_i + int(s) for s, it in zip(shifts, items, strict=True)]),
            pair_j=torch.cat([it.pair_j + int(s) for s, it in zip(shifts, items, strict=True)]),
            dG=torch.cat([it.dG for it in items]),
            R=torch.cat([it.R for it in items]),
        )
        if self.energy is None or self.forces is None:
            return batch, None, None
        energy = torch.as_tensor(self.energy[list(indices)], dtype=self.dtype)
        return batch, energy, torch.cat([self.forces[k] for k in indices])
