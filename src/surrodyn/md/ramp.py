"""Heating and cooling ramps of nanoclusters with Langevin MD over any ASE calculator.

The run is cut into segments of ``checkpoint_frames`` frames. Each finished segment is written
atomically, then the MD state (positions, momenta, random-generator state) after it; an interrupted
run resumes from its last finished segment and gives bit-for-bit the frames of an uninterrupted
one. When all segments exist they are joined into ``ramp.nc`` (an xarray Dataset with positions and
per-frame energies and temperatures) and ``frames.extxyz`` for viewers.

Example::

    from surrodyn.md import ClusterSpec, RampConfig, run_ramp
    ds = run_ramp(RampConfig(cluster=ClusterSpec("icosahedron", 3), steps=20_000), "cu55_ramp")
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, OutputError, param_error, read_yaml_mapping, unknown_keys_error
from ..protocols import Schedule, ramp, schedule_from_spec
from .clusters import ClusterSpec, build_cluster

__all__ = ["CALCULATORS", "RampConfig", "load_ramp", "make_calculator", "run_ramp"]

#: calculator names accepted by :func:`make_calculator`
CALCULATORS = ("emt", "asap3-emt", "ase-emt", "gfn2-xtb", "gfn1-xtb")
_XTB = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
_BOX_PAD_A = 30.0  # vacuum around the cluster in the (non-periodic) cell asap3 needs
# name of the schedule RampConfig derives from start_K/stop_K: dataclasses.replace() passes it back
# in, and it is then derived again from the new settings instead of being kept as if given
_DERIVED = "temperature_K (linear ramp from start_K to stop_K)"


def make_calculator(name: str) -> Any:
    """Return a fresh ASE calculator by name.

    Parameters
    ----------
    name : {"emt", "asap3-emt", "ase-emt", "gfn2-xtb", "gfn1-xtb"}
        ``emt`` is asap3's EMT when asap3 is installed (25–65× faster) and ASE's pure-Python EMT
        otherwise; ``asap3-emt`` and ``ase-emt`` force one implementation. ``gfn2-xtb`` and
        ``gfn1-xtb`` are tblite's extended tight binding (Bannwarth, Ehlert & Grimme 2019), the
        quantum tier of the reference calculations (``pip install 'surrodyn[xtb]'``); neutral
        systems, at tblite's default electronic temperature.

    Returns
    -------
    ase.calculators.calculator.Calculator
    """
    if name not in CALCULATORS:
        raise param_error("calculator", name, f"one of {CALCULATORS}, or pass an ASE calculator object to run_ramp")
    if name in _XTB:
        try:
            from tblite.ase import TBLite
        except ImportError:
            raise ImportError(f"calculator={name!r} needs tblite: pip install 'surrodyn[xtb]'") from None
        return TBLite(method=_XTB[name], verbosity=0)
    if name in ("emt", "asap3-emt"):
        try:
            from asap3 import EMT as AsapEMT
        except ImportError:
            if name == "asap3-emt":
                raise ImportError("calculator='asap3-emt' needs asap3: pip install asap3") from None
        else:
            return AsapEMT()
    from ase.calculators.emt import EMT

    return EMT()


def _linear(start: float, stop: float, steps: int, stride: int, timestep_fs: float) -> Schedule:
    return ramp(start, stop, 0.0, steps * timestep_fs * 1e-15, n_steps=max(steps // stride, 1), name=_DERIVED)


def _thermostat_K(config: RampConfig, step: int) -> float:
    """Thermostat temperature of the MD steps from ``step`` on: the schedule half a time step later.

    Half a step in, so that a breakpoint on a step boundary (every frame boundary of the default
    linear ramp) is not decided by the rounding of ``step * timestep``.
    """
    return float(config.temperature_K((step + 0.5) * config.timestep_fs * 1e-15))  # type: ignore[misc]


@dataclass(frozen=True)
class RampConfig:
    """A heating (or cooling) run of one cluster.

    Parameters
    ----------
    cluster : ClusterSpec
        The cluster.
    temperature_K : Schedule, optional
        Thermostat temperature against time in seconds (see :mod:`surrodyn.protocols`; a number or
        a schedule mapping is converted). The ``stride`` steps from step ``s`` run at its value at
        ``(s + 1/2) * timestep_fs``. Default: a linear ramp from ``start_K`` to ``stop_K`` over the
        run, held constant within each frame interval at the ramp's value at the interval's middle.
    start_K, stop_K : float
        Ends of the default linear ramp (ignored when ``temperature_K`` is given).
    steps : int
        MD steps after equilibration.
    timestep_fs : float
        Time step.
    friction_per_fs : float
        Langevin friction.
    stride : int
        Steps between recorded frames.
    equilibration_steps : int
        Steps at the schedule's first temperature before recording, not recorded.
    seed : int
        Seed of the Langevin noise and of the initial Maxwell–Boltzmann velocities.
    calculator : str
        See :func:`make_calculator`.
    checkpoint_frames : int
        Frames per checkpointed segment.
    """

    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    temperature_K: Schedule | None = None
    start_K: float = 200.0
    stop_K: float = 1400.0
    steps: int = 100_000
    timestep_fs: float = 2.0
    friction_per_fs: float = 0.01
    stride: int = 100
    equilibration_steps: int = 5_000
    seed: int = 0
    calculator: str = "emt"
    checkpoint_frames: int = 100

    def __post_init__(self) -> None:
        # validated and normalised to plain int/float, so that equal settings have equal digests
        # (300 and 300.0, numpy integers) and to_dict() is JSON-safe
        integers = {"steps": 1, "stride": 1, "checkpoint_frames": 1, "equilibration_steps": 0, "seed": 0}
        for name, minimum in integers.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
                raise param_error(name, v, "a positive integer" if minimum else "an integer >= 0")
            object.__setattr__(self, name, int(v))
        if self.steps % self.stride:
            raise param_error("steps", self.steps, f"a multiple of stride={self.stride}")
        for name in ("timestep_fs", "friction_per_fs", "start_K", "stop_K"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise param_error(name, v, "a positive finite number")
            object.__setattr__(self, name, float(v))
        if self.calculator not in CALCULATORS:
            raise param_error("calculator", self.calculator, f"one of {CALCULATORS}")
        if self.temperature_K is None or (
            isinstance(self.temperature_K, Schedule) and self.temperature_K.name == _DERIVED
        ):
            sched = _linear(self.start_K, self.stop_K, self.steps, self.stride, self.timestep_fs)
            object.__setattr__(self, "temperature_K", sched)
        elif not isinstance(self.temperature_K, Schedule):
            object.__setattr__(self, "temperature_K", schedule_from_spec(self.temperature_K, "temperature_K"))
        if min(self.temperature_K.values) <= 0:  # type: ignore[union-attr]
            raise param_error("temperature_K", self.temperature_K.values, "positive temperatures")  # type: ignore[union-attr]

    @property
    def n_frames(self) -> int:
        """Recorded frames, including the first one after equilibration."""
        return self.steps // self.stride + 1

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> RampConfig:
        """Build from the YAML mapping form.

        ``cluster`` is a :class:`ClusterSpec` mapping; ``temperature_K`` is a number, a
        ``[start, stop]`` pair (linear ramp over the run) or a schedule mapping of
        :func:`surrodyn.protocols.schedule_from_spec` (times in seconds).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise unknown_keys_error(unknown, known, "key(s) of a ramp config")
        spec = dict(spec)
        spec["cluster"] = ClusterSpec.from_dict(dict(spec.get("cluster") or {}))
        temp = spec.pop("temperature_K", None)
        if isinstance(temp, list) and len(temp) == 2:
            spec["start_K"], spec["stop_K"] = (float(x) for x in temp)
        elif temp is not None:
            spec["temperature_K"] = schedule_from_spec(temp, "temperature_K")
        try:
            return cls(**spec)
        except TypeError as exc:
            raise ConfigError(f"ramp config: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> RampConfig:
        """Read a YAML file (see :meth:`from_dict`); an ``out`` key is ignored here."""
        data = read_yaml_mapping(path, "ramp config")
        if not isinstance(data, dict):
            raise ConfigError(f"{str(path)!r}: a ramp config is a mapping, e.g. {{cluster: {{shape: icosahedron}}}}.")
        data.pop("out", None)
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (JSON/YAML-safe) of every setting."""
        d = dataclasses.asdict(self)
        d["cluster"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["cluster"].items()}
        d["temperature_K"] = self.temperature_K.to_dict()  # type: ignore[union-attr]
        return d

    def digest(self) -> str:
        """Hash of the settings; a checkpoint is only resumed under the same digest."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _segment_path(out: Path, k: int) -> Path:
    return out / "segments" / f"seg_{k:05d}.npz"


class _Runner:
    """The MD state of one ramp: atoms, Langevin integrator and its generator."""

    def __init__(self, config: RampConfig, calculator: Any) -> None:
        from ase import units
        from ase.md.langevin import Langevin

        self.config = config
        atoms = build_cluster(config.cluster)
        extent = np.ptp(atoms.positions, axis=0).max()
        atoms.set_cell(np.full(3, extent + 2 * _BOX_PAD_A))
        atoms.center()
        atoms.calc = calculator
        self.atoms = atoms
        self.rng = np.random.default_rng(config.seed)
        self.dyn = Langevin(
            atoms,
            config.timestep_fs * units.fs,
            temperature_K=self.temperature(0),
            friction=config.friction_per_fs / units.fs,
            fixcm=False,
            rng=self.rng,
        )

    def temperature(self, step: int) -> float:
        return _thermostat_K(self.config, step)

    def start(self) -> None:
        try:
            from ase.md.velocitydistribution import thermalize_momenta
        except ImportError:  # ASE < 3.29, where this is not deprecated yet
            from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

        thermalize_momenta(self.atoms, temperature_K=self.temperature(0), rng=self.rng)
        self.dyn.run(self.config.equilibration_steps)

    def advance(self, step: int) -> None:
        """Run ``stride`` steps from ``step`` at the schedule's temperature there."""
        self.dyn.set_temperature(temperature_K=self.temperature(step))
        self.dyn.run(self.config.stride)

    def record(self) -> tuple[np.ndarray, float, float, float]:
        a = self.atoms
        return a.get_positions(), a.get_potential_energy(), a.get_kinetic_energy(), a.get_temperature()

    def save_state(self, path: Path, next_frame: int) -> None:
        from ..data.io import atomic_savez

        atomic_savez(
            path,
            positions=self.atoms.get_positions(),
            momenta=self.atoms.get_momenta(),
            next_frame=next_frame,
            rng=json.dumps(self.rng.bit_generator.state),
            digest=self.config.digest(),
        )

    def load_state(self, path: Path) -> int:
        with np.load(path) as z:
            if str(z["digest"]) != self.config.digest():
                raise ConfigError(
                    f"{path.parent} holds a ramp with other settings; use a new output directory or delete it."
                )
            self.atoms.set_positions(z["positions"])
            self.atoms.set_momenta(z["momenta"])
            self.rng.bit_generator.state = json.loads(str(z["rng"]))
            return int(z["next_frame"])


def run_ramp(
    config: RampConfig,
    out: str | Path,
    *,
    calculator: Any | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Run (or resume) a ramp and return its frames.

    Parameters
    ----------
    config : RampConfig
        Cluster, schedule and MD settings.
    out : str or Path
        Output directory; segments, the checkpoint, ``ramp.nc`` and ``frames.extxyz`` go here.
        An existing directory with the same settings is resumed.
    calculator : ase Calculator, optional
        Any ASE calculator (e.g. a trained potential); default ``make_calculator(config.calculator)``.
    progress : bool
        Show a progress bar over frames.

    Returns
    -------
    xarray.Dataset
        See :func:`load_ramp`.
    """
    from tqdm.auto import tqdm

    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"out={str(out)!r} is a file: give a directory for the ramp's frames and checkpoint.")
    try:
        (out / "segments").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {str(out)!r}: {exc.strerror}.") from None
    calc = make_calculator(config.calculator) if calculator is None else calculator
    runner = _Runner(config, calc)
    state = out / "state.npz"
    n, per = config.n_frames, config.checkpoint_frames
    if state.exists():
        next_frame = runner.load_state(state)
    else:
        runner.start()
        next_frame = 0
    bar = tqdm(total=n, initial=next_frame, desc=config.cluster.label, unit="frame", disable=not progress)
    while next_frame < n:
        k = next_frame // per
        stop = min((k + 1) * per, n)
        rows = []
        for f in range(next_frame, stop):
            if f > 0:
                runner.advance((f - 1) * config.stride)
            rows.append(runner.record())
            bar.update(1)
        pos, epot, ekin, temp = zip(*rows, strict=True)
        from ..data.io import atomic_savez

        atomic_savez(
            _segment_path(out, k),
            first_frame=next_frame,
            positions=np.asarray(pos),
            potential_energy=np.asarray(epot),
            kinetic_energy=np.asarray(ekin),
            temperature=np.asarray(temp),
        )
        runner.save_state(state, stop)
        next_frame = stop
    bar.close()
    ds = _assemble(config, out, runner.atoms.get_chemical_symbols(), type(calc).__module__ + "." + type(calc).__name__)
    _write_outputs(ds, out)
    return ds


def _assemble(config: RampConfig, out: Path, symbols: list[str], calc_name: str) -> xr.Dataset:
    parts = [np.load(_segment_path(out, k)) for k in range(math.ceil(config.n_frames / config.checkpoint_frames))]
    frames = np.arange(config.n_frames)
    step = frames * config.stride
    # the frame at step s was recorded after running at the temperature set for the interval before it
    target = np.array([_thermostat_K(config, max(s - config.stride, 0)) for s in step])
    time_ps = step * config.timestep_fs / 1000.0
    # frame 0 repeats the equilibration temperature of frame 1's interval; the rate is fitted on the
    # frames after it, which carry one thermostat temperature per interval
    rate = float(np.polyfit(time_ps[1:], target[1:], 1)[0]) if config.n_frames > 2 else 0.0
    cat = {
        k: np.concatenate([p[k] for p in parts])
        for k in ("positions", "potential_energy", "kinetic_energy", "temperature")
    }
    ds = xr.Dataset(
        {
            "positions": (("frame", "atom", "xyz"), cat["positions"], {"units": "angstrom"}),
            "potential_energy": ("frame", cat["potential_energy"], {"units": "eV"}),
            "kinetic_energy": ("frame", cat["kinetic_energy"], {"units": "eV"}),
            "temperature": ("frame", cat["temperature"], {"units": "K", "long_name": "instantaneous temperature"}),
            "target_temperature": ("frame", target, {"units": "K", "long_name": "thermostat temperature"}),
        },
        coords={
            "frame": frames,
            "step": ("frame", step),
            "time": ("frame", time_ps, {"units": "ps"}),
            "symbol": ("atom", np.asarray(symbols)),
            "xyz": ["x", "y", "z"],
        },
        attrs={
            "cluster": config.cluster.label,
            "n_atoms": len(symbols),
            "seed": config.seed,
            "calculator": calc_name,
            "config": json.dumps(config.to_dict()),
            "ramp_rate_K_per_ps": rate,
        },
    )
    for p in parts:
        p.close()
    return ds


def _write_outputs(ds: xr.Dataset, out: Path) -> None:
    from ase import Atoms
    from ase.io import write

    from ..data.io import atomic_write_bytes, write_dataset

    write_dataset(ds, out / "ramp.nc")
    frames = []
    for f in range(ds.sizes["frame"]):
        atoms = Atoms(list(ds.symbol.values), positions=ds.positions.values[f])
        atoms.info.update(
            frame=int(f),
            energy=float(ds.potential_energy[f]),
            temperature_K=float(ds.temperature[f]),
            target_temperature_K=float(ds.target_temperature[f]),
        )
        frames.append(atoms)
    text = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(text, frames, format="extxyz")
    atomic_write_bytes(out / "frames.extxyz", text.getvalue().encode())


def load_ramp(path: str | Path) -> xr.Dataset:
    """Read a ramp written by :func:`run_ramp` (its directory or its ``ramp.nc``).

    Parameters
    ----------
    path : str or Path
        Output directory of :func:`run_ramp`, or the ``ramp.nc`` file.

    Returns
    -------
    xarray.Dataset
        Dims ``frame``, ``atom``, ``xyz``; variables ``positions`` (Å), ``potential_energy`` and
        ``kinetic_energy`` (eV), ``temperature`` (instantaneous, K), ``target_temperature`` (K);
        coordinates ``step``, ``time`` (ps), ``symbol``; attrs with the settings and
        ``ramp_rate_K_per_ps``, the least-squares slope of ``target_temperature`` against ``time``
        over frames 1, 2, ... (``(stop_K - start_K)`` over the run's duration for the default ramp;
        0 with fewer than two intervals).
    """
    from ..data.io import read_dataset

    p = Path(path)
    if p.is_dir():
        p = p / "ramp.nc"
    if not p.exists():
        raise FileNotFoundError(f"no ramp at {str(path)!r}: run `surrodyn md ramp CONFIG.yaml` first.")
    return read_dataset(p)
