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

Repeated measurements of one transient go in several observable columns (``charge_1 [mC/cm^2]``,
``charge_2 [mC/cm^2]``, ...; in NetCDF, a ``replica`` dimension). Their mean is fitted, and their
scatter gives the noise covariance of that mean (:func:`noise_from_replicates`): noise that is
correlated in time, as the charge of a small cell is, carries less information than independent
noise of the same size, and a likelihood that ignores it is overconfident.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.io import atomic_write_bytes
from ..errors import ConfigError, param_error

__all__ = ["OBSERVABLES", "Experiment", "noise_from_replicates", "read_experiment", "unit_factor", "write_experiment"]

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
    noise_cov : numpy.ndarray or None
        Covariance (N, N) of noise that is correlated in time (same unit squared), e.g. the
        scatter of repeated measurements (:func:`noise_from_replicates`). It adds to the
        independent noise of ``sigma``; either may be given alone.
    """

    observable: str
    time_s: np.ndarray
    value: np.ndarray
    sigma: np.ndarray | None = None
    conditions: dict[str, float] = field(default_factory=dict)
    source: str = ""
    noise_cov: np.ndarray | None = None

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
        cov = None
        if self.noise_cov is not None:
            cov = np.asarray(self.noise_cov, dtype=float)
            where = self.source or "experiment"
            if cov.shape != (t.size, t.size) or not np.all(np.isfinite(cov)):
                msg = f"{where}: the noise covariance must be finite and ({t.size}, {t.size}); got {cov.shape}."
                raise ConfigError(msg)
            if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * float(np.abs(cov).max())):
                raise ConfigError(f"{where}: the noise covariance is not symmetric.")
            if np.linalg.eigvalsh(cov).min() < -1e-10 * float(np.abs(cov).max()):
                raise ConfigError(f"{where}: the noise covariance is not positive semi-definite.")
            cov = 0.5 * (cov + cov.T)
        conditions = {str(k): float(v) for k, v in dict(self.conditions).items()}
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "value", y)
        object.__setattr__(self, "sigma", s)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "noise_cov", cov)

    def with_conditions(self, **conditions: float) -> Experiment:
        """Return a copy with conditions added or replaced."""
        merged = {**self.conditions, **{k: float(v) for k, v in conditions.items()}}
        return Experiment(self.observable, self.time_s, self.value, self.sigma, merged, self.source, self.noise_cov)

    def noise_covariance(self) -> np.ndarray | None:
        """Total noise covariance (N, N): ``diag(sigma²) + noise_cov``, or ``None`` when neither is known."""
        if self.sigma is None and self.noise_cov is None:
            return None
        total = np.zeros((self.time_s.size, self.time_s.size))
        if self.sigma is not None:
            total += np.diag(self.sigma**2)
        if self.noise_cov is not None:
            total += self.noise_cov
        return total


def noise_from_replicates(
    values: np.ndarray, time_s: np.ndarray, smooth: int = 5, floor: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean of repeated measurements and the noise covariance of that mean.

    The covariance is ``S R S / n`` with ``S = diag(s)``, ``s`` the sample standard deviation per
    time (``ddof=1``, variance averaged over ``smooth`` neighbouring times) and
    ``R_ij = exp(−|log10 t_i − log10 t_j| / ℓ)``. The correlation length ℓ (decades of time)
    maximises the Gaussian likelihood of the n − 1 Helmert contrasts of the standardised replicates
    (independent draws of the noise, unlike the deviations from the mean, which sum to zero). A
    parametric correlation is used because a handful of replicates cannot estimate an N × N matrix
    (its sample version has rank n − 1). With 4 replicates ℓ comes out low by about a quarter
    (measured on synthetic noise: 0.22 for 0.3 decades, 0.57 for 1); with 16 it is unbiased.

    Parameters
    ----------
    values : numpy.ndarray
        (n, N) the n ≥ 2 replicates at the N times.
    time_s : numpy.ndarray
        (N,) positive, increasing times.
    smooth : int
        Times over which the sample variance is averaged (a running mean; 1 = none). With a few
        replicates the variance of a single time is itself very noisy (n − 1 degrees of freedom).
    floor : float
        Smallest standard deviation, as a fraction of the largest (times at which all replicates
        agree would otherwise make the covariance singular).

    Returns
    -------
    mean : numpy.ndarray
        (N,) mean over replicates.
    cov : numpy.ndarray
        (N, N) noise covariance of the mean.
    corr_decades : float
        The fitted correlation length.
    """
    from scipy.linalg import solve_triangular

    x = np.asarray(values, dtype=float)
    t = np.asarray(time_s, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] != t.size:
        raise ConfigError(f"replicates must be (n >= 2, {t.size}); got shape {x.shape}.")
    if not np.all(t > 0):
        raise ConfigError("replicate times must be positive.")
    n = x.shape[0]
    mean = x.mean(0)
    var = x.var(0, ddof=1)
    if not var.max() > 0:
        raise ConfigError("the replicates are identical: they carry no noise level.")
    if smooth > 1:  # a running mean over neighbouring times: n - 1 degrees of freedom per time are few
        k = min(int(smooth), t.size)
        pad = np.pad(var, (k // 2, k - 1 - k // 2), mode="edge")
        var = np.convolve(pad, np.ones(k) / k, mode="valid")
    sd = np.sqrt(var)
    sd = np.maximum(sd, floor * sd.max())
    # Helmert contrasts: n - 1 orthonormal combinations of the replicates orthogonal to their mean,
    # independent draws of the noise (the deviations from the mean are not: they sum to zero)
    helmert = np.zeros((n - 1, n))
    for k in range(1, n):
        helmert[k - 1, :k] = 1.0
        helmert[k - 1, k] = -k
        helmert[k - 1] /= np.sqrt(k * (k + 1))
    u = helmert @ (x / sd)
    lag = np.abs(np.log10(t)[:, None] - np.log10(t)[None, :])
    best = (np.inf, 0.0)
    for ell in np.geomspace(1e-3, 10.0, 81):
        c = np.linalg.cholesky(np.exp(-lag / ell) + 1e-9 * np.eye(t.size))
        sol = solve_triangular(c, u.T, lower=True)
        nll = 0.5 * float((sol**2).sum()) + (n - 1) * float(np.log(np.diag(c)).sum())
        best = min(best, (nll, float(ell)))
    ell = best[1]
    cov = sd[:, None] * np.exp(-lag / ell) * sd[None, :] / n
    return mean, cov, ell


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
            unit = ds[v].attrs.get("units", "")
            if ds[v].ndim == 2 and "replica" in ds[v].dims:  # repeated measurements: one column each
                block = ds[v].transpose("replica", ...).values
                for k, column in enumerate(block, 1):
                    cols.append(f"{v}_{k} [{unit}]")
                    data.append(np.asarray(column, dtype=float))
            else:
                cols.append(f"{v} [{unit}]")
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
    obs_cols = [i for i, (n, _) in enumerate(parsed) if _observable_of(n) is not None]
    noise_cols = [i for i, (n, _) in enumerate(parsed) if n in _NOISE_NAMES]
    if len(time_cols) != 1:
        raise ConfigError(f"{path}: need exactly one 'time [unit]' column; columns are {header}.")
    kinds = sorted({_observable_of(parsed[i][0]) for i in obs_cols})
    if len(kinds) != 1:
        raise ConfigError(
            f"{path}: need one observable column, 'charge [unit]' or 'current [unit]' (or replicates of it: "
            f"'charge_1 [unit]', 'charge_2 [unit]', ...); columns are {header}. "
            f"The surrogate produces {sorted(OBSERVABLES)}."
        )
    observable = kinds[0]
    t = table[:, time_cols[0]] * unit_factor(parsed[time_cols[0]][1], "time", header[time_cols[0]])
    ys = np.stack([table[:, i] * unit_factor(parsed[i][1], observable, header[i]) for i in obs_cols])
    noise_cov = None
    if ys.shape[0] > 1:  # replicates: fit their mean, with the covariance of the mean
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and t[0] > 0):
            raise ConfigError(f"{path}: times must be positive and strictly increasing.")
        y, noise_cov, _ = noise_from_replicates(ys, t)
    else:
        y = ys[0]
    sigma = None
    if noise_cols:
        i = noise_cols[0]
        sigma = table[:, i] * unit_factor(parsed[i][1], observable, header[i])
    found.update({k: float(v) for k, v in (conditions or {}).items()})
    return Experiment(observable, t, y, sigma, found, str(path), noise_cov)


def _observable_of(name: str) -> str | None:
    """Return the observable a column name holds (``charge``, ``charge_2``, ``current 3``, ...), or None."""
    m = re.fullmatch(r"(.+?)(?:[\s_#-]*\d+)?", name)
    base = m.group(1) if m else name
    return _NAMES.get(name) or _NAMES.get(base)


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
    if experiment.noise_cov is not None:
        warnings.warn(
            "the noise covariance is not written to CSV (write the replicate columns instead): the file holds the "
            "mean and sigma only.",
            UserWarning,
            stacklevel=2,
        )
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
