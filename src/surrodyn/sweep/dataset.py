"""The combined sweep Dataset: every point of a store stacked along a ``point`` dim, and its export."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, param_error
from .spec import SweepSpec
from .store import SweepStore, compress

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["export_sweep", "open_sweep"]

_STATUS_DONE, _STATUS_FAILED, _STATUS_MISSING = "done", "failed", "missing"

_PER_POINT_DERIVED = {
    "n_ions": ("1", "mobile ions in the cell"),
    "filling": ("1", "mean site occupancy theta0"),
    "bulk_concentration_m3": ("m-3", "bulk concentration after rounding the ion number"),
    "debye_length_m": ("m", "Debye length at the initial temperature"),
    "bjerrum_length_m": ("m", "Bjerrum length at the initial temperature"),
    "hop_rate_Hz": ("Hz", "bare hop rate per neighbour at the initial temperature"),
}


def _derived(spec: SweepSpec, params: Mapping[str, float]) -> dict[str, float]:
    from ..units import bjerrum_length_m, debye_length_m
    from .design import point_config

    try:
        cfg = point_config(spec, params)
    except (ConfigError, TypeError, ValueError):
        return dict.fromkeys(_PER_POINT_DERIVED, np.nan)
    t0 = cfg.temperature_K.values[0]
    return {
        "n_ions": float(cfg.n_ions_resolved),
        "filling": cfg.filling,
        "bulk_concentration_m3": cfg.bulk_concentration_m3,
        "debye_length_m": debye_length_m(cfg.permittivity, t0, cfg.bulk_concentration_m3),
        "bjerrum_length_m": bjerrum_length_m(cfg.permittivity, t0),
        "hop_rate_Hz": cfg.hop_rate_Hz(),
    }


def open_sweep(path: str | Path, missing: str = "nan") -> xr.Dataset:
    """Combine a sweep store into one Dataset with a ``point`` dim.

    Parameters
    ----------
    path : str or Path
        The store, or a NetCDF written by :func:`export_sweep` (read as it is, then filtered
        by ``missing``).
    missing : {"nan", "drop"}
        ``"nan"`` (default) keeps every point of the design, filling the fields of failed and
        missing points with NaN (integer variables become floats then); ``"drop"`` keeps only
        the finished points.

    Returns
    -------
    xarray.Dataset
        Dims ``point``, ``time``, ``z``, ``quantile`` (and ``replica``, ``x`` when stored).
        Coordinates on ``point``: ``point`` (index in the design), every swept parameter
        (``permittivity``, ``concentration_cm3``, ``voltage_V``, ... with units) and
        ``point_seed``. Variables: the point files' fields (``<name>_mean``, ``<name>_std``,
        ``<name>_quantile``; ``voltage``, ``temperature``; replicas and ``continuum_<name>``
        when stored), ``point_status`` (``"done"``, ``"failed"``, ``"missing"``),
        ``point_error`` (``"<type>: <message>"`` of failed points), and per-point derived
        quantities (``n_ions``, ``filling``, ``debye_length_m``, ...). Attrs: the spec YAML,
        its fingerprint, the seed, the sampling method, the replicas, the lattice, and the
        surrodyn version(s) that computed the points. Nothing depends on wall-clock time.
    """
    import xarray as xr

    from ..data.io import read_dataset

    if missing not in ("nan", "drop"):
        raise param_error("missing", missing, "'nan' or 'drop'")
    if Path(path).is_file():  # an exported sweep
        ds = read_dataset(path)
        if missing == "drop" and "point_status" in ds:
            ds = ds.isel(point=np.flatnonzero(ds["point_status"].values.astype(str) == _STATUS_DONE))
        return ds
    store = SweepStore(path)
    spec = store.spec
    status = store.status()
    n = store.n_points
    parts: dict[int, xr.Dataset] = {}
    for i in status.done:
        try:
            parts[i] = read_dataset(store.point_path(i))
        except (OSError, ValueError, RuntimeError):
            continue  # unreadable: counted as missing (a rerun recomputes it)
    point_status = np.full(n, _STATUS_MISSING, dtype=object)
    point_error = np.full(n, "", dtype=object)
    for i in parts:
        point_status[i] = _STATUS_DONE
    for f in status.failed:
        point_status[f.index] = _STATUS_FAILED
        point_error[f.index] = f"{f.error_type}: {f.message}"

    table = store.table
    out = xr.Dataset(coords=table.coords)
    out["point_seed"] = table["point_seed"]
    out = out.set_coords("point_seed")
    all_done = len(parts) == n
    if parts:
        first = parts[min(parts)]
        for i, ds in parts.items():
            for dim in ("time", "z"):
                if not np.array_equal(ds[dim].values, first[dim].values):
                    raise ConfigError(f"point {i} of {str(path)!r} has another {dim} grid than point {min(parts)}.")
        for name, coord in first.coords.items():
            if name not in out.coords and set(coord.dims) <= {"time", "z", "quantile", "x", "replica"}:
                if "replica" in coord.dims and coord.dtype.kind in "OUS":
                    continue  # per-point replica seeds: stacked below
                out.coords[name] = coord.variable  # the bare variable: no coordinates riding along
        stacked = list(first.data_vars) + [c for c in first.coords if "replica" in first[c].dims and c not in out]
        for name in stacked:
            var = first[name]
            kind = var.dtype.kind
            if kind in "OUS":
                arr = np.full((n, *var.shape), "", dtype=object)
            elif kind in "iub" and all_done:
                arr = np.zeros((n, *var.shape), dtype=var.dtype)
            else:
                arr = np.full((n, *var.shape), np.nan)
            for i, ds in parts.items():
                arr[i] = ds[name].values
            out[name] = (("point", *var.dims), arr, dict(var.attrs))
            if name in first.coords:
                out = out.set_coords(name)
    out["point_status"] = ("point", point_status.astype(str), {"long_name": "done, failed or missing"})
    out["point_error"] = ("point", point_error.astype(str), {"long_name": "error of a failed point"})
    derived = [_derived(spec, store.params(i)) for i in range(n)]
    for name, (units, long_name) in _PER_POINT_DERIVED.items():
        out[name] = ("point", np.array([d[name] for d in derived]), {"units": units, "long_name": long_name})
    base = spec.base
    versions = sorted({str(ds.attrs.get("surrodyn_version", "")) for ds in parts.values()} - {""})
    out.attrs = {
        "title": "surrodyn kMC sweep",
        "sweep_name": spec.name,
        "sweep_fingerprint": store.fingerprint,
        "sweep_spec_yaml": spec.to_yaml(),
        "seed": spec.seed,
        "sampling": spec.sampling,
        "parameters": list(spec.parameter_names),
        "n_replicas": spec.replicas,
        "continuum": int(spec.continuum),
        "nx": base.nx,
        "ny": base.ny,
        "nz": base.nz,
        "spacing_nm": base.spacing_nm,
        "gap_m": base.gap_m,
        "area_m2": base.area_m2,
        "n_points": n,
        "n_done": len(parts),
        "n_failed": len(status.failed),
        "n_missing": n - len(parts) - len(status.failed),
        "missing_points": "NaN-filled" if missing == "nan" else "dropped",
        "surrodyn_version": ", ".join(versions) if versions else str(table.attrs.get("surrodyn_version", "")),
    }
    if missing == "drop":
        out = out.isel(point=np.flatnonzero(point_status == _STATUS_DONE))
    return out


def export_sweep(path: str | Path, out: str | Path, missing: str = "nan") -> Path:
    """Write :func:`open_sweep` of the store at ``path`` atomically to one NetCDF file ``out``.

    Numeric variables are zlib-compressed.
    """
    from ..data.io import check_writable, write_dataset

    target = check_writable(out)
    ds = open_sweep(path, missing=missing)
    compress(ds)
    return write_dataset(ds, target)
