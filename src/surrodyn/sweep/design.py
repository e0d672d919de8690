"""The design of a sweep: the parameter table, the seed of each point and its kMC configuration.

Everything here is a pure function of the spec and the point index, so a point's result does
not depend on the order in which points run or on the worker that runs them.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..kmc.config import KMCConfig
from ..protocols import Schedule, constant, ramp, step
from .spec import SweepSpec

__all__ = ["parameter_table", "point_config", "point_seed", "unit_samples"]

# swept kMC parameters that are copied as they are (voltage and temperature become schedules)
_PLAIN_KMC = ("permittivity", "concentration_cm3", "disorder_eV", "activation_energy_eV", "attempt_frequency_Hz")


def unit_samples(method: str, n_points: int, dims: int, seed: int) -> np.ndarray:
    """Draw a space-filling design on the unit cube.

    Parameters
    ----------
    method : {"lhs", "sobol"}
        Latin hypercube (:class:`scipy.stats.qmc.LatinHypercube`) or scrambled Sobol sequence
        (:class:`scipy.stats.qmc.Sobol`).
    n_points : int
        Number of points.
    dims : int
        Dimension of the cube (0 gives an empty design of ``n_points`` rows).
    seed : int
        Seed of the design's ``numpy.random.Generator``.

    Returns
    -------
    ndarray, shape (n_points, dims)
        Samples in [0, 1).
    """
    if dims == 0:
        return np.empty((n_points, 0))
    from scipy.stats import qmc

    rng = np.random.default_rng(seed)
    cls = {"lhs": qmc.LatinHypercube, "sobol": qmc.Sobol}.get(method)
    if cls is None:
        raise ConfigError(f"sampling method={method!r} is not allowed: expected 'lhs' or 'sobol'.")
    try:
        sampler = cls(dims, rng=rng)
    except TypeError:  # SciPy < 1.15 calls it seed
        sampler = cls(dims, seed=rng)
    with warnings.catch_warnings():
        # Sobol' balance is best for n a power of 2; other n are allowed (documented)
        warnings.filterwarnings("ignore", message=".*balance properties of Sobol.*", category=UserWarning)
        return np.asarray(sampler.random(n_points), dtype=float)


def parameter_table(spec: SweepSpec) -> dict[str, np.ndarray]:
    """Tabulate the value of every swept parameter at every point.

    Parameters
    ----------
    spec : SweepSpec
        The sweep.

    Returns
    -------
    dict of str to ndarray, shape (n_points,)
        Parameter values in the spec's order. A grid is the Cartesian product of the parameters'
        values, the first parameter varying slowest. Latin hypercube and Sobol designs have one
        dimension per parameter that is not fixed to a single value, mapped by
        :meth:`Parameter.from_unit`.
    """
    if spec.sampling == "grid":
        axes = [p.grid_values() for p in spec.parameters]
        rows = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(axes))
        return {p.name: rows[:, k].copy() for k, p in enumerate(spec.parameters)}
    n = int(spec.n_points)
    free = [p for p in spec.parameters if not p.is_fixed]
    u = unit_samples(spec.sampling, n, len(free), spec.seed)
    table: dict[str, np.ndarray] = {}
    k = 0
    for p in spec.parameters:
        if p.is_fixed:
            table[p.name] = np.full(n, p.values[0])
        else:
            table[p.name] = np.asarray(p.from_unit(u[:, k]), dtype=float)
            k += 1
    return table


def point_seed(seed: int, index: int) -> int:
    """Derive the root seed of point ``index``'s ensemble from the sweep seed.

    Child ``index`` of ``numpy.random.SeedSequence(seed)`` (as ``spawn`` would make it),
    reduced to a 63-bit integer: independent of the number of points, of their order and of
    the worker that runs them.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(index),))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def point_config(spec: SweepSpec, params: Mapping[str, float]) -> KMCConfig:
    """Build the kMC configuration of one point: the base config with the point's parameters.

    Parameters
    ----------
    spec : SweepSpec
        The sweep (base config, protocol steps).
    params : mapping of str to float
        The point's parameter values (a row of :func:`parameter_table`).

    Returns
    -------
    KMCConfig
        Validated; a point whose parameters make an invalid config raises :class:`ConfigError`
        (the sweep records it as a failed point).

    Notes
    -----
    See :class:`SweepSpec` for how the protocol descriptors become schedules.
    """
    base = spec.base
    changes: dict[str, Any] = {k: float(v) for k, v in params.items() if k in _PLAIN_KMC}
    n = spec.protocol_steps
    volt_keys = ("voltage_V", "voltage_on_s", "voltage_rise_time_s", "voltage_ramp_rate_V_s")
    if any(k in params for k in volt_keys):
        changes["voltage_V"] = _voltage_schedule(
            float(params.get("voltage_V", base.voltage_V.values[0])),
            on_s=float(params.get("voltage_on_s", 0.0)),
            rise_s=params.get("voltage_rise_time_s"),
            rate_V_s=params.get("voltage_ramp_rate_V_s"),
            n_steps=n,
        )
    if "temperature_K" in params or "temperature_rate_K_s" in params:
        t0 = float(params.get("temperature_K", base.temperature_K.values[0]))
        rate = float(params.get("temperature_rate_K_s", 0.0))
        changes["temperature_K"] = _temperature_schedule(t0, rate, base.output_times_s[-1], n)
    return base.replace(**changes)


def _voltage_schedule(
    volts: float, on_s: float, rise_s: float | None, rate_V_s: float | None, n_steps: int
) -> Schedule:
    if rate_V_s is not None:
        rise_s = abs(volts) / float(rate_V_s)
    rise = 0.0 if rise_s is None else float(rise_s)
    if rise > 0:
        return ramp(0.0, volts, on_s, on_s + rise, n_steps=n_steps, name="voltage_V")
    if on_s > 0:
        return step(0.0, volts, at_s=on_s, name="voltage_V")
    return constant(volts, "voltage_V")


def _temperature_schedule(t0: float, rate_K_s: float, t_end_s: float, n_steps: int) -> Schedule:
    if rate_K_s == 0:
        return constant(t0, "temperature_K")
    if not t_end_s > 0:
        raise ConfigError(
            f"temperature_rate_K_s={rate_K_s!r} needs a last output time > 0 to ramp over, got {t_end_s!r}."
        )
    return ramp(t0, t0 + rate_K_s * t_end_s, 0.0, t_end_s, n_steps=n_steps, name="temperature_K")
