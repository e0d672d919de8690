"""Piecewise-constant schedules of applied voltage and temperature.

Shared by the kMC engine, the continuum twin and the surrogate's known-future covariates.
A :class:`Schedule` holds breakpoints ``t_0 = 0 < t_1 < ... < t_{n-1}`` and values
``v_0, ..., v_{n-1}``; the value is ``v_k`` on ``[t_k, t_{k+1})``. A kMC driver stops at
every breakpoint and redraws its waiting time, which is exact because the waiting time of a
Poisson process is memoryless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from .errors import ConfigError, param_error

__all__ = ["Schedule", "constant", "ramp", "schedule_from_spec", "square_wave", "step"]


@dataclass(frozen=True)
class Schedule:
    """A piecewise-constant function of time.

    Parameters
    ----------
    times_s : sequence of float
        Breakpoints in seconds; the first must be 0 and they must increase strictly.
    values : sequence of float
        Value on each interval ``[times_s[k], times_s[k+1])``; the last holds forever.
    name : str
        Name used in error messages (e.g. ``"voltage_V"``).
    """

    times_s: tuple[float, ...]
    values: tuple[float, ...]
    name: str = "schedule"

    def __post_init__(self) -> None:
        t = tuple(float(x) for x in self.times_s)
        v = tuple(float(x) for x in self.values)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)
        if len(t) == 0 or len(t) != len(v):
            raise param_error(
                f"{self.name}.times_s",
                self.times_s,
                f"a non-empty list as long as {self.name}.values ({len(v)} values)",
            )
        if t[0] != 0.0:
            raise param_error(f"{self.name}.times_s[0]", t[0], "0.0 (schedules start at t = 0)")
        if any(not math.isfinite(x) for x in t + v):
            raise param_error(self.name, (t, v), "finite numbers only")
        if any(b <= a for a, b in pairwise(t)):
            raise param_error(f"{self.name}.times_s", t, "strictly increasing breakpoints")

    @property
    def is_constant(self) -> bool:
        """Whether the schedule never changes its value."""
        return all(x == self.values[0] for x in self.values)

    def __call__(self, t_s: float | np.ndarray) -> float | np.ndarray:
        """Evaluate the schedule at time(s) ``t_s`` (right-continuous)."""
        idx = np.searchsorted(np.asarray(self.times_s), t_s, side="right") - 1
        vals = np.asarray(self.values)[np.clip(idx, 0, None)]
        return float(vals) if np.ndim(vals) == 0 else vals

    def next_breakpoint(self, t_s: float) -> float:
        """Return the first breakpoint strictly after ``t_s`` (``inf`` if none)."""
        k = int(np.searchsorted(np.asarray(self.times_s), t_s, side="right"))
        return self.times_s[k] if k < len(self.times_s) else math.inf

    def to_dict(self) -> dict[str, list[float]]:
        """Return the plain mapping form ``{"times_s": [...], "values": [...]}``."""
        return {"times_s": list(self.times_s), "values": list(self.values)}


def constant(value: float, name: str = "schedule") -> Schedule:
    """Return a schedule holding ``value`` forever."""
    return Schedule((0.0,), (value,), name)


def step(before: float, after: float, at_s: float, name: str = "schedule") -> Schedule:
    """Return a step from ``before`` to ``after`` at time ``at_s`` (> 0)."""
    if not at_s > 0:
        raise param_error(f"{name}.at_s", at_s, "a positive time in seconds")
    return Schedule((0.0, at_s), (before, after), name)


def ramp(
    start: float,
    stop: float,
    t_start_s: float,
    t_stop_s: float,
    n_steps: int = 50,
    name: str = "schedule",
) -> Schedule:
    """Return a linear ramp from ``start`` to ``stop`` as ``n_steps`` fine steps.

    The value is ``start`` before ``t_start_s``, and on each of the ``n_steps`` equal
    sub-intervals of ``[t_start_s, t_stop_s)`` the ramp's value at the sub-interval's
    midpoint; ``stop`` from ``t_stop_s`` on.
    """
    if not 0 <= t_start_s < t_stop_s:
        raise param_error(f"{name}.t_stop_s", t_stop_s, f"a time after t_start_s={t_start_s} >= 0")
    if int(n_steps) < 1:
        raise param_error(f"{name}.n_steps", n_steps, "an integer >= 1")
    edges = np.linspace(t_start_s, t_stop_s, int(n_steps) + 1)
    mids = 0.5 * (edges[:-1] + edges[1:])
    vals = start + (stop - start) * (mids - t_start_s) / (t_stop_s - t_start_s)
    times = [*edges[:-1], t_stop_s]
    values = [*vals, stop]
    if t_start_s > 0:
        times = [0.0, *times]
        values = [start, *values]
    return Schedule(tuple(times), tuple(values), name)


def square_wave(
    low: float,
    high: float,
    period_s: float,
    n_periods: int,
    duty: float = 0.5,
    name: str = "schedule",
) -> Schedule:
    """Return ``n_periods`` cycles of ``high`` (first ``duty`` of a period) then ``low``.

    After the last period the value stays ``low``.
    """
    if not period_s > 0:
        raise param_error(f"{name}.period_s", period_s, "a positive period in seconds")
    if not 0 < duty < 1:
        raise param_error(f"{name}.duty", duty, "a fraction strictly between 0 and 1")
    if int(n_periods) < 1:
        raise param_error(f"{name}.n_periods", n_periods, "an integer >= 1")
    times: list[float] = []
    values: list[float] = []
    for k in range(int(n_periods)):
        times += [k * period_s, (k + duty) * period_s]
        values += [high, low]
    return Schedule(tuple(times), tuple(values), name)


_KINDS = {"constant": constant, "step": step, "ramp": ramp, "square_wave": square_wave}


def schedule_from_spec(spec: Any, name: str) -> Schedule:
    """Build a schedule from its YAML/dict form.

    Parameters
    ----------
    spec : float, Schedule or mapping
        A number (constant); a :class:`Schedule`; ``{"times_s": [...], "values": [...]}``;
        or ``{"kind": "step" | "ramp" | "square_wave" | "constant", ...}`` with the
        keyword arguments of the helper of that name.
    name : str
        Parameter name, for error messages.

    Returns
    -------
    Schedule
    """
    if isinstance(spec, Schedule):
        return Schedule(spec.times_s, spec.values, name)
    if isinstance(spec, bool):
        raise param_error(name, spec, "a number or a schedule mapping")
    if isinstance(spec, int | float):
        return constant(float(spec), name)
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "kind" in spec:
            kind = spec.pop("kind")
            if kind not in _KINDS:
                raise param_error(f"{name}.kind", kind, f"one of {sorted(_KINDS)}")
            try:
                return _KINDS[kind](**spec, name=name)
            except TypeError as exc:
                raise ConfigError(f"{name}: bad arguments for kind={kind!r}: {exc}") from None
        unknown = set(spec) - {"times_s", "values"}
        if unknown:
            raise param_error(name, spec, "keys 'times_s' and 'values', or a 'kind' with its arguments")
        if not isinstance(spec.get("times_s"), Sequence) or not isinstance(spec.get("values"), Sequence):
            raise param_error(name, spec, "lists 'times_s' and 'values'")
        return Schedule(tuple(spec["times_s"]), tuple(spec["values"]), name)
    raise param_error(name, spec, "a number or a schedule mapping")
