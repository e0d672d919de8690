"""The trained potential as an artefact: descriptor + networks, saved and loaded as a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from .. import __version__
from ..data.io import atomic_torch_save, atomic_write_bytes
from ..errors import ConfigError
from .dataset import FingerprintSet
from .model import AtomicNetworks, Batch, predict_batch
from .symmetry import SymmetryFunctions

__all__ = ["HDNNP"]

_FORMAT = "surrodyn-hdnnp/1"


class HDNNP:
    """A Behler–Parrinello potential: symmetry functions and one network per element.

    Parameters
    ----------
    descriptor : SymmetryFunctions
    network : AtomicNetworks
    metadata : dict, optional
        Free-form, JSON-serialisable (training settings, metrics, data provenance).
    """

    def __init__(
        self, descriptor: SymmetryFunctions, network: AtomicNetworks, metadata: dict[str, Any] | None = None
    ) -> None:
        if network.n_features != descriptor.n_features or network.n_elements != len(descriptor.elements):
            raise ConfigError(
                f"the network expects {network.n_elements} elements x {network.n_features} features, the "
                f"descriptor gives {len(descriptor.elements)} x {descriptor.n_features}."
            )
        self.descriptor = descriptor
        self.network = network.eval()
        self.metadata = dict(metadata or {})
        self._inference = None

    @property
    def elements(self) -> tuple[str, ...]:
        """Elements the potential knows."""
        return self.descriptor.elements

    def _double(self) -> AtomicNetworks:
        # float64 copy for inference: MD energy conservation wants forces that are gradients to
        # round-off. The copy is keyed on the tensors' in-place version counters, so training the
        # network further (or loading new weights) is never answered from a stale copy.
        tensors = [*self.network.parameters(), *self.network.buffers()]
        key = (id(self.network), tuple(id(t) for t in tensors), tuple(t._version for t in tensors))
        if self._inference is None or self._inference[0] != key:
            net = AtomicNetworks(
                self.network.n_elements, self.network.n_features, self.network.hidden, self.network.activation
            )
            net.load_state_dict(self.network.state_dict())
            self._inference = (key, net.double().eval())
        return self._inference[1]

    def predict(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> dict[str, Any]:
        """Energy (eV), forces (eV/Å) and, for a periodic cell, stress (eV/Å³, Voigt order).

        Parameters
        ----------
        atoms : ase.Atoms
        forces : bool, default True
        stress : bool, default False
            Needs a 3-D periodic cell.

        Returns
        -------
        dict
            ``energy``, ``energies`` (per atom), and ``forces`` / ``stress`` when asked.
        """
        if stress and not atoms.pbc.all():
            raise ConfigError("stress needs a structure periodic in all three directions (atoms.pbc all True).")
        fp = self.descriptor.compute(atoms, derivatives=forces or stress)
        n = len(atoms)
        batch = Batch(
            G=torch.as_tensor(fp.G),
            species=torch.as_tensor(fp.species),
            structure=torch.zeros(n, dtype=torch.long),
            n_structures=1,
            pair_i=torch.as_tensor(fp.pair_i),
            pair_j=torch.as_tensor(fp.pair_j),
            dG=torch.as_tensor(fp.dG) if fp.dG is not None else torch.zeros(0),
            R=torch.as_tensor(fp.R),
        )
        pred = predict_batch(self._double(), batch, forces=forces, virial=stress)
        out: dict[str, Any] = {
            "energy": float(pred.energy[0].detach()),
            "energies": pred.atomic_energy.detach().numpy().copy(),
        }
        if forces:
            out["forces"] = pred.forces.detach().numpy().copy()
        if stress:
            W = pred.virial[0].detach().numpy()
            s = 0.5 * (W + W.T) / atoms.get_volume()
            out["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return out

    def predict_set(self, data: FingerprintSet, batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies (eV) and forces (eV/Å) of every structure of a fingerprint set."""
        net = self.network if data.dtype == torch.float32 else self._double()
        energies, forces = [], []
        for start in range(0, len(data), batch_size):
            idx = list(range(start, min(start + batch_size, len(data))))
            batch, _, _ = data.batch(idx)
            pred = predict_batch(net, batch)
            energies.append(pred.energy.detach().numpy())
            F = pred.forces.detach().numpy()
            bounds = np.cumsum(data.n_atoms[idx])[:-1]
            forces += [f.astype(float) for f in np.split(F, bounds)]
        return np.concatenate(energies).astype(float), forces

    def calculator(self) -> Any:
        """Return an ASE calculator over this potential."""
        from .calculator import HDNNPCalculator

        return HDNNPCalculator(self)

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write ``model.json`` and ``weights.pt`` into directory ``path`` (created if needed)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        net = self.network
        spec = {
            "format": _FORMAT,
            "surrodyn_version": __version__,
            "descriptor": self.descriptor.to_dict(),
            "network": {"hidden": list(net.hidden), "activation": net.activation},
            "metadata": self.metadata,
        }
        atomic_torch_save(out / "weights.pt", net.state_dict())
        atomic_write_bytes(out / "model.json", json.dumps(spec, indent=2, default=_json_default).encode())
        return out

    @classmethod
    def load(cls, path: str | Path) -> HDNNP:
        """Read a potential written by :meth:`save`.

        Raises
        ------
        ConfigError
            If ``path`` is not a saved potential.
        """
        src = Path(path)
        if not (src / "model.json").is_file() or not (src / "weights.pt").is_file():
            raise ConfigError(f"{src} is not a saved potential (expected model.json and weights.pt in it).")
        spec = json.loads((src / "model.json").read_text())
        if spec.get("format") != _FORMAT:
            raise ConfigError(f"{src}/model.json has format {spec.get('format')!r}, expected {_FORMAT!r}.")
        descriptor = SymmetryFunctions.from_dict(spec["descriptor"])
        net = AtomicNetworks(
            len(descriptor.elements),
            descriptor.n_features,
            tuple(spec["network"]["hidden"]),
            spec["network"]["activation"],
        )
        net.load_state_dict(torch.load(src / "weights.pt", weights_only=True))
        return cls(descriptor, net, spec.get("metadata"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")
