"""The xarray schema of kMC (and continuum) fields.

Dims ``replica``, ``time``, ``z`` (optionally ``x``); coordinates in SI with the electrode at
``z = 0`` the cathode for positive voltage; every input parameter, the seeds and the code version
in attrs. Ensemble statistics live in the same Dataset as ``<name>_mean``, ``<name>_std`` and
``<name>_quantile`` (with a ``quantile`` dim instead of ``replica``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .. import __version__
from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..kmc.config import KMCConfig
    from ..kmc.simulation import Frame

__all__ = ["DEFAULT_QUANTILES", "add_ensemble_statistics", "config_attrs", "kmc_dataset", "validate_field_dataset"]

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_STAT_VARS = ("occupancy", "density", "potential", "electrode_charge", "current")


def config_attrs(config: KMCConfig) -> dict[str, Any]:
    """Flatten a config into NetCDF-safe attrs (scalars, strings, float lists).

    The full config is also stored as YAML in ``config_yaml`` so it can be rebuilt exactly.
    """
    from ..units import bjerrum_length_m, debye_length_m

    attrs: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        if value is None:
            continue
        if isinstance(value, bool):
            attrs[key] = int(value)
        elif isinstance(value, dict):
            attrs[f"{key}.times_s"] = np.asarray(value["times_s"], dtype=float)
            attrs[f"{key}.values"] = np.asarray(value["values"], dtype=float)
        elif isinstance(value, list):
            attrs[key] = np.asarray(value, dtype=float)
        else:
            attrs[key] = value
    t0 = config.temperature_K.values[0]
    attrs.update(
        n_ions_total=config.n_ions_resolved,
        filling=config.filling,
        bulk_concentration_m3=config.bulk_concentration_m3,
        gap_m=config.gap_m,
        area_m2=config.area_m2,
        hop_rate_Hz=config.hop_rate_Hz(),
        debye_length_m=debye_length_m(config.permittivity, t0, config.bulk_concentration_m3),
        bjerrum_length_m=bjerrum_length_m(config.permittivity, t0),
        config_yaml=config.to_yaml(),
        surrodyn_version=__version__,
    )
    return attrs


def kmc_dataset(
    frames: Sequence[Sequence[Frame]],
    config: KMCConfig,
    seeds: Sequence[str | int] | None = None,
    seed: int | None = None,
) -> xr.Dataset:
    """Assemble replicas of kMC records into the field Dataset.

    Parameters
    ----------
    frames : sequence (replica) of sequence (time) of Frame
        Records of each replica at the same times.
    config : KMCConfig
        The simulated system.
    seeds : sequence, optional
        A description of each replica's seed (stored as the ``replica_seed`` coordinate).
    seed : int, optional
        The ensemble's root seed (stored in attrs).

    Returns
    -------
    xarray.Dataset
        Variables ``occupancy`` (ions per site, per layer), ``density`` (``c/c0``),
        ``potential`` (V, planar mean), ``electrode_charge`` (C/m², electrode at z = L),
        ``current`` (A/m²), ``events``, ``net_z_hops``, ``voltage`` and ``temperature`` of the
        protocol, and ``occupancy_xz`` when recorded.
    """
    from ..kmc.observables import current_A_m2, electrode_charge_C_m2, planar_potential_V

    frames = [list(f) for f in frames]
    if not frames or not frames[0]:
        raise ConfigError("kmc_dataset needs at least one replica with at least one frame.")
    times = np.array([f.time_s for f in frames[0]])
    for r, fr in enumerate(frames):
        if len(fr) != len(times) or not np.array_equal([f.time_s for f in fr], times):
            raise ConfigError(f"replica {r} was recorded at other times than replica 0.")
    c = config
    area_sites = c.nx * c.ny
    counts = np.array([[f.layer_counts for f in fr] for fr in frames], dtype=float)
    volts = np.array([f.voltage_V for f in frames[0]])
    temps = np.array([f.temperature_K for f in frames[0]])
    events = np.array([[f.events for f in fr] for fr in frames], dtype=np.int64)
    hops = np.array([[f.net_z_hops for f in fr] for fr in frames], dtype=np.int64)
    occ = counts / area_sites
    a = c.spacing_m
    z = (np.arange(c.nz) + 1) * a
    dims3 = ("replica", "time", "z")
    data_vars: dict[str, Any] = {
        "occupancy": (dims3, occ, {"units": "1", "long_name": "ions per site in the layer"}),
        "density": (dims3, occ / c.filling, {"units": "1", "long_name": "c / c0 (normalised by bulk)"}),
        "potential": (
            dims3,
            planar_potential_V(counts, c, volts[None, :]),
            {"units": "V", "long_name": "planar mean potential"},
        ),
        "electrode_charge": (
            ("replica", "time"),
            electrode_charge_C_m2(counts, c, volts[None, :]),
            {"units": "C m-2", "long_name": "surface charge on the electrode at z = L (anode for V > 0)"},
        ),
        "current": (
            ("replica", "time"),
            current_A_m2(hops, times, c),
            {"units": "A m-2", "long_name": "mean current density since the previous record (Ramo-Shockley)"},
        ),
        "events": (("replica", "time"), events, {"units": "1", "long_name": "events since t = 0"}),
        "net_z_hops": (("replica", "time"), hops, {"units": "1", "long_name": "cumulative +z minus -z hops"}),
        "voltage": (("time",), volts, {"units": "V", "long_name": "applied voltage"}),
        "temperature": (("time",), temps, {"units": "K", "long_name": "temperature"}),
    }
    coords: dict[str, Any] = {
        "replica": ("replica", np.arange(len(frames))),
        "time": ("time", times, {"units": "s"}),
        "z": ("z", z, {"units": "m", "long_name": "distance from the electrode at z = 0"}),
    }
    if seeds is not None:
        coords["replica_seed"] = ("replica", np.asarray([str(s) for s in seeds]))
    if c.record_xz:
        xz = np.array([[f.xz_counts for f in fr] for fr in frames], dtype=float) / c.ny
        data_vars["occupancy_xz"] = (
            ("replica", "time", "x", "z"),
            xz,
            {"units": "1", "long_name": "ions per site, y-averaged"},
        )
        coords["x"] = ("x", np.arange(c.nx) * a, {"units": "m"})
    attrs = config_attrs(c)
    attrs["density_normalisation"] = "density = occupancy / filling (c / c0)"
    if seed is not None:
        attrs["seed"] = int(seed)
    attrs["title"] = "surrodyn lattice kMC"
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def add_ensemble_statistics(ds: xr.Dataset, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> xr.Dataset:
    """Add mean, standard deviation and quantiles across replicas.

    Parameters
    ----------
    ds : xarray.Dataset
        A field Dataset with a ``replica`` dim.
    quantiles : sequence of float
        Quantile levels in (0, 1).

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``<name>_mean``, ``<name>_std`` (ddof = 1; 0 for one replica) and
        ``<name>_quantile`` for the field variables.
    """
    q = np.asarray(quantiles, dtype=float)
    if q.size == 0 or np.any((q <= 0) | (q >= 1)):
        raise ConfigError(f"quantiles={list(quantiles)!r} is not allowed: expected levels strictly between 0 and 1.")
    out = ds.copy()
    nrep = ds.sizes["replica"]
    names = [n for n in (*_STAT_VARS, "occupancy_xz") if n in ds]
    for name in names:
        da = ds[name]
        units = da.attrs.get("units", "")
        out[f"{name}_mean"] = da.mean("replica").assign_attrs(units=units, long_name=f"replica mean of {name}")
        std = da.std("replica", ddof=1) if nrep > 1 else xr.zeros_like(da.isel(replica=0))
        out[f"{name}_std"] = std.assign_attrs(units=units, long_name=f"replica standard deviation of {name}")
        with warnings.catch_warnings():
            # the current is undefined (NaN) in every replica at t = 0; its quantile stays NaN
            warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
            qa = da.quantile(q, dim="replica").assign_attrs(units=units, long_name=f"replica quantiles of {name}")
        out[f"{name}_quantile"] = qa
    out.attrs["n_replicas"] = nrep
    return out


def validate_field_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Check that a Dataset follows the field schema; return it unchanged.

    Raises
    ------
    ConfigError
        Naming the first missing dim, coordinate or variable.
    """
    for dim in ("time", "z"):
        if dim not in ds.dims:
            raise ConfigError(f"dataset lacks the {dim!r} dim required of a kMC/continuum field dataset.")
    for var in ("density", "occupancy"):
        if var not in ds:
            raise ConfigError(f"dataset lacks the variable {var!r} required of a kMC/continuum field dataset.")
    if ds["time"].attrs.get("units") != "s" or ds["z"].attrs.get("units") != "m":
        raise ConfigError("dataset coordinates must carry units: time in 's', z in 'm'.")
    return ds
