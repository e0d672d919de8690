"""Training arrays straight from a sweep dataset: covariates, targets, normalisation, splits.

Everything here is NumPy on xarray, no pandas: a sweep of ``P`` points, ``R`` replicas, ``T``
records and ``Z`` bins becomes a handful of dense arrays (a few MB for the demo sweep).

Conventions
-----------
- Target: the normalised density ``n / c0`` (occupancy over the point's bulk filling N/sites),
  per replica; the network works on ``asinh(n / c0)`` (quantiles are equivariant under this
  monotone map, so quantiles of the transformed variable are the quantiles of the density).
- A frame at ``t = 0`` is prepended: the known initial state, a uniform density (1 everywhere).
- Time enters as ``log10_time = log10(t + t_ref)`` with ``t_ref`` a tenth of the first record.
- Static covariates are the swept parameters, by name, log-transformed where they span decades.
- Known-future scalars: ``log10_time``, and ``voltage`` / ``temperature`` (the schedules evaluated
  at each record) when the sweep varies them in time; field covariate ``continuum``: the
  continuum twin's normalised density.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, param_error
from ..sweep.design import point_config
from ..sweep.spec import SweepSpec

__all__ = [
    "LOG_PARAMETERS",
    "FieldData",
    "Normalizer",
    "covariates_for_configs",
    "inverse_transform",
    "split_points",
    "static_name",
    "transform",
]

#: Swept parameters that enter as log10 (they span decades).
LOG_PARAMETERS = frozenset(
    {"permittivity", "concentration_cm3", "attempt_frequency_Hz", "voltage_rise_time_s", "voltage_ramp_rate_V_s"}
)


def static_name(parameter: str) -> str:
    """Covariate name of a swept parameter (``log10_<name>`` for :data:`LOG_PARAMETERS`)."""
    return f"log10_{parameter}" if parameter in LOG_PARAMETERS else parameter


def static_value(parameter: str, value: Any) -> np.ndarray:
    """Covariate value of a swept parameter."""
    v = np.asarray(value, dtype=float)
    if parameter in LOG_PARAMETERS:
        if np.any(v <= 0):
            raise param_error(parameter, value, "a positive value (it enters as log10)")
        return np.log10(v)
    return v


def transform(density: Any) -> Any:
    """Network space of a normalised density: ``asinh(n / c0)`` (works on arrays and tensors)."""
    return np.arcsinh(density) if isinstance(density, np.ndarray | float) else density.asinh()


def inverse_transform(x: Any) -> Any:
    """Inverse of :func:`transform`."""
    return np.sinh(x) if isinstance(x, np.ndarray | float) else x.sinh()


@dataclass(frozen=True)
class Normalizer:
    """Affine normalisation of scalar covariates, fitted on training points only.

    Parameters
    ----------
    names : tuple of str
        Covariate names.
    mean, scale : tuple of float
        ``x_norm = (x - mean) / scale``; a constant covariate gets scale 1.
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray) -> Normalizer:
        """Fit on ``values`` (..., V) (every leading axis pooled)."""
        flat = np.asarray(values, dtype=float).reshape(-1, len(names))
        std = flat.std(0)
        return cls(tuple(names), tuple(flat.mean(0).tolist()), tuple(np.where(std > 1e-12, std, 1.0).tolist()))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Normalise ``values`` (..., V)."""
        return ((np.asarray(values, dtype=float) - np.array(self.mean)) / np.array(self.scale)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict (for YAML)."""
        return {"names": list(self.names), "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["scale"]))


def _schedule_varies(ds: xr.Dataset, name: str) -> bool:
    if name not in ds:
        return False
    values = np.asarray(ds[name].values, dtype=float)
    return bool(np.nanmax(np.abs(values - values[..., :1])) > 1e-12)


def covariates_for_configs(
    configs: Sequence[Any], time_s: np.ndarray, known_names: Sequence[str], t_ref_s: float
) -> np.ndarray:
    """Known-future scalar covariates (P, T, K) of kMC configs at times ``time_s`` (T,).

    Parameters
    ----------
    configs : sequence of KMCConfig
        One per point; their voltage and temperature schedules are evaluated.
    time_s : numpy.ndarray
        Times (s), the first normally 0 (the initial state).
    known_names : sequence of str
        Any of ``log10_time``, ``voltage``, ``temperature``.
    t_ref_s : float
        Offset of the log time.

    Returns
    -------
    numpy.ndarray
        Unnormalised covariates, float64.
    """
    time_s = np.asarray(time_s, dtype=float)
    out = np.empty((len(configs), time_s.size, len(known_names)))
    for k, name in enumerate(known_names):
        for p, cfg in enumerate(configs):
            if name == "log10_time":
                out[p, :, k] = np.log10(time_s + t_ref_s)
            elif name == "voltage":
                out[p, :, k] = cfg.voltage_V(time_s)
            elif name == "temperature":
                out[p, :, k] = cfg.temperature_K(time_s)
            else:
                raise param_error("known covariate", name, "one of log10_time, voltage, temperature")
    return out


@dataclass
class FieldData:
    """Dense training arrays of a sweep (frame ``t = 0`` included).

    Attributes
    ----------
    parameters : tuple of str
        Swept parameter names, in the order of ``static``'s columns.
    static_names, known_names, field_names : tuple of str
        Covariate names.
    static : numpy.ndarray
        (P, S) unnormalised static covariates.
    known : numpy.ndarray
        (P, T, K) unnormalised known-future scalars.
    fields : numpy.ndarray or None
        (P, T, C, Z) known-future fields, normalised densities (not transformed).
    target : numpy.ndarray or None
        (P, R, T, Z) normalised replica densities.
    mean : numpy.ndarray or None
        (P, T, Z) ensemble mean of ``target``.
    count_unit : numpy.ndarray
        (P,) normalised density of one ion in one bin, ``1 / (nx ny θ0)``.
    time_s : numpy.ndarray
        (T,) times, ``time_s[0] = 0``.
    z : numpy.ndarray
        (Z,) bin centres as a fraction of the gap.
    point : numpy.ndarray
        (P,) point ids of the sweep.
    values : dict of str to numpy.ndarray
        Raw parameter values per point.
    spec_yaml : str
        The sweep spec (to build configs of new points).
    """

    parameters: tuple[str, ...]
    static_names: tuple[str, ...]
    known_names: tuple[str, ...]
    field_names: tuple[str, ...]
    static: np.ndarray
    known: np.ndarray
    fields: np.ndarray | None
    target: np.ndarray | None
    mean: np.ndarray | None
    count_unit: np.ndarray
    time_s: np.ndarray
    z: np.ndarray
    point: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    spec_yaml: str = ""

    @property
    def n_points(self) -> int:
        """Number of points ``P``."""
        return int(self.static.shape[0])

    @property
    def t_ref_s(self) -> float:
        """Offset of the log time: a tenth of the first record."""
        return float(self.time_s[1] / 10.0)

    def subset(self, index: Sequence[int] | np.ndarray) -> FieldData:
        """Return the same arrays for a subset of points."""
        i = np.asarray(index, dtype=int)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[i]

        return FieldData(
            self.parameters, self.static_names, self.known_names, self.field_names, self.static[i], self.known[i],
            take(self.fields), take(self.target), take(self.mean), self.count_unit[i], self.time_s, self.z,
            self.point[i], {k: v[i] for k, v in self.values.items()}, self.spec_yaml,
        )  # fmt: skip

    @classmethod
    def from_sweep(
        cls,
        ds: xr.Dataset,
        *,
        parameters: Sequence[str] | None = None,
        known_names: Sequence[str] | None = None,
        continuum: bool = False,
    ) -> FieldData:
        """Build the arrays from a sweep dataset (:func:`surrodyn.sweep.open_sweep`).

        Parameters
        ----------
        ds : xarray.Dataset
            Sweep dataset with replicas stored (``occupancy`` with dims point, replica, time, z).
            Failed points (NaN) are dropped.
        parameters : sequence of str, optional
            Static covariates by parameter name; default every swept parameter.
        known_names : sequence of str, optional
            Known-future scalars; default ``log10_time`` plus ``voltage`` / ``temperature`` when they
            change in time in some point.
        continuum : bool
            Add the continuum twin's density as a known-future field (needs ``continuum_occupancy``).

        Returns
        -------
        FieldData

        Raises
        ------
        ConfigError
            When the dataset lacks replicas, a requested parameter or the continuum fields.
        """
        if "occupancy" not in ds or "replica" not in ds["occupancy"].dims:
            raise ConfigError(
                "the sweep has no replica fields: rerun it with `store_replicas: true` in its spec "
                "(the surrogate learns the replica spread, not only the mean)."
            )
        swept = [str(p) for p in np.atleast_1d(ds.attrs.get("parameters", []))]
        parameters = tuple(parameters) if parameters is not None else tuple(swept)
        missing = [p for p in parameters if p not in ds.coords]
        if missing:
            raise param_error("parameters", missing, f"coordinates of the sweep: {swept}")
        if continuum and "continuum_occupancy" not in ds:
            raise ConfigError("continuum: true needs a sweep run with `continuum: true` (continuum_occupancy).")
        occ = ds["occupancy"].transpose("point", "replica", "time", "z")
        ok = np.isfinite(occ.values).all(axis=(1, 2, 3))
        if "point_status" in ds:
            ok &= np.asarray(ds["point_status"].values).astype(str) == "done"
        if not ok.any():
            raise ConfigError("no finished point in the sweep.")
        ds = ds.isel(point=np.flatnonzero(ok))
        occ = occ.isel(point=np.flatnonzero(ok)).values.astype(np.float64)
        nx, ny, nz = int(ds.attrs["nx"]), int(ds.attrs["ny"]), int(ds.attrs["nz"])
        theta0 = np.asarray(ds["n_ions"].values, dtype=float) / (nx * ny * nz)
        p_count = occ.shape[0]
        target = np.concatenate([np.ones((*occ.shape[:2], 1, nz)), occ / theta0[:, None, None, None]], axis=2)
        time_s = np.concatenate([[0.0], np.asarray(ds["time"].values, dtype=float)])
        spec = SweepSpec.from_dict(_yaml_load(ds.attrs["sweep_spec_yaml"]))
        values = {p: np.asarray(ds[p].values, dtype=float) for p in swept}
        configs = [point_config(spec, {p: values[p][i] for p in swept}) for i in range(p_count)]
        if known_names is None:
            known_names = ["log10_time"]
            known_names += [n for n in ("voltage", "temperature") if _schedule_varies(ds, n)]
        known_names = tuple(known_names)
        t_ref = float(time_s[1] / 10.0)
        known = covariates_for_configs(configs, time_s, known_names, t_ref)
        fields = None
        if continuum:
            cont = ds["continuum_occupancy"].transpose("point", "time", "z").values / theta0[:, None, None]
            fields = np.concatenate([np.ones((p_count, 1, nz)), cont], axis=1)[:, :, None, :]
        z = np.asarray(ds["z"].values, dtype=float) / float(ds.attrs["gap_m"])
        static = np.stack([static_value(p, values[p]) for p in parameters], axis=-1)
        return cls(
            parameters=parameters,
            static_names=tuple(static_name(p) for p in parameters),
            known_names=known_names,
            field_names=("continuum",) if continuum else (),
            static=static,
            known=known,
            fields=None if fields is None else fields.astype(np.float32),
            target=target.astype(np.float32),
            mean=target.mean(1).astype(np.float32),
            count_unit=1.0 / (nx * ny * theta0),
            time_s=time_s,
            z=z,
            point=np.asarray(ds["point"].values),
            values=values,
            spec_yaml=str(ds.attrs["sweep_spec_yaml"]),
        )


def _yaml_load(text: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError("the sweep dataset's sweep_spec_yaml attribute is not a mapping.")
    return data


def split_points(
    n_points: int, *, test_fraction: float = 0.25, val_fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split point indices into train, validation and test sets (never inside a point).

    Parameters
    ----------
    n_points : int
        Number of points.
    test_fraction, val_fraction : float
        Fractions held out for testing and for early stopping (at least one point each).
    seed : int
        Seed of the permutation.

    Returns
    -------
    train, val, test : numpy.ndarray
        Sorted point indices.
    """
    if not 0.0 < test_fraction < 1.0 or not 0.0 <= val_fraction < 1.0 or test_fraction + val_fraction >= 1.0:
        raise param_error("test_fraction/val_fraction", (test_fraction, val_fraction), "fractions summing below 1")
    n_test = max(1, round(test_fraction * n_points))
    n_val = max(1, round(val_fraction * n_points)) if val_fraction > 0 else 0
    if n_test + n_val >= n_points:
        raise param_error("n_points", n_points, f"more than {n_test + n_val} points to keep some for training")
    perm = np.random.default_rng(seed).permutation(n_points)
    return np.sort(perm[n_test + n_val :]), np.sort(perm[n_test : n_test + n_val]), np.sort(perm[:n_test])
