"""Labelled configurations of a nanocluster at fixed temperature, for training interatomic potentials.

:func:`sample_configurations` runs Langevin MD of one :class:`SamplingCondition` (a cluster and a
temperature), keeps one frame every ``stride_steps`` after equilibration, and labels each frame
with the reference calculator's energy and forces. The frames are ready for
``ase.io.write(..., format="extxyz")``.

Example::

    from surrodyn.md import ClusterSpec, SamplingCondition, sample_configurations
    frames = sample_configurations(SamplingCondition(ClusterSpec("icosahedron", 3), 300.0), 50, seed=1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import ConfigTypeError, param_error
from .clusters import ClusterSpec, build_cluster
from .ramp import _BOX_PAD_A, CALCULATORS, make_calculator

__all__ = ["SamplingCondition", "sample_configurations"]


@dataclass(frozen=True)
class SamplingCondition:
    """One cluster at one thermostat temperature.

    Parameters
    ----------
    cluster : ClusterSpec
        The cluster (its ideal structure is the MD starting point).
    temperature_K : float
        Thermostat temperature in K, positive.

    Raises
    ------
    surrodyn.errors.ConfigTypeError
        If ``cluster`` is not a :class:`ClusterSpec`.
    surrodyn.errors.ConfigError
        If ``temperature_K`` is not a positive finite number.
    """

    cluster: ClusterSpec
    temperature_K: float

    def __post_init__(self) -> None:
        if not isinstance(self.cluster, ClusterSpec):
            raise ConfigTypeError(
                f"cluster={self.cluster!r} is not allowed: expected a ClusterSpec, e.g. ClusterSpec('icosahedron', 3)."
            )
        _positive("temperature_K", self.temperature_K, "a positive temperature in K")
        object.__setattr__(self, "temperature_K", float(self.temperature_K))

    @property
    def label(self) -> str:
        """Short name such as ``Cu55-icosahedron@300K``."""
        return f"{self.cluster.label}@{self.temperature_K:g}K"


def _positive(name: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise param_error(name, value, allowed)
    if not (math.isfinite(value) and value > 0):
        raise param_error(name, value, allowed)
    return float(value)


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise param_error(name, value, f"an integer >= {minimum}")
    return int(value)


def _resolve_calculator(calculator: str | Any) -> tuple[Any, Any]:
    """Return the (MD, labelling) calculators: two fresh instances for a name, the object twice otherwise."""
    if isinstance(calculator, str):
        names = ("auto", *CALCULATORS)
        if calculator not in names:
            raise param_error("calculator", calculator, f"one of {names} or an ASE calculator object")
        name = "emt" if calculator == "auto" else calculator
        return make_calculator(name), make_calculator(name)
    if not (hasattr(calculator, "get_potential_energy") and hasattr(calculator, "get_forces")):
        raise ConfigTypeError(
            f"calculator={calculator!r} is not allowed: expected a name in {('auto', *CALCULATORS)} "
            "or an ASE calculator (with get_potential_energy and get_forces)."
        )
    return calculator, calculator


def sample_configurations(
    condition: SamplingCondition,
    n_frames: int,
    *,
    stride_steps: int = 50,
    equilibration_steps: int = 2000,
    timestep_fs: float = 2.0,
    friction_per_fs: float = 0.01,
    seed: int = 0,
    calculator: str | Any = "auto",
) -> list[Atoms]:
    r"""Sample labelled configurations of a cluster by Langevin MD at fixed temperature.

    Parameters
    ----------
    condition : SamplingCondition
        Cluster and thermostat temperature.
    n_frames : int
        Frames to return, at least 1.
    stride_steps : int
        MD steps between frames, at least 1. With 50 steps of 2 fs the lag-1 correlation is about
        0.1 for the kinetic energy of Cu13 and about 0.25 for the potential energy of solid Cu13 and
        Cu55, but 0.7-0.8 where isomerisation is slow (Cu13 at 900 K, Cu55 at 1100 K).
    equilibration_steps : int
        MD steps before the first frame's stride, not recorded; at least 0.
    timestep_fs : float
        Time step in fs.
    friction_per_fs : float
        Langevin friction in 1/fs.
    seed : int
        Seed of ``numpy.random.default_rng`` that draws the initial Maxwell–Boltzmann momenta and
        the Langevin noise. The same seed and calculator give the same frames.
    calculator : str or ase calculator
        ``"auto"`` (asap3's EMT when installed, else ASE's), a name of
        :data:`surrodyn.md.CALCULATORS`, or an ASE calculator object, which is used both for the MD
        and for the labels and must accept new :class:`ase.Atoms` objects.

    Returns
    -------
    list of ase.Atoms
        ``n_frames`` independent copies, frame ``k`` taken after ``equilibration_steps +
        (k + 1) * stride_steps`` steps. Each has its centre of mass at the centre of a cubic cell
        with ``30 Å`` of vacuum around the ideal cluster, ``pbc=False``, its momenta, a
        :class:`~ase.calculators.singlepoint.SinglePointCalculator` with ``energy`` (eV) and
        ``forces`` (eV/Å) from a separate call of the reference calculator, and ``info`` keys
        ``condition`` (the label), ``temperature_K`` (thermostat), ``seed`` and ``frame`` (``k``).

    Raises
    ------
    surrodyn.errors.ConfigError
        If a number is out of range or ``calculator`` is an unknown name.
    surrodyn.errors.ConfigTypeError
        If ``condition`` or ``calculator`` has the wrong type.

    Notes
    -----
    ASE's Langevin integrator with ``fixcm=False`` thermalises all :math:`3N` momenta, including
    the centre-of-mass translation and the rotation, so the instantaneous temperature
    :math:`T = 2K/(3N k_B)` (:meth:`ase.Atoms.get_temperature`) averages to the thermostat
    temperature, with relative fluctuations :math:`\sqrt{2/(3N)}` per frame.
    """
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin

    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    if not isinstance(condition, SamplingCondition):
        raise ConfigTypeError(f"condition={condition!r} is not allowed: expected a SamplingCondition.")
    n_frames = _integer("n_frames", n_frames, 1)
    stride_steps = _integer("stride_steps", stride_steps, 1)
    equilibration_steps = _integer("equilibration_steps", equilibration_steps, 0)
    seed = _integer("seed", seed, 0)
    timestep_fs = _positive("timestep_fs", timestep_fs, "a positive time step in fs")
    friction_per_fs = _positive("friction_per_fs", friction_per_fs, "a positive friction in 1/fs")
    md_calc, label_calc = _resolve_calculator(calculator)

    atoms = build_cluster(condition.cluster)
    extent = np.ptp(atoms.positions, axis=0).max()
    atoms.set_cell(np.full(3, extent + 2 * _BOX_PAD_A))  # asap3 needs a cell even without pbc
    atoms.set_pbc(False)
    atoms.center()
    atoms.calc = md_calc
    rng = np.random.default_rng(seed)
    temperature = condition.temperature_K
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn.run(equilibration_steps)

    label = condition.label
    centre = 0.5 * atoms.cell.diagonal()
    frames = []
    for k in range(n_frames):
        dyn.run(stride_steps)
        frame = Atoms(
            atoms.get_chemical_symbols(),
            positions=atoms.get_positions(),
            momenta=atoms.get_momenta(),
            cell=atoms.get_cell(),
            pbc=False,
        )
        frame.positions += centre - frame.get_center_of_mass()
        frame.info.update(condition=label, temperature_K=temperature, seed=seed, frame=k)
        frames.append(frame)

    for frame in frames:
        frame.calc = label_calc
        energy, forces = frame.get_potential_energy(), frame.get_forces()
        frame.calc = SinglePointCalculator(frame, energy=float(energy), forces=np.array(forces))
    return frames
