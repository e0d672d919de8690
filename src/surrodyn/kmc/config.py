"""Frozen, validated configuration of a lattice kMC simulation.

YAML and the CLI are generated from :class:`KMCConfig`; the field names carry the units.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigTypeError, param_error, read_yaml_mapping, unknown_keys_error
from ..protocols import Schedule, constant, schedule_from_spec
from ..units import CM3_TO_M3, ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_M, thermal_energy_eV

__all__ = ["RATE_RULES", "KMCConfig", "output_grid", "seed_case_config"]

RATE_RULES = ("symmetric", "metropolis")


def output_grid(spec: Any, name: str = "output_times_s") -> tuple[float, ...]:
    """Build output times from a list or a grid mapping.

    Parameters
    ----------
    spec : sequence of float or mapping
        Explicit times in s, or ``{"kind": "linear" | "log", "start": ..., "stop": ...,
        "num": ...}`` (``start > 0`` for ``log``).
    name : str
        Parameter name for error messages.

    Returns
    -------
    tuple of float
        Strictly increasing, finite, non-negative times in seconds.
    """
    if isinstance(spec, Mapping):
        spec = dict(spec)
        kind = spec.pop("kind", "linear")
        try:
            start, stop, num = float(spec.pop("start")), float(spec.pop("stop")), int(spec.pop("num"))
        except KeyError as exc:
            raise param_error(name, spec, f"a grid mapping with 'start', 'stop' and 'num' (missing {exc})") from None
        if spec:
            raise param_error(name, sorted(spec), "only the keys kind, start, stop, num")
        if num < 1:
            raise param_error(f"{name}.num", num, "an integer >= 1")
        if kind == "linear":
            times = np.linspace(start, stop, num)
        elif kind == "log":
            if not start > 0:
                raise param_error(f"{name}.start", start, "a positive time for a log grid")
            times = np.geomspace(start, stop, num)
        else:
            raise param_error(f"{name}.kind", kind, "'linear' or 'log'")
    elif (isinstance(spec, Sequence) and not isinstance(spec, str)) or isinstance(spec, np.ndarray):
        try:
            times = np.asarray([float(x) for x in spec])
        except (TypeError, ValueError):
            raise param_error(name, spec, "a list of times in seconds") from None
    else:
        raise param_error(name, spec, "a list of times in seconds or a grid mapping")
    if times.size == 0:
        raise param_error(name, list(times), "at least one output time")
    shown = [float(t) for t in times]
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise param_error(name, shown, "finite, non-negative times in seconds")
    if np.any(np.diff(times) <= 0):
        bad = int(np.argmax(np.diff(times) <= 0))
        raise param_error(
            name,
            shown,
            "strictly increasing times",
            f"times[{bad}]={shown[bad]!r} is not before times[{bad + 1}]={shown[bad + 1]!r}.",
        )
    return tuple(float(t) for t in times)


@dataclass(frozen=True)
class KMCConfig:
    """Configuration of the lattice kMC of one mobile cation species between blocking electrodes.

    Parameters
    ----------
    nx, ny, nz : int
        Lattice sites along x, y (periodic) and z (between the electrodes). The electrodes
        are ghost planes at layer indices ``-1`` and ``nz``, so the gap is ``(nz+1)·a``.
    spacing_nm : float
        Lattice spacing ``a`` in nm.
    concentration_cm3 : float
        Bulk concentration of mobile cations in cm^-3; ``N = round(c0 · nx·ny·nz·a³)``.
    n_ions : int, optional
        Number of ions, overriding ``concentration_cm3`` when given.
    permittivity : float
        Relative permittivity ``epsr`` of the electrolyte.
    voltage_V : float or Schedule or mapping
        Potential of the electrode at ``z = (nz+1)a``; the one at ``z = 0`` is grounded.
        A positive voltage makes ``z = 0`` the cathode, where cations accumulate.
    temperature_K : float or Schedule or mapping
        Temperature (constant or piecewise-constant schedule).
    disorder_eV : float
        Standard deviation of the Gaussian site-energy disorder (0 disables).
    attempt_frequency_Hz : float
        Attempt frequency ``nu0``.
    activation_energy_eV : float
        Hop barrier ``Ea``.
    rate_rule : {"symmetric", "metropolis"}
        ``nu0 exp(-(Ea + dE/2)/kT)`` or ``nu0 exp(-Ea/kT) min(1, exp(-dE/kT))``.
    coulomb : bool
        Include the Coulomb interaction of the ions, the background and the electrodes.
    self_image : bool
        Include each ion's interaction with its own electrode images.
    output_times_s : sequence of float or mapping
        Times at which observables are recorded (see :func:`output_grid`).
    record_xz : bool
        Also record the (x, z) occupancy map averaged over y.
    recompute_interval : int
        Events between full O(N²) recomputes of the potentials that bound round-off drift.
    """

    nx: int = 20
    ny: int = 20
    nz: int = 99
    spacing_nm: float = 1.0
    concentration_cm3: float = 3e18
    n_ions: int | None = None
    permittivity: float = 100.0
    voltage_V: Schedule = field(default_factory=lambda: constant(0.5, "voltage_V"))
    temperature_K: Schedule = field(default_factory=lambda: constant(300.0, "temperature_K"))
    disorder_eV: float = 0.0
    attempt_frequency_Hz: float = 1e13
    activation_energy_eV: float = 0.3
    rate_rule: str = "symmetric"
    coulomb: bool = True
    self_image: bool = True
    output_times_s: tuple[float, ...] = (1e-8, 1e-7, 1e-6, 1e-5)
    record_xz: bool = False
    recompute_interval: int = 100_000

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("nx", "ny", "nz", "recompute_interval"):
            set_(self, name, _as_int(name, getattr(self, name), minimum=1))
        if self.nz < 2:
            raise param_error("nz", self.nz, "at least 2 layers between the electrodes")
        if self.n_ions is not None:
            set_(self, "n_ions", _as_int("n_ions", self.n_ions, minimum=None))
        for name in ("spacing_nm", "permittivity", "attempt_frequency_Hz", "concentration_cm3"):
            set_(self, name, _as_float(name, getattr(self, name), positive=True))
        for name in ("disorder_eV", "activation_energy_eV"):
            set_(self, name, _as_float(name, getattr(self, name), nonnegative=True))
        for name in ("coulomb", "self_image", "record_xz"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigTypeError(f"{name}={getattr(self, name)!r} is not allowed: expected true or false.")
            set_(self, name, bool(getattr(self, name)))
        if self.rate_rule not in RATE_RULES:
            raise param_error("rate_rule", self.rate_rule, f"one of {RATE_RULES}")
        set_(self, "voltage_V", schedule_from_spec(self.voltage_V, "voltage_V"))
        temp = schedule_from_spec(self.temperature_K, "temperature_K")
        if min(temp.values) <= 0:
            shown = temp.values[0] if len(temp.values) == 1 else list(temp.values)
            raise param_error("temperature_K", shown, "positive temperatures in kelvin")
        set_(self, "temperature_K", temp)
        set_(self, "output_times_s", output_grid(self.output_times_s))
        n = self.n_ions_resolved
        if n > self.n_sites:
            raise param_error(
                "concentration_cm3" if self.n_ions is None else "n_ions",
                self.concentration_cm3 if self.n_ions is None else self.n_ions,
                f"at most one ion per site: {n} ions do not fit in {self.n_sites} sites",
                "Lower the concentration or enlarge the lattice spacing.",
            )
        if n < 1:
            raise param_error(
                "concentration_cm3" if self.n_ions is None else "n_ions",
                self.concentration_cm3 if self.n_ions is None else self.n_ions,
                f"at least one ion in the cell (this one holds {self.cell_volume_m3 / CM3_TO_M3:.3g} cm³)",
                "Raise the concentration or enlarge the lattice.",
            )

    # ------------------------------------------------------------------ derived
    @property
    def n_sites(self) -> int:
        """Number of lattice sites ``nx·ny·nz``."""
        return self.nx * self.ny * self.nz

    @property
    def spacing_m(self) -> float:
        """Lattice spacing in m."""
        return self.spacing_nm * 1e-9

    @property
    def cell_volume_m3(self) -> float:
        """Volume of the sites, ``nx·ny·nz·a³``, in m³."""
        return self.n_sites * self.spacing_m**3

    @property
    def n_ions_resolved(self) -> int:
        """Number of mobile ions (from ``n_ions`` or the concentration)."""
        if self.n_ions is not None:
            return int(self.n_ions)
        return round(self.concentration_cm3 / CM3_TO_M3 * self.cell_volume_m3)

    @property
    def filling(self) -> float:
        """Mean site occupancy ``theta0 = N / n_sites``."""
        return self.n_ions_resolved / self.n_sites

    @property
    def bulk_concentration_m3(self) -> float:
        """Actual bulk concentration ``N / (n_sites a³)`` in m^-3 (after rounding N)."""
        return self.n_ions_resolved / self.cell_volume_m3

    @property
    def gap_m(self) -> float:
        """Distance between the electrode planes, ``(nz+1)·a``, in m."""
        return (self.nz + 1) * self.spacing_m

    @property
    def area_m2(self) -> float:
        """Lateral area ``nx·ny·a²`` in m²."""
        return self.nx * self.ny * self.spacing_m**2

    @property
    def coulomb_scale_V(self) -> float:
        """``e / (eps0 epsr a)`` in V: the lattice Green's function times this is a potential."""
        return ELEMENTARY_CHARGE_C / (VACUUM_PERMITTIVITY_F_M * self.permittivity * self.spacing_m)

    def hop_rate_Hz(self, temperature_K: float | None = None) -> float:
        """Bare hop rate per neighbour ``nu0 exp(-Ea/kT)`` in Hz."""
        t = self.temperature_K.values[0] if temperature_K is None else temperature_K
        return self.attempt_frequency_Hz * math.exp(-self.activation_energy_eV / thermal_energy_eV(t))

    def replace(self, **changes: Any) -> KMCConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return a plain, YAML-ready mapping that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Schedule):
                v = v.values[0] if len(v.values) == 1 else v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KMCConfig:
        """Build a config from a mapping, rejecting unknown keys by name."""
        if not isinstance(data, Mapping):
            raise ConfigTypeError(f"a kMC config must be a mapping of parameters, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise unknown_keys_error(unknown, sorted(known), "kMC parameter(s)")
        return cls(**dict(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> KMCConfig:
        """Read a config from a YAML file."""
        return cls.from_dict(read_yaml_mapping(path, "config file"))

    def to_yaml(self) -> str:
        """Return the YAML form of this config."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _as_int(name: str, value: Any, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigTypeError(f"{name}={value!r} is not allowed: expected an integer.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise param_error(name, value, f"an integer >= {minimum}")
    return value


def _as_float(name: str, value: Any, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads "3e18" (no dot) as a string
            except ValueError:
                raise ConfigTypeError(f"{name}={value!r} is not allowed: expected a number.") from None
        else:
            raise ConfigTypeError(f"{name}={value!r} is not allowed: expected a number.")
    value = float(value)
    if not math.isfinite(value):
        raise param_error(name, value, "a finite number")
    if positive and not value > 0:
        raise param_error(name, value, "a positive number")
    if nonnegative and value < 0:
        raise param_error(name, value, "a number >= 0")
    return value


def seed_case_config() -> KMCConfig:
    """Return the built-in seed case (same as ``examples/kmc_seed_case.yaml``).

    epsr = 100, c0 = 3e18 cm^-3, 0.5 V, 300 K, 100 nm between the electrodes (99 layers of
    20 × 20 sites at a = 1 nm, about 120 ions), records on a log grid of 61 times from 10 ns to
    100 µs (the last decade is the steady state, see ``docs/validation.md``), (x, z) maps
    recorded. One replica (6.3e6 events) takes about half a minute on one core.
    """
    return KMCConfig(
        nx=20,
        ny=20,
        nz=99,
        spacing_nm=1.0,
        concentration_cm3=3e18,
        permittivity=100.0,
        voltage_V=0.5,
        temperature_K=300.0,
        disorder_eV=0.0,
        attempt_frequency_Hz=1e13,
        activation_energy_eV=0.3,
        rate_rule="symmetric",
        coulomb=True,
        self_image=True,
        output_times_s={"kind": "log", "start": 1e-8, "stop": 1e-4, "num": 61},
        record_xz=True,
    )
