"""Alanine dipeptide with OpenMM: the shipped topology, its systems and a torsion-metadynamics generator.

The data of the CV benchmark (``docs/cv.md``): ACE-ALA-NME in vacuum (amber14) or in OBC implicit
solvent (amber99sb), 2 fs steps with HBonds constraints, Langevin dynamics at 300 K, and optionally
well-tempered metadynamics on the backbone torsions φ and/or ψ (OpenMM's own
:class:`openmm.app.Metadynamics`). A run writes a DCD trajectory, the topology, and a NetCDF
``colvar.nc`` with φ, ψ and the bias energy of every frame, for reweighting.

OpenMM is an optional dependency (``pip install surrodyn[md]``): it is imported inside the
functions, so this module imports without it.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, OutputError, param_error

__all__ = [
    "PHI_ATOMS",
    "PSI_ATOMS",
    "SOLVENTS",
    "alanine_dipeptide_pdb",
    "build_system",
    "count_transitions",
    "run_torsion_metadynamics",
]

PHI_ATOMS: tuple[int, int, int, int] = (4, 6, 8, 14)
"""0-based atoms of φ = C(ACE)-N-CA-C(ALA) in :func:`alanine_dipeptide_pdb`."""
PSI_ATOMS: tuple[int, int, int, int] = (6, 8, 14, 16)
"""0-based atoms of ψ = N-CA-C(ALA)-N(NME) in :func:`alanine_dipeptide_pdb`."""

SOLVENTS: dict[str, tuple[str, ...]] = {"vacuum": ("amber14-all.xml",), "obc": ("amber99sb.xml", "amber99_obc.xml")}
"""OpenMM force-field files of each solvent model."""
_TORSIONS = {"phi": PHI_ATOMS, "psi": PSI_ATOMS}

# the benchmark protocol (../shared/reference/cv-benchmark.md)
TIMESTEP_FS = 2.0
TEMPERATURE_K = 300.0
FRICTION_PER_PS = 1.0
METAD_HEIGHT_KJMOL = 1.0
METAD_BIAS_FACTOR = 8.0
METAD_PACE_PS = 0.5
METAD_WIDTH_FRACTION = 0.05  # of the 2π range of a torsion


def _openmm() -> Any:
    """Import OpenMM, or raise an error that says how to install it."""
    try:
        import openmm
        import openmm.app
        import openmm.unit
    except ImportError:
        raise ConfigError("the MD generator needs OpenMM: pip install 'surrodyn[md]'.") from None
    return openmm


def alanine_dipeptide_pdb() -> Path:
    """Return the path of the shipped alanine dipeptide PDB (ACE-ALA-NME, 22 atoms, in the φ < 0 basin).

    Returns
    -------
    Path
        ``surrodyn/md/data/alanine_dipeptide.pdb``: the amber14 vacuum minimum near C7eq
        (φ ≈ -75°, ψ ≈ +54°), built by ``benchmarks/cv_build_ala2_pdb.py``.
    """
    path = Path(str(resources.files("surrodyn.md").joinpath("data", "alanine_dipeptide.pdb")))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall surrodyn (it ships with the package data).")
    return path


def build_system(solvent: str = "vacuum") -> tuple[Any, Any, np.ndarray]:
    """Build the OpenMM topology, system and positions of the shipped alanine dipeptide.

    Parameters
    ----------
    solvent : {"vacuum", "obc"}
        ``"vacuum"``: amber14-all; ``"obc"``: amber99sb with the OBC generalised-Born implicit
        solvent. Both without cutoff and with bonds to hydrogen constrained.

    Returns
    -------
    topology : openmm.app.Topology
    system : openmm.System
    positions : numpy.ndarray
        (22, 3) in nm.

    Raises
    ------
    ConfigError
        For an unknown ``solvent``, or if OpenMM is not installed.
    """
    if solvent not in SOLVENTS:
        raise param_error("solvent", solvent, f"one of {', '.join(map(repr, SOLVENTS))}")
    mm = _openmm()
    pdb = mm.app.PDBFile(str(alanine_dipeptide_pdb()))
    ff = mm.app.ForceField(*SOLVENTS[solvent])
    system = ff.createSystem(pdb.topology, nonbondedMethod=mm.app.NoCutoff, constraints=mm.app.HBonds)
    return pdb.topology, system, pdb.getPositions(asNumpy=True).value_in_unit(mm.unit.nanometer)


def _torsions(x: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Dihedral angles (IUPAC sign, radians) of atom quadruples ``quads`` (k, 4) in positions ``x`` (n, 3)."""
    p = x[quads]
    b0, b1, b2 = p[:, 0] - p[:, 1], p[:, 2] - p[:, 1], p[:, 3] - p[:, 2]
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1, -1, keepdims=True) * b1
    w = b2 - np.sum(b2 * b1, -1, keepdims=True) * b1
    return np.arctan2(np.sum(np.cross(b1, v) * w, -1), np.sum(v * w, -1))


class _FrameRecorder:
    """OpenMM reporter: DCD frames to an open file, and φ, ψ and the bias energy of each frame.

    The state it sees is taken inside ``Simulation.step``, so with metadynamics the recorded bias
    is V(s(t), t) *before* the Gaussian deposited at step t, if any (PLUMED's convention).
    """

    def __init__(self, mm: Any, fh: Any, interval: int, bias_group: int | None) -> None:
        self._mm, self._fh, self._interval, self._bias_group = mm, fh, interval, bias_group
        self._dcd: Any = None
        self._quads = np.array([PHI_ATOMS, PSI_ATOMS])
        self.step: list[int] = []
        self.angles: list[np.ndarray] = []
        self.bias: list[float] = []

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # OpenMM's reporter API
        """Give the steps to the next frame and what the frame needs."""
        steps = self._interval - simulation.currentStep % self._interval
        return {"steps": steps, "periodic": False, "include": ["positions"]}

    def report(self, simulation: Any, state: Any) -> None:
        """Write the frame and record its variables."""
        mm = self._mm
        if self._dcd is None:
            dt = simulation.integrator.getStepSize()
            self._dcd = mm.app.DCDFile(self._fh, simulation.topology, dt, self._interval, self._interval)
        pos = state.getPositions(asNumpy=True)
        self._dcd.writeModel(pos)
        self.step.append(simulation.currentStep)
        self.angles.append(_torsions(pos.value_in_unit(mm.unit.nanometer), self._quads))
        bias = 0.0
        if self._bias_group is not None:
            energy = simulation.context.getState(energy=True, groups={self._bias_group}).getPotentialEnergy()
            bias = energy.value_in_unit(mm.unit.kilojoule_per_mole)
        self.bias.append(bias)


def _check_settings(ns: float, seed: int, solvent: str, biased: str | Sequence[str], frame_ps: float) -> tuple:
    """Validate the run settings; return (biased names, steps per frame, frames)."""
    if solvent not in SOLVENTS:
        raise param_error("solvent", solvent, f"one of {', '.join(map(repr, SOLVENTS))}")
    try:
        names = (biased,) if isinstance(biased, str) else tuple(biased)
    except TypeError:
        names = (biased,)  # not iterable: reported below
    if any(b not in _TORSIONS for b in names) or len(set(names)) != len(names):
        raise param_error("biased", biased, "distinct torsion names from ('phi', 'psi'); () for unbiased MD")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise param_error("seed", seed, "a non-negative integer")
    for name, value in (("ns", ns), ("frame_ps", frame_ps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise param_error(name, value, "a positive number")
    step_ps = TIMESTEP_FS / 1000.0
    frame_steps = round(frame_ps / step_ps)
    if frame_steps < 1 or abs(frame_steps * step_ps - frame_ps) > 1e-9 * max(1.0, frame_ps):
        raise param_error("frame_ps", frame_ps, f"a multiple of the {TIMESTEP_FS:g} fs time step", "e.g. 1.0 or 0.5")
    n_frames = round(ns * 1000.0 / frame_ps)
    if n_frames < 1 or abs(n_frames * frame_ps - ns * 1000.0) > 1e-9 * max(1.0, ns * 1000.0):
        raise param_error("ns", ns, f"a whole number of frames of frame_ps={frame_ps:g} ps")
    return names, frame_steps, n_frames


def run_torsion_metadynamics(
    out_dir: str | Path,
    ns: float = 10.0,
    seed: int = 0,
    solvent: str = "vacuum",
    biased: str | Sequence[str] = ("phi",),
    frame_ps: float = 1.0,
    progress: bool = True,
) -> Path:
    """Run alanine dipeptide with well-tempered metadynamics on φ and/or ψ (or unbiased) and save it.

    Protocol: the shipped PDB minimised in the chosen force field, velocities drawn at 300 K,
    then ``LangevinMiddleIntegrator`` (300 K, γ = 1/ps, 2 fs, HBonds constraints, no cutoff) on the
    Reference platform (the fastest for 22 atoms). Metadynamics: Gaussians of initial height
    1 kJ/mol, width 5 % of the 2π range (0.314 rad), every 0.5 ps, bias factor 8, on a periodic
    grid over [-π, π].

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created if missing). It receives ``traj.dcd``, ``topology.pdb`` and
        ``colvar.nc``; existing files of these names are replaced.
    ns : float
        Simulated time in ns.
    seed : int
        Non-negative seed of the Langevin noise and of the initial velocities; the same seed gives
        the same trajectory.
    solvent : {"vacuum", "obc"}
        Force field, see :func:`build_system`.
    biased : str or sequence of {"phi", "psi"}
        Torsions to bias; ``()`` runs unbiased MD.
    frame_ps : float
        Interval between saved frames in ps; a multiple of 2 fs, and ``ns`` must be a whole number
        of frames.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ConfigError
        For invalid settings, or if OpenMM is not installed.
    OutputError
        If ``out_dir`` cannot be written.

    Notes
    -----
    ``colvar.nc`` has dim ``frame`` with coordinate ``time_ps`` and variables ``phi``, ``psi``
    (rad) and ``bias_kJmol``, the metadynamics bias V(s(t), t) at the frame, before the Gaussian
    deposited at the same step (0 without bias). With a bias it also holds the final free-energy
    estimate of OpenMM, F(s) = -(T + ΔT)/ΔT · V(s) with ΔT = (b - 1)·T for the bias factor b = 8
    (Barducci et al. 2008), on its grid (``free_energy_kJmol`` over ``grid_phi`` and/or
    ``grid_psi``). The attrs hold every setting, the seeds, the OpenMM version, and the wall and
    CPU seconds of the dynamics.

    The outputs are written under temporary names in ``out_dir`` and renamed when complete, so a
    failed run never leaves a partial ``traj.dcd`` or ``colvar.nc`` under the final names.

    References
    ----------
    Barducci, Bussi & Parrinello, Phys. Rev. Lett. 100, 020603 (2008), doi:10.1103/PhysRevLett.100.020603.
    """
    names, frame_steps, n_frames = _check_settings(ns, seed, solvent, biased, frame_ps)
    mm = _openmm()
    from tqdm.auto import tqdm

    from .. import __version__
    from ..data.io import atomic_write_bytes, write_dataset

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"out_dir {str(out_dir)!r} is a file: give a directory.")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise OutputError(f"out_dir {str(out)!r} is not writable.")

    sim = _Setup(mm, solvent, names, seed)
    tmp_dcd = out / f".traj.dcd.{os.getpid()}.tmp"
    try:
        with open(tmp_dcd, "wb") as fh:
            recorder = _FrameRecorder(mm, fh, frame_steps, sim.bias_group)
            sim.simulation.reporters.append(recorder)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            bar = tqdm(total=n_frames, unit="frame", desc=f"ala2 {solvent}", disable=not progress, file=sys.stderr)
            with bar:
                for _ in range(n_frames):
                    sim.advance(frame_steps)
                    bar.update(1)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        ds = _colvar_dataset(recorder, sim.meta, names)
        ds.attrs.update(
            title="alanine dipeptide (ACE-ALA-NME) torsion metadynamics, surrodyn.md.run_torsion_metadynamics",
            solvent=solvent,
            force_field=" + ".join(SOLVENTS[solvent]),
            nonbonded_method="NoCutoff",
            constraints="HBonds",
            platform="Reference",
            integrator="LangevinMiddleIntegrator",
            temperature_K=TEMPERATURE_K,
            friction_per_ps=FRICTION_PER_PS,
            timestep_fs=TIMESTEP_FS,
            ns=float(ns),
            n_steps=n_frames * frame_steps,
            frame_ps=float(frame_ps),
            seed=int(seed),
            biased=",".join(names),
            metad_height_kJmol=METAD_HEIGHT_KJMOL if names else 0.0,
            metad_bias_factor=METAD_BIAS_FACTOR,
            metad_pace_ps=METAD_PACE_PS,
            metad_width_rad=METAD_WIDTH_FRACTION * 2.0 * math.pi,
            bias_convention="V(s(t), t) at each frame, before the Gaussian deposited at the same step",
            phi_atoms=np.array(PHI_ATOMS),
            psi_atoms=np.array(PSI_ATOMS),
            **sim.info,
            openmm_version=mm.__version__,
            surrodyn_version=__version__,
            wall_s=wall,
            cpu_s=cpu,
            ns_per_day=float(ns) / wall * 86400.0,
        )
        write_dataset(ds, out / "colvar.nc")
        os.replace(tmp_dcd, out / "traj.dcd")
    finally:
        tmp_dcd.unlink(missing_ok=True)
    atomic_write_bytes(out / "topology.pdb", alanine_dipeptide_pdb().read_bytes())
    return out


class _Setup:
    """A minimised, thermalised simulation of the protocol, with its metadynamics (or none).

    ``info`` holds the seeds actually given to OpenMM and the minimised starting point.
    """

    def __init__(self, mm: Any, solvent: str, names: tuple[str, ...], seed: int) -> None:
        unit = mm.unit
        topology, system, positions = build_system(solvent)
        self.meta: Any = None
        self.bias_group: int | None = None
        if names:
            width = METAD_WIDTH_FRACTION * 2.0 * math.pi
            variables = []
            for name in names:
                cv = mm.CustomTorsionForce("theta")
                cv.addTorsion(*_TORSIONS[name])
                variables.append(mm.app.BiasVariable(cv, -math.pi, math.pi, width, periodic=True))
            self.meta = mm.app.Metadynamics(
                system, variables, TEMPERATURE_K * unit.kelvin, METAD_BIAS_FACTOR,
                METAD_HEIGHT_KJMOL * unit.kilojoule_per_mole, round(METAD_PACE_PS * 1000.0 / TIMESTEP_FS),
            )  # fmt: skip
            self.bias_group = system.getForce(system.getNumForces() - 1).getForceGroup()  # the force it added
        # OpenMM seeds are positive 31-bit ints (0 means "pick one at random"), two independent ones from ``seed``
        integrator_seed, velocity_seed = (
            int(s) % 2_147_483_646 + 1 for s in np.random.SeedSequence(seed).generate_state(2)
        )
        integrator = mm.LangevinMiddleIntegrator(
            TEMPERATURE_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond, TIMESTEP_FS * unit.femtosecond
        )
        integrator.setRandomNumberSeed(integrator_seed)
        self.simulation = mm.app.Simulation(topology, system, integrator, mm.Platform.getPlatformByName("Reference"))
        self.simulation.context.setPositions(positions)
        self.simulation.minimizeEnergy()
        start = self.simulation.context.getState(positions=True, energy=True)
        x0 = start.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        phi0, psi0 = _torsions(x0, np.array([PHI_ATOMS, PSI_ATOMS]))
        self.simulation.context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, velocity_seed)
        self.info = {
            "integrator_seed": integrator_seed,
            "velocity_seed": velocity_seed,
            "start_phi_rad": float(phi0),
            "start_psi_rad": float(psi0),
            "start_energy_kJmol": start.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
        }

    def advance(self, steps: int) -> None:
        """Integrate ``steps`` time steps (depositing Gaussians on the way, if biased)."""
        if self.meta is None:
            self.simulation.step(steps)
        else:
            self.meta.step(self.simulation, steps)


def _colvar_dataset(recorder: _FrameRecorder, meta: Any, names: tuple[str, ...]) -> Any:
    """Build the colvar Dataset of a finished run (φ, ψ, bias per frame; the final free energy if biased)."""
    import xarray as xr

    angles = np.array(recorder.angles)
    data: dict[str, Any] = {
        "phi": ("frame", angles[:, 0], {"units": "rad", "long_name": "φ = C(ACE)-N-CA-C"}),
        "psi": ("frame", angles[:, 1], {"units": "rad", "long_name": "ψ = N-CA-C-N(NME)"}),
        "bias_kJmol": ("frame", np.array(recorder.bias), {"units": "kJ/mol", "long_name": "metadynamics bias"}),
    }
    coords: dict[str, Any] = {
        "time_ps": ("frame", np.array(recorder.step) * TIMESTEP_FS / 1000.0, {"units": "ps"}),
    }
    if meta is not None:
        # OpenMM grids are indexed [cv_n-1, ..., cv0] and sample linspace(min, max, gridWidth)
        import openmm.unit

        fes = np.asarray(meta.getFreeEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)).T
        dims = tuple(f"grid_{n}" for n in names)
        for dim, var in zip(dims, meta.variables, strict=True):
            coords[dim] = (dim, np.linspace(var.minValue, var.maxValue, var.gridWidth), {"units": "rad"})
        data["free_energy_kJmol"] = (dims, fes, {"units": "kJ/mol", "long_name": "final metadynamics free energy"})
    return xr.Dataset(data, coords=coords)


def count_transitions(phi: np.ndarray, lower: float = 0.3, upper: float = math.pi - 0.3) -> int:
    """Count the transitions between the φ < 0 and φ > 0 basins, core to core.

    A frame is committed to the basin of the sign of φ when it lies in that basin's core,
    ``lower < |φ| < upper``; frames outside both cores (within ``lower`` of the φ = 0 boundary,
    or within π - ``upper`` of the ±π boundary) keep the last committed basin. A transition is
    a change of the committed basin. Jitter around either boundary is therefore not counted, and
    a trajectory must reach the other core to count.

    Parameters
    ----------
    phi : numpy.ndarray
        (n_frames,) torsion series in radians (any branch; it is wrapped to (-π, π]).
    lower, upper : float
        Core bounds on |φ| in radians, 0 ≤ lower < upper ≤ π. The defaults (0.3, π - 0.3) leave
        a 0.3 rad (17°) band on each side of both boundaries.

    Returns
    -------
    int
        Number of basin changes.

    Raises
    ------
    ConfigError
        If ``phi`` is not a finite 1-D series or the bounds are out of order.
    """
    x = np.asarray(phi, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise param_error("phi", f"array of shape {x.shape}", "a finite 1-D series of angles in radians")
    if not 0.0 <= lower < upper <= math.pi:
        raise param_error("lower, upper", (lower, upper), "0 <= lower < upper <= π")
    w = np.angle(np.exp(1j * x))
    state = np.where((np.abs(w) > lower) & (np.abs(w) < upper), np.sign(w), 0.0)
    committed = state[state != 0.0]
    return int(np.count_nonzero(committed[1:] != committed[:-1]))
