"""Trajectory readers: MDAnalysis (default), mdtraj and ASE, behind one chunked interface.

Every reader yields blocks of positions in **nm** with their orthorhombic box lengths (or
``None``), and exposes an MDAnalysis ``Universe`` of the topology so that feature specs resolve
their atom selections the same way whichever library reads the coordinates:

- ``"mdanalysis"`` — any format MDAnalysis reads (DCD, XTC, TRR, NetCDF, PDB, GRO, ...);
- ``"mdtraj"`` — formats only mdtraj reads (its HDF5 ``.h5`` and ``.lh5``, which need PyTables,
  Desmond ``.dtr``, ``.binpos``), with a topology MDAnalysis can read for the selections;
- ``"ase"`` — ASE trajectories (``.traj``, extended XYZ, ...); the topology is built from the
  first frame's chemical symbols and masses (atom names are the element symbols).

``reader="auto"`` picks ASE for ``.traj``/``.xyz``/``.extxyz``, mdtraj for ``.h5``/``.lh5``/``.binpos``/
``.dtr`` and MDAnalysis otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, param_error

__all__ = ["READERS", "TrajectoryReader"]

READERS = ("auto", "mdanalysis", "mdtraj", "ase")
_ASE_SUFFIXES = {".traj", ".xyz", ".extxyz"}
_MDTRAJ_SUFFIXES = {".h5", ".lh5", ".binpos", ".dtr"}
_ANGSTROM_TO_NM = 0.1


def _orthorhombic(lengths: np.ndarray, angles: np.ndarray) -> np.ndarray | None:
    if not np.all(np.asarray(lengths) > 0):
        return None
    if not np.allclose(angles, 90.0):
        raise ConfigError("only orthorhombic boxes are supported for minimum-image features.")
    return np.asarray(lengths, dtype=float)


class TrajectoryReader:
    """Chunked positions (nm) and boxes of a trajectory, with an MDAnalysis topology for selections.

    Parameters
    ----------
    topology : str or Path or None
        Topology file (PDB, PSF, PRMTOP, GRO, ...); ``None`` for ASE trajectories (built from the atoms).
    trajectory : str, Path, list of them, or None
        Trajectory file(s); ``None`` reads the topology's own frames (MDAnalysis).
    chunk : int
        Frames per block.
    stride : int
        Take every ``stride``-th frame.
    reader : str
        One of :data:`READERS`.
    """

    def __init__(
        self,
        topology: str | Path | None,
        trajectory: str | Path | Sequence[str | Path] | None,
        chunk: int = 1000,
        stride: int = 1,
        reader: str = "auto",
    ) -> None:
        if not (isinstance(chunk, int) and isinstance(stride, int) and chunk >= 1 and stride >= 1):
            raise param_error("chunk/stride", (chunk, stride), "positive integers")
        if reader not in READERS:
            raise param_error("reader", reader, f"one of {READERS}")
        trajs = [] if trajectory is None else [trajectory] if isinstance(trajectory, str | Path) else list(trajectory)
        self.trajectories = [Path(t) for t in trajs]
        for path in ([] if topology is None else [Path(topology)]) + self.trajectories:
            if not path.exists():  # a Desmond .dtr trajectory is a directory
                raise ConfigError(f"{path}: no such file.")
        if reader == "auto":
            suffixes = {p.suffix.lower() for p in self.trajectories}
            reader = "ase" if suffixes & _ASE_SUFFIXES else "mdtraj" if suffixes & _MDTRAJ_SUFFIXES else "mdanalysis"
        if topology is None and reader != "ase":
            raise ConfigError(f"the {reader} reader needs a topology file.")
        if reader == "ase" and not self.trajectories:
            raise ConfigError("the ASE reader needs a trajectory file.")
        self.reader, self.chunk, self.stride = reader, chunk, stride
        self.topology = None if topology is None else Path(topology)
        self.universe = self._universe()

    def _universe(self) -> Any:
        import MDAnalysis as mda

        if self.reader == "ase":
            import ase.io

            try:
                atoms = ase.io.read(str(self.trajectories[0]), index=0)
            except Exception as err:  # any ASE read failure
                raise ConfigError(f"ASE cannot read {self.trajectories[0]}: {err}") from None
            n = len(atoms)
            u = mda.Universe.empty(n, trajectory=False, atom_resindex=np.zeros(n, dtype=int))
            symbols = atoms.get_chemical_symbols()
            u.add_TopologyAttr("names", symbols)
            u.add_TopologyAttr("elements", symbols)
            u.add_TopologyAttr("masses", atoms.get_masses())
            u.add_TopologyAttr("resnames", ["MOL"])
            u.add_TopologyAttr("resids", [1])
            return u
        files = [str(self.topology)] + ([str(t) for t in self.trajectories] if self.reader == "mdanalysis" else [])
        try:
            return mda.Universe(*files)
        except Exception as err:  # unreadable or mismatched files
            raise ConfigError(f"MDAnalysis cannot read {files}: {err}") from None

    @property
    def n_atoms(self) -> int:
        """Atoms per frame."""
        return len(self.universe.atoms)

    def __len__(self) -> int:
        if self.reader == "mdanalysis":
            return len(range(0, len(self.universe.trajectory), self.stride))
        return sum(1 for _ in self._frames())

    def _frames(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        if self.reader == "mdanalysis":
            for ts in self.universe.trajectory[:: self.stride]:
                dims = ts.dimensions
                box = None if dims is None else _orthorhombic(dims[:3] * _ANGSTROM_TO_NM, dims[3:])
                yield ts.positions.astype(np.float64) * _ANGSTROM_TO_NM, box
        elif self.reader == "mdtraj":
            import mdtraj

            for path in self.trajectories:
                try:
                    # the stride is applied here: mdtraj's iterload mis-strides some formats (Desmond)
                    start = 0
                    for t in mdtraj.iterload(str(path), top=str(self.topology), chunk=self.chunk):
                        for k in range(-start % self.stride, t.n_frames, self.stride):
                            box = None if t.unitcell_lengths is None else _orthorhombic(
                                t.unitcell_lengths[k], t.unitcell_angles[k])  # fmt: skip
                            yield t.xyz[k].astype(np.float64), box
                        start += t.n_frames
                except ConfigError:
                    raise
                except Exception as err:  # any mdtraj read failure
                    raise ConfigError(f"mdtraj cannot read {path} with {self.topology}: {err}") from None
        else:
            import ase.io

            for path in self.trajectories:
                for atoms in ase.io.iread(str(path), index=f"::{self.stride}"):
                    if len(atoms) != self.n_atoms:
                        raise ConfigError(f"{path}: frames of {len(atoms)} atoms, the first had {self.n_atoms}.")
                    box = None
                    if atoms.pbc.any():
                        box = _orthorhombic(atoms.cell.lengths() * _ANGSTROM_TO_NM, atoms.cell.angles())
                    yield atoms.get_positions() * _ANGSTROM_TO_NM, box

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(positions (n, n_atoms, 3) in nm, boxes (n, 3) in nm or None)`` blocks."""
        pos: list[np.ndarray] = []
        boxes: list[np.ndarray | None] = []
        for x, box in self._frames():
            pos.append(x)
            boxes.append(box)
            if len(pos) == self.chunk:
                yield np.stack(pos), None if boxes[0] is None else np.stack(boxes)
                pos, boxes = [], []
        if pos:
            yield np.stack(pos), None if boxes[0] is None else np.stack(boxes)
