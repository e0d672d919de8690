"""Measured transients in: the charging charge or current of an experiment, with units and noise.

A measurement is a table of times and one observable, ``charge`` (electrode charge per area) or
``current`` (charging current per area), with an optional noise level per point, plus the
conditions it was taken under (applied voltage, temperature, any known material parameter).
CSV files carry units in the column headers and the conditions as ``# key: value`` lines::

    # voltage_V: 1.0
    # temperature_K: 300
    time [us], current [mA/cm^2], sigma [mA/cm^2]
    0.1, 52.3, 0.8
    ...

NetCDF files hold a ``time`` coordinate and one ``charge`` or ``current`` variable (and optionally
``sigma``), each with a ``units`` attribute; the conditions are global attributes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.io import atomic_write_bytes
from ..errors import ConfigError, param_error

__all__ = ["OBSERVABLES", "Experiment", "read_experiment", "unit_factor", "write_experiment"]

#: Observables a calibration can fit, with their SI unit.
OBSERVABLES = {"charge": "C/m^2", "current": "A/m^2"}

_UNITS: dict[str, tuple[str, float]] = {
    # time
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "µs": ("time", 1e-6),
    "ns": ("time", 1e-9),
    # charge per area
    "C/m^2": ("charge", 1.0),
    "C/m2": ("charge", 1.0),
    "C m-2": ("charge", 1.0),
    "mC/m^2": ("charge", 1e-3),
    "C/cm^2": ("charge", 1e4),
    "mC/cm^2": ("charge", 10.0),
    "uC/cm^2": ("charge", 1e-2),
    "µC/cm^2": ("charge", 1e-2),
    # current per area
    "A/m^2": ("current", 1.0),
    "A/m2": ("current", 1.0),
    "A m-2": ("current", 1.0),
    "A/cm^2": ("current", 1e4),
    "mA/cm^2": ("current", 10.0),
    "uA/cm^2": ("current", 1e-2),
    "µA/cm^2": ("current", 1e-2),
}
_NAMES = {"charge": "charge", "q": "charge", "sigma_el": "charge", "current": "current", "i": "current", "j": "current"}
_NOISE_NAMES = ("sigma", "noise", "std", "error", "uncertainty")


def unit_factor(unit: str, kind: str, column: str = "") -> float:
    """Factor converting a value in ``unit`` to SI, checking that the unit measures ``kind``.

    Parameters
    ----------
    unit : str
        Unit as written (``"mA/cm^2"``, ``"us"``, ...; ``²`` and ``**2`` are accepted for ``^2``).
    kind : {"time", "charge", "current"}
        What the column must measure.
    column : str
        Column name, for the error message.

    Returns
    -------
    float
        Multiply by it to get s, C/m² or A/m².
    """
    key = unit.strip().replace("²", "^2").replace("**2", "^2").replace("μ", "µ")
    if key not in _UNITS:
        accepted = sorted(u for u, (k, _) in _UNITS.items() if k == kind)
        raise ConfigError(f"column {column!r}: unknown unit {unit!r}; units of {kind} accepted: {accepted}.")
    got, factor = _UNITS[key]
    if got != kind:
        raise ConfigError(f"column {column!r} is a {kind} but its unit {unit!r} measures {got}.")
    return factor


@dataclass(frozen=True)
class Experiment:
    """A measured transient, in SI units.

    Parameters
    ----------
    observable : {"charge", "current"}
        ``charge``: electrode charge per area (C/m²) of the electrode held at ``V`` (the anode
        for ``V > 0``); ``current``: its charging current (A/m²), each value the mean over the
        interval since the previous time (since 0 for the first), as an integrating ammeter
        reports it.
    time_s : numpy.ndarray
        Strictly increasing positive times since the voltage was applied.
    value : numpy.ndarray
        The observable at those times.
    sigma : numpy.ndarray or None
        Standard deviation of the measurement noise per point (same unit), if known.
    conditions : dict
        Known conditions and parameters by the surrogate's names (``voltage_V``,
        ``temperature_K``, ``permittivity``, ...).
    source : str
        Where it came from.
    """

    observable: str
    time_s: np.ndarray
    value: np.ndarray
    sigma: np.ndarray | None = None
    conditions: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if self.observable not in OBSERVABLES:
            raise param_error("observable", self.observable, f"one of {sorted(OBSERVABLES)}")
        t = np.asarray(self.time_s, dtype=float)
        y = np.asarray(self.value, dtype=float)
        if t.ndim != 1 or t.size < 3 or y.shape != t.shape:
            raise ConfigError(f"an experiment needs at least 3 (time, value) pairs; got {t.shape} and {y.shape}.")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
            raise ConfigError(f"{self.source or 'experiment'}: times and values must be finite (no NaN or empty).")
        if t[0] <= 0:
            raise ConfigError(f"{self.source or 'experiment'}: times must be positive (time since the voltage step).")
        bad = np.nonzero(np.diff(t) <= 0)[0]
        if bad.size:
            i = int(bad[0])
            raise ConfigError(
                f"{self.source or 'experiment'}: time is not strictly increasing at rows {i + 1}-{i + 2} "
                f"({t[i]:.6g} s then {t[i + 1]:.6g} s); sort the table or drop duplicates."
            )
        s = None
        if self.sigma is not None:
            s = np.broadcast_to(np.asarray(self.sigma, dtype=float), t.shape).copy()
            if not np.all(np.isfinite(s) & (s > 0)):
                raise ConfigError(f"{self.source or 'experiment'}: every noise level must be positive and finite.")
        conditions = {str(k): float(v) for k, v in dict(self.conditions).items()}
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "value", y)
        object.__setattr__(self, "sigma", s)
        object.__setattr__(self, "conditions", conditions)

    def with_conditions(self, **conditions: float) -> Experiment:
        """Return a copy with conditions added or replaced."""
        merged = {**self.conditions, **{k: float(v) for k, v in conditions.items()}}
        return Experiment(self.observable, self.time_s, self.value, self.sigma, merged, self.source)


def _split_header(col: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([^\[\(]+?)\s*[\[\(]\s*([^\]\)]+?)\s*[\]\)]\s*", col)
    if not m:
        raise ConfigError(f"column {col.strip()!r} has no unit: write it as 'name [unit]', e.g. 'time [s]'.")
    return m.group(1).strip().lower(), m.group(2)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray, dict[str, float]]:
    conditions: dict[str, float] = {}
    header: list[str] | None = None
    rows: list[list[float]] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            m = re.fullmatch(r"#\s*([A-Za-z_][\w]*)\s*[:=]\s*(\S+)\s*", text)
            if m:
                try:
                    conditions[m.group(1)] = float(m.group(2))
                except ValueError as exc:
                    msg = f"{path}:{n}: condition {m.group(1)!r} must be a number, got {m.group(2)!r}."
                    raise ConfigError(msg) from exc
            continue
        cells = [c.strip() for c in text.split(",")]
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            raise ConfigError(f"{path}:{n}: {len(cells)} values for {len(header)} columns.")
        try:
            rows.append([float(c) for c in cells])
        except ValueError as exc:
            raise ConfigError(f"{path}:{n}: not a number in {cells}.") from exc
    if header is None or not rows:
        raise ConfigError(f"{path}: no header and data rows found.")
    return header, np.array(rows), conditions


def _read_netcdf(path: Path) -> tuple[list[str], np.ndarray, dict[str, float]]:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        names = [v for v in ds.data_vars if str(v).lower() in _NAMES or str(v).lower() in _NOISE_NAMES]
        if "time" not in ds.coords and "time" not in ds:
            raise ConfigError(f"{path}: no 'time' coordinate.")
        cols = [f"time [{ds['time'].attrs.get('units', '')}]"]
        data = [np.asarray(ds["time"].values, dtype=float)]
        for v in names:
            cols.append(f"{v} [{ds[v].attrs.get('units', '')}]")
            data.append(np.asarray(ds[v].values, dtype=float))
        conditions = {str(k): float(v) for k, v in ds.attrs.items() if isinstance(v, int | float | np.number)}
    if any(c.endswith("[]") for c in cols):
        missing = [c[:-3] for c in cols if c.endswith("[]")]
        raise ConfigError(f"{path}: variables {missing} have no 'units' attribute.")
    return cols, np.stack(data, 1), conditions


def read_experiment(path: str | Path, conditions: Mapping[str, float] | None = None) -> Experiment:
    """Read a measured transient from CSV or NetCDF.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (header ``name [unit]``; ``# key: value`` condition lines) or ``.nc``.
    conditions : mapping, optional
        Known conditions that add to or override those in the file.

    Returns
    -------
    Experiment
        Values converted to SI.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experimental data {str(path)!r} does not exist.")
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        header, table, found = _read_netcdf(path)
    else:
        header, table, found = _read_csv(path)
    parsed = [_split_header(c) for c in header]
    time_cols = [i for i, (n, _) in enumerate(parsed) if n in ("time", "t")]
    obs_cols = [i for i, (n, _) in enumerate(parsed) if n in _NAMES]
    noise_cols = [i for i, (n, _) in enumerate(parsed) if n in _NOISE_NAMES]
    if len(time_cols) != 1:
        raise ConfigError(f"{path}: need exactly one 'time [unit]' column; columns are {header}.")
    if len(obs_cols) != 1:
        raise ConfigError(
            f"{path}: need exactly one observable column, 'charge [unit]' or 'current [unit]'; columns are {header}. "
            f"The surrogate produces {sorted(OBSERVABLES)}."
        )
    observable = _NAMES[parsed[obs_cols[0]][0]]
    t = table[:, time_cols[0]] * unit_factor(parsed[time_cols[0]][1], "time", header[time_cols[0]])
    y = table[:, obs_cols[0]] * unit_factor(parsed[obs_cols[0]][1], observable, header[obs_cols[0]])
    sigma = None
    if noise_cols:
        i = noise_cols[0]
        sigma = table[:, i] * unit_factor(parsed[i][1], observable, header[i])
    found.update({k: float(v) for k, v in (conditions or {}).items()})
    return Experiment(observable, t, y, sigma, found, str(path))


def write_experiment(experiment: Experiment, path: str | Path, unit: str | None = None, time_unit: str = "s") -> Path:
    """Write an experiment as CSV (atomically), in the given units.

    Parameters
    ----------
    experiment : Experiment
        The data.
    path : str or Path
        Output ``.csv``.
    unit : str, optional
        Unit of the observable (default SI).
    time_unit : str
        Unit of time.

    Returns
    -------
    Path
        The file written.
    """
    unit = unit or OBSERVABLES[experiment.observable]
    f = unit_factor(unit, experiment.observable, experiment.observable)
    ft = unit_factor(time_unit, "time", "time")
    lines = [f"# {k}: {v!r}" for k, v in experiment.conditions.items()]
    cols = [f"time [{time_unit}]", f"{experiment.observable} [{unit}]"]
    data = [experiment.time_s / ft, experiment.value / f]
    if experiment.sigma is not None:
        cols.append(f"sigma [{unit}]")
        data.append(experiment.sigma / f)
    lines.append(", ".join(cols))
    lines += [", ".join(f"{v:.8g}" for v in row) for row in np.stack(data, 1)]
    path = Path(path)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
