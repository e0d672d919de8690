"""The sweep specification: a frozen, validated description of a parameter sweep.

A spec names the swept parameters (kMC parameters and protocol descriptors, each a fixed value,
a list of values or a range on a linear or log scale), how points are drawn from that space
(full grid, Latin hypercube or Sobol with a seed), the base kMC configuration every point starts
from, the replicas per point, and whether the continuum twin runs alongside. YAML is read and
written through :meth:`SweepSpec.from_dict` and :meth:`SweepSpec.to_dict`.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.schema import DEFAULT_QUANTILES
from ..errors import ConfigError, ConfigTypeError, param_error, read_yaml_mapping, unknown_keys_error
from ..kmc.config import KMCConfig, seed_case_config

__all__ = ["FIXED_PER_SWEEP", "PROTOCOL_DESCRIPTORS", "SAMPLING_METHODS", "SWEEPABLE", "Parameter", "SweepSpec"]

SAMPLING_METHODS = ("grid", "lhs", "sobol")
SCALES = ("linear", "log")

#: kMC parameters that may vary from point to point, with their allowed sign.
KMC_PARAMETERS = {
    "permittivity": "positive",
    "concentration_cm3": "positive",
    "voltage_V": "any",
    "temperature_K": "positive",
    "disorder_eV": "nonnegative",
    "activation_energy_eV": "nonnegative",
    "attempt_frequency_Hz": "positive",
}

#: Protocol descriptors, mapped to the voltage and temperature schedules of each point.
PROTOCOL_DESCRIPTORS = {
    "voltage_on_s": "nonnegative",  # V = 0 before this time
    "voltage_rise_time_s": "nonnegative",  # linear rise 0 -> voltage_V over this time (0: a step)
    "voltage_ramp_rate_V_s": "positive",  # the same rise given as a rate: rise time = |voltage_V| / rate
    "temperature_rate_K_s": "any",  # T(t) = temperature_K + rate * t up to the last output time
}

SWEEPABLE = {**KMC_PARAMETERS, **PROTOCOL_DESCRIPTORS}

#: kMC settings that every point of a sweep shares, with the reason.
FIXED_PER_SWEEP = {
    "nx": "the lattice shape",
    "ny": "the lattice shape",
    "nz": "the lattice shape (and so the z grid)",
    "spacing_nm": "the lattice spacing (and so the z grid)",
    "output_times_s": "the output times (the time grid)",
    "record_xz": "the recorded variables",
    "n_ions": "the ion number (sweep concentration_cm3 instead)",
    "rate_rule": "the rate rule",
    "coulomb": "the energy model",
    "self_image": "the energy model",
    "recompute_interval": "the numerical settings",
}

_TOP_KEYS = ("name", "seed", "sampling", "parameters", "kmc", "continuum", "store_replicas", "protocol_steps")
_SAMPLING_KEYS = ("method", "n_points")
_KMC_KEYS = ("base", "replicas", "output_times_s", "quantiles")
_PARAM_KEYS = ("values", "min", "max", "scale", "num")


def _check_keys(section: str, data: Any, allowed: Sequence[str]) -> dict[str, Any]:
    """Return ``data`` as a dict, rejecting a non-mapping or unknown keys with suggestions."""
    if not isinstance(data, Mapping):
        raise ConfigTypeError(f"{section} must be a mapping of keys to values, got {type(data).__name__}.")
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        raise unknown_keys_error(unknown, allowed, f"key(s) in {section}")
    return dict(data)


def _number(name: str, value: Any) -> float:
    """Return a finite float from a number or a numeric string (YAML reads ``3e18`` as a string)."""
    if isinstance(value, bool):
        raise ConfigTypeError(f"{name}={value!r} is not allowed: expected a number.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"{name}={value!r} is not allowed: expected a number.") from None
    if not math.isfinite(out):
        raise param_error(name, value, "a finite number")
    return out


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigTypeError(f"{name}={value!r} is not allowed: expected an integer.")
    if int(value) < minimum:
        raise param_error(name, value, f"an integer >= {minimum}")
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigTypeError(f"{name}={value!r} is not allowed: expected true or false.")
    return value


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: a list of values or a range.

    Parameters
    ----------
    name : str
        A kMC parameter (``permittivity``, ``concentration_cm3``, ``voltage_V``, ``temperature_K``,
        ``disorder_eV``, ``activation_energy_eV``, ``attempt_frequency_Hz``) or a protocol
        descriptor (``voltage_on_s``, ``voltage_rise_time_s``, ``voltage_ramp_rate_V_s``,
        ``temperature_rate_K_s``); units as in the name.
    values : sequence of float, optional
        Explicit values (a grid axis; for Latin hypercube and Sobol sampling, levels drawn with
        equal probability). One value fixes the parameter for every point.
    min, max : float, optional
        Bounds of a range (``min < max``), used when ``values`` is not given.
    scale : {"linear", "log"}
        Scale of the range (``log`` needs ``min > 0``).
    num : int, optional
        Number of grid values over the range (grid sampling only).
    """

    name: str
    values: tuple[float, ...] | None = None
    min: float | None = None
    max: float | None = None
    scale: str = "linear"
    num: int | None = None

    def __post_init__(self) -> None:
        name = self.name
        if name not in SWEEPABLE:
            if name in FIXED_PER_SWEEP:
                raise ConfigError(
                    f"parameters.{name} cannot be swept: every point of a sweep shares {FIXED_PER_SWEEP[name]}, "
                    f"so that all points have the same time and z grids. Set {name} once in kmc.base"
                    + (" (or kmc.output_times_s)." if name == "output_times_s" else ".")
                )
            m = difflib.get_close_matches(name, list(SWEEPABLE), 1)
            hint = f" (did you mean {m[0]!r}?)" if m else ""
            raise ConfigError(f"unknown parameter {name!r}{hint} in parameters. Sweepable: {', '.join(SWEEPABLE)}.")
        key = f"parameters.{name}"
        if self.scale not in SCALES:
            raise param_error(f"{key}.scale", self.scale, "'linear' or 'log'")
        domain = SWEEPABLE[name]
        if self.values is not None:
            if self.min is not None or self.max is not None or self.num is not None:
                raise param_error(key, self.to_dict(), "either 'values' or a range 'min'/'max' (with 'num'), not both")
            if isinstance(self.values, str | bytes) or not isinstance(self.values, Sequence) or not self.values:
                raise param_error(f"{key}.values", self.values, "a non-empty list of numbers")
            vals = tuple(_number(f"{key}.values", v) for v in self.values)
            if len(set(vals)) != len(vals):
                raise param_error(f"{key}.values", list(vals), "distinct values")
            for v in vals:
                _check_domain(f"{key}.values", v, domain)
            object.__setattr__(self, "values", vals)
            return
        if self.min is None or self.max is None:
            raise param_error(key, self.to_dict(), "a list of values, or a range with both 'min' and 'max'")
        lo, hi = _number(f"{key}.min", self.min), _number(f"{key}.max", self.max)
        if not lo < hi:
            raise param_error(f"{key}.max", hi, f"a value above min={lo}", "For a single value write the number.")
        _check_domain(f"{key}.min", lo, domain)
        if self.scale == "log" and not lo > 0:
            raise param_error(f"{key}.min", lo, "a positive bound on a log scale", "Use scale: linear.")
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)
        if self.num is not None:
            object.__setattr__(self, "num", _integer(f"{key}.num", self.num, 2))

    @property
    def is_range(self) -> bool:
        """Whether the parameter is a continuous range (no explicit values)."""
        return self.values is None

    @property
    def is_fixed(self) -> bool:
        """Whether the parameter has a single value (it is not a dimension of the design)."""
        return self.values is not None and len(self.values) == 1

    @property
    def representative(self) -> float:
        """A typical value: the first value, or the middle of the range (geometric on a log scale)."""
        if self.values is not None:
            return self.values[0]
        if self.scale == "log":
            return math.sqrt(self.min * self.max)
        return 0.5 * (self.min + self.max)

    def grid_values(self) -> tuple[float, ...]:
        """Values along a grid axis: the explicit values, or ``num`` values over the range."""
        if self.values is not None:
            return self.values
        if self.num is None:
            raise param_error(
                f"parameters.{self.name}",
                self.to_dict(),
                "explicit 'values' or a range with 'num' for grid sampling",
                "Add num: N, or use sampling method lhs or sobol.",
            )
        if self.scale == "log":
            return tuple(float(v) for v in np.geomspace(self.min, self.max, self.num))
        return tuple(float(v) for v in np.linspace(self.min, self.max, self.num))

    def from_unit(self, u: Any) -> Any:
        """Map uniform samples ``u`` in [0, 1) to parameter values.

        A range maps linearly (or log-linearly) onto ``[min, max]``; a list of ``k`` values maps
        ``u`` to level ``floor(u k)``, so each value has probability ``1/k``.
        """
        u = np.asarray(u, dtype=float)
        if self.values is not None:
            levels = np.asarray(self.values)
            return levels[np.minimum((u * len(levels)).astype(int), len(levels) - 1)]
        if self.scale == "log":
            return np.exp(np.log(self.min) + u * (np.log(self.max) - np.log(self.min)))
        return self.min + u * (self.max - self.min)

    def to_dict(self) -> Any:
        """Plain YAML form: a number, ``{"values": [...]}`` or a range mapping."""
        if self.values is not None:
            return self.values[0] if len(self.values) == 1 else {"values": list(self.values)}
        out: dict[str, Any] = {"min": self.min, "max": self.max, "scale": self.scale}
        if self.num is not None:
            out["num"] = self.num
        return out

    @classmethod
    def from_spec(cls, name: str, spec: Any) -> Parameter:
        """Build from the YAML form: a number, a list, or a mapping with values or a range."""
        key = f"parameters.{name}"
        if isinstance(spec, Mapping):
            data = _check_keys(key, spec, _PARAM_KEYS)
            if "values" in data and not isinstance(data["values"], Sequence | type(None)):
                data["values"] = [data["values"]]
            return cls(name=name, **data)
        if isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
            return cls(name=name, values=tuple(spec))
        return cls(name=name, values=(_number(key, spec),))


def _check_domain(key: str, value: float, domain: str) -> None:
    if domain == "positive" and not value > 0:
        raise param_error(key, value, "a positive number")
    if domain == "nonnegative" and value < 0:
        raise param_error(key, value, "a number >= 0")


@dataclass(frozen=True)
class SweepSpec:
    """A parameter sweep of kMC ensembles (and optionally their continuum twins).

    Parameters
    ----------
    parameters : sequence of Parameter
        The swept parameters, in order (the first varies slowest on a grid; the order fixes the
        dimensions of Latin hypercube and Sobol designs).
    base : KMCConfig
        The configuration every point starts from; its lattice, spacing and output times are
        shared by all points.
    replicas : int
        Independent kMC replicas per point.
    sampling : {"grid", "lhs", "sobol"}
        Full grid of the parameter values, Latin hypercube or scrambled Sobol sequence.
    n_points : int, optional
        Number of points (Latin hypercube and Sobol only; a power of 2 keeps Sobol balanced).
    seed : int
        Seed of the design (Latin hypercube, Sobol) and root of every point's seed.
    quantiles : sequence of float
        Quantile levels of the ensemble statistics.
    continuum : bool
        Also solve the continuum twin (:func:`surrodyn.continuum.solve_mpnp`) at every point.
    store_replicas : bool
        Keep every replica's fields in the point files, not only the ensemble statistics.
    protocol_steps : int
        Fine steps of a voltage rise or a temperature ramp (piecewise-constant schedules).
    name : str
        A label stored with the results.

    Notes
    -----
    Protocol descriptors map to the schedules of a point as follows (``V`` is ``voltage_V``,
    ``T0`` is ``temperature_K``, ``t_end`` the last output time):

    - ``voltage_on_s = t_on``: ``V(t) = 0`` for ``t < t_on``;
    - ``voltage_rise_time_s = tau`` (or ``voltage_ramp_rate_V_s = r``, ``tau = |V|/r``): ``V(t)``
      rises linearly from 0 to ``V`` over ``[t_on, t_on + tau)``; without either, a step;
    - ``temperature_rate_K_s = r``: ``T(t) = T0 + r t`` on ``[0, t_end)``, then ``T0 + r t_end``.

    Ramps are ``protocol_steps`` fine steps (:func:`surrodyn.protocols.ramp`).
    """

    parameters: tuple[Parameter, ...]
    base: KMCConfig = field(default_factory=seed_case_config)
    replicas: int = 4
    sampling: str = "grid"
    n_points: int | None = None
    seed: int = 0
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    continuum: bool = False
    store_replicas: bool = False
    protocol_steps: int = 50
    name: str = "sweep"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        params = tuple(self.parameters)
        if not params or not all(isinstance(p, Parameter) for p in params):
            raise param_error("parameters", params, "at least one parameter, e.g. voltage_V: {min: 0.1, max: 1.0}")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise param_error("parameters", names, "each parameter named once")
        set_(self, "parameters", params)
        if not isinstance(self.base, KMCConfig):
            raise ConfigTypeError(f"kmc.base must be a KMCConfig, got {type(self.base).__name__}.")
        set_(self, "replicas", _integer("kmc.replicas", self.replicas, 1))
        set_(self, "seed", _integer("seed", self.seed, 0))
        set_(self, "protocol_steps", _integer("protocol_steps", self.protocol_steps, 1))
        for flag in ("continuum", "store_replicas"):
            set_(self, flag, _flag(flag, getattr(self, flag)))
        if not isinstance(self.name, str) or not self.name:
            raise param_error("name", self.name, "a non-empty string")
        q = self.quantiles
        if isinstance(q, str) or not isinstance(q, Sequence) or not q:
            raise param_error("kmc.quantiles", q, "a non-empty list of levels strictly between 0 and 1")
        q = tuple(_number("kmc.quantiles", x) for x in q)
        if any(not 0 < x < 1 for x in q) or list(q) != sorted(set(q)):
            raise param_error("kmc.quantiles", list(q), "increasing, distinct levels strictly between 0 and 1")
        set_(self, "quantiles", q)
        self._check_sampling()
        self._check_protocols()

    def _check_sampling(self) -> None:
        if self.sampling not in SAMPLING_METHODS:
            raise param_error("sampling.method", self.sampling, f"one of {', '.join(SAMPLING_METHODS)}")
        if self.sampling == "grid":
            if self.n_points is not None:
                raise param_error(
                    "sampling.n_points",
                    self.n_points,
                    "no n_points for grid sampling (the grid's size is the product of the value counts)",
                    "Remove n_points, or use method lhs or sobol.",
                )
            for p in self.parameters:
                p.grid_values()  # raises, naming the parameter, for a range without num
            return
        if self.n_points is None:
            raise param_error(
                "sampling.n_points", None, f"the number of points for {self.sampling} sampling, e.g. n_points: 32"
            )
        object.__setattr__(self, "n_points", _integer("sampling.n_points", self.n_points, 1))
        for p in self.parameters:
            if p.num is not None:
                raise param_error(
                    f"parameters.{p.name}.num",
                    p.num,
                    f"no num with {self.sampling} sampling (ranges are sampled continuously)",
                    "Remove num, or use method grid.",
                )

    def _check_protocols(self) -> None:
        names = set(self.parameter_names)
        base = self.base
        if "concentration_cm3" in names and base.n_ions is not None:
            raise param_error(
                "kmc.base.n_ions",
                base.n_ions,
                "no n_ions when concentration_cm3 is swept (n_ions overrides the concentration)",
                "Remove n_ions from kmc.base.",
            )
        if "voltage_rise_time_s" in names and "voltage_ramp_rate_V_s" in names:
            raise ConfigError(
                "parameters voltage_rise_time_s and voltage_ramp_rate_V_s describe the same rise: give only one."
            )
        for quantity, descriptors in (
            ("voltage_V", ("voltage_on_s", "voltage_rise_time_s", "voltage_ramp_rate_V_s")),
            ("temperature_K", ("temperature_rate_K_s",)),
        ):
            used = [n for n in (quantity, *descriptors) if n in names]
            schedule = getattr(base, quantity)
            if used and not schedule.is_constant:
                raise param_error(
                    f"kmc.base.{quantity}",
                    schedule.to_dict(),
                    f"a number when {', '.join(used)} is swept (the sweep builds the schedule)",
                    f"Set kmc.base.{quantity} to a number, or describe the protocol with the sweep's descriptors.",
                )

    # ------------------------------------------------------------------ derived
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the swept parameters, in order."""
        return tuple(p.name for p in self.parameters)

    @property
    def size(self) -> int:
        """Number of points of the design."""
        if self.sampling == "grid":
            return math.prod(len(p.grid_values()) for p in self.parameters)
        return int(self.n_points)

    def fingerprint(self) -> str:
        """Hash the canonical YAML (16 hex digits): equal fingerprints mean the same sweep."""
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the canonical, self-contained mapping (the base config inlined)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "sampling": {"method": self.sampling, "n_points": self.n_points},
            "parameters": {p.name: p.to_dict() for p in self.parameters},
            "kmc": {"base": self.base.to_dict(), "replicas": self.replicas, "quantiles": list(self.quantiles)},
            "continuum": self.continuum,
            "store_replicas": self.store_replicas,
            "protocol_steps": self.protocol_steps,
        }

    def to_yaml(self) -> str:
        """Return the canonical YAML form (what a store keeps as ``spec.yaml``)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> SweepSpec:
        """Build a spec from its mapping form, rejecting unknown keys by name.

        Parameters
        ----------
        data : mapping
            Keys ``name``, ``seed``, ``sampling`` (``method``, ``n_points``), ``parameters``,
            ``kmc`` (``base``: a mapping or the path of a kMC YAML; ``replicas``;
            ``output_times_s`` overriding the base's; ``quantiles``), ``continuum``,
            ``store_replicas``, ``protocol_steps``.
        base_dir : str or Path, optional
            Directory against which a relative ``kmc.base`` path is resolved (default: the
            current directory; :meth:`from_yaml` uses the spec file's directory).

        Returns
        -------
        SweepSpec
        """
        data = _check_keys("the sweep spec", data, _TOP_KEYS)
        kwargs: dict[str, Any] = {}
        for key in ("name", "seed", "continuum", "store_replicas", "protocol_steps"):
            if key in data:
                kwargs[key] = data[key]
        sampling = data.get("sampling", "grid")
        if isinstance(sampling, str):
            sampling = {"method": sampling}
        sampling = _check_keys("sampling", sampling, _SAMPLING_KEYS)
        kwargs["sampling"] = sampling.get("method", "grid")
        kwargs["n_points"] = sampling.get("n_points")
        if "parameters" not in data:
            raise ConfigError("the sweep spec needs 'parameters': a mapping of parameter names to values or ranges.")
        params = data["parameters"]
        if not isinstance(params, Mapping):
            raise ConfigTypeError(
                f"parameters must be a mapping of parameter names to values or ranges, got {type(params).__name__}."
            )
        kwargs["parameters"] = tuple(Parameter.from_spec(str(n), s) for n, s in params.items())
        kmc = _check_keys("kmc", data.get("kmc") or {}, _KMC_KEYS)
        kwargs["base"] = _base_config(kmc.get("base"), kmc.get("output_times_s"), base_dir, kwargs["parameters"])
        if "replicas" in kmc:
            kwargs["replicas"] = kmc["replicas"]
        if "quantiles" in kmc:
            kwargs["quantiles"] = kmc["quantiles"]
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        """Read a spec from a YAML file (a relative ``kmc.base`` path is relative to the file)."""
        return cls.from_dict(read_yaml_mapping(path, "sweep spec"), base_dir=Path(path).parent)


def _base_config(
    base: Any, output_times: Any, base_dir: str | Path | None, parameters: Sequence[Parameter] = ()
) -> KMCConfig:
    """Build the base kMC config from a mapping or a YAML path, with the output times overridden.

    A swept kMC parameter that the base does not set takes a value of the sweep (the first
    value, or the middle of the range), so that the base is a valid config on its own whatever
    the defaults; every point replaces it anyway.
    """
    where = "kmc.base"
    if base is None:
        data, explicit = seed_case_config().to_dict(), set()
    elif isinstance(base, str | Path):
        import yaml

        path = Path(base).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        where = f"kmc.base ({path})"
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise param_error(
                "kmc.base", str(base), "an inline mapping or the path of a kMC YAML file", f"{path}: {exc.strerror}."
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigTypeError(f"{where} must hold a mapping of kMC parameters, got {type(data).__name__}.")
        data = dict(data)
        explicit = set(data)
    elif isinstance(base, Mapping):
        data = dict(base)
        explicit = set(data)
    else:
        raise param_error("kmc.base", base, "an inline mapping of kMC parameters or the path of a kMC YAML file")
    if output_times is not None:
        data["output_times_s"] = output_times
    for p in parameters:
        if p.name in KMC_PARAMETERS and p.name not in explicit:
            data[p.name] = p.representative
    try:
        return KMCConfig.from_dict(data)
    except (ConfigError, ConfigTypeError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
