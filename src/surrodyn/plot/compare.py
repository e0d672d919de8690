"""Figure comparing a kMC ensemble with its continuum twin: profiles and charging curve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from .kmc import default_profile_times

__all__ = ["plot_comparison"]

# relative mismatch allowed between the z (and chosen record time) of the two datasets
_GRID_RTOL = 1e-6
_TIME_RTOL = 1e-3


@dataclass(frozen=True)
class _Field:
    """Mean and optional bands of one variable, on dims (time, ...)."""

    mean: np.ndarray
    std: np.ndarray | None
    low: np.ndarray | None
    high: np.ndarray | None
    levels: tuple[float, float] | None
    replicas: int


def _check_dataset(ds: Any, name: str) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        raise ConfigError(f"{name} must be an xarray.Dataset, got {type(ds).__name__}.")
    for dim in ("time", "z"):
        if dim not in ds.dims:
            raise ConfigError(f"{name} lacks the {dim!r} dim of a kMC/continuum field dataset.")
    if "density" not in ds and "density_mean" not in ds:
        raise ConfigError(f"{name} holds neither 'density' nor 'density_mean' (c/c0 of the field schema).")
    if ds["time"].attrs.get("units") != "s" or ds["z"].attrs.get("units") != "m":
        raise ConfigError(f"{name}'s coordinates must carry units: time in 's', z in 'm'.")
    return ds


def _field(ds: xr.Dataset, name: str) -> _Field | None:
    """Replica mean, standard deviation and outer quantiles of ``name`` (None if absent).

    The ensemble statistics variables (``<name>_mean``, ``_std``, ``_quantile``) are used when
    present; otherwise they are computed over the ``replica`` dim; a dataset without either
    gives the field itself and no bands.
    """
    da = ds[name] if name in ds else None
    if da is not None and "replica" in da.dims:
        nrep = int(da.sizes["replica"])
    elif f"{name}_mean" in ds:
        nrep = int(ds.attrs.get("n_replicas", 1))
    else:
        nrep = 1
    if f"{name}_mean" in ds:
        mean = ds[f"{name}_mean"]
    elif da is not None:
        mean = da.mean("replica") if "replica" in da.dims else da
    else:
        return None
    std: xr.DataArray | None = None
    if f"{name}_std" in ds:
        std = ds[f"{name}_std"]
    elif da is not None and "replica" in da.dims and nrep > 1:
        std = da.std("replica", ddof=1)
    low = high = None
    levels: tuple[float, float] | None = None
    if f"{name}_quantile" in ds and ds[f"{name}_quantile"].sizes.get("quantile", 0) >= 2:
        qa = ds[f"{name}_quantile"]
        lv = np.asarray(qa["quantile"].values, dtype=float)
        low, high = qa.isel(quantile=int(np.argmin(lv))), qa.isel(quantile=int(np.argmax(lv)))
        levels = (float(lv.min()), float(lv.max()))
    elif da is not None and "replica" in da.dims and nrep > 2:
        qa = da.quantile([0.05, 0.95], dim="replica")
        low, high = qa.isel(quantile=0), qa.isel(quantile=1)
        levels = (0.05, 0.95)

    def values(x: xr.DataArray | None) -> np.ndarray | None:
        if x is None:
            return None
        order = [d for d in ("time", "z") if d in x.dims]
        return np.asarray(x.transpose(*order).values, dtype=float)

    if std is not None and nrep < 2:
        std = None
    return _Field(values(mean), values(std), values(low), values(high), levels, nrep)  # type: ignore[arg-type]


def plot_comparison(
    kmc_ds: xr.Dataset,
    continuum_ds: xr.Dataset,
    times_s: Sequence[float] | None = None,
    path: str | Path | None = None,
    steady_from_s: float | None = None,
) -> Any:
    """Plot kMC profiles and charging curve (mean and bands) against the continuum twin.

    Three panels: density profiles ``c/c0`` at several times (kMC mean with a ±1 standard
    deviation band across replicas, continuum as a dashed line of the same colour); the steady
    state (the last record, or the mean over the records from ``steady_from_s`` on) with both
    the ±1 s.d. band and the outer-quantile band (5–95 % by default) of the kMC; and the
    electrode charge against time, kMC bands against the continuum line.

    Parameters
    ----------
    kmc_ds : xarray.Dataset
        A kMC field dataset (:func:`surrodyn.kmc.run_ensemble`, dims ``replica``, ``time``,
        ``z``), or any dataset of the field schema: with or without a ``replica`` dim, and/or
        with ensemble statistics ``density_mean``, ``density_std``, ``density_quantile`` (and
        the same for ``electrode_charge``), which are used when present.
    continuum_ds : xarray.Dataset
        The continuum twin (:func:`surrodyn.continuum.solve_mpnp`, dims ``time``, ``z``) on the
        same ``z`` grid; a replica dim, if any, is averaged.
    times_s : sequence of float, optional
        Times (s) of the transient profiles; the nearest record of each dataset is used, and
        both must have a record there. Default: four times spread over the kMC records
        (log-spaced on a log grid), the last one excluded (it has its own panel).
    path : str or Path, optional
        Also write the figure there (format from the suffix: PNG, PDF, SVG).
    steady_from_s : float, optional
        If given, the steady-state panel shows the average over the records at
        ``t >= steady_from_s`` (of both datasets) instead of the last record alone; its bands
        are then the spread of one record across replicas averaged over those records. Use it
        once the run is known to be stationary there.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (three axes).

    Raises
    ------
    ConfigError
        (a ``ValueError``) If a dataset is not of the field schema, the two ``z`` grids differ,
        a requested time has no record in one of the datasets, or ``steady_from_s`` lies after
        the last record.

    Notes
    -----
    The ``z`` grids must agree to a relative ``1e-6`` of the lattice spacing: solve the
    continuum on the kMC layers (``solve_mpnp(config, refine=1, contact="lattice")``) rather
    than interpolating, so that a difference in the figure is physics, not resampling.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kmc_ds = _check_dataset(kmc_ds, "kmc_ds")
    continuum_ds = _check_dataset(continuum_ds, "continuum_ds")
    zk = np.asarray(kmc_ds["z"].values, dtype=float)
    zc = np.asarray(continuum_ds["z"].values, dtype=float)
    scale = float(np.max(np.abs(np.diff(zk)))) if zk.size > 1 else max(abs(float(zk[0])), 1e-30)
    if zk.shape != zc.shape or not np.allclose(zk, zc, rtol=0.0, atol=_GRID_RTOL * scale):
        raise ConfigError(
            f"the z grids differ: kmc_ds has {zk.size} points in [{zk.min() * 1e9:.4g}, {zk.max() * 1e9:.4g}] nm, "
            f"continuum_ds has {zc.size} in [{zc.min() * 1e9:.4g}, {zc.max() * 1e9:.4g}] nm. Solve the continuum "
            "on the kMC layers: solve_mpnp(config, refine=1, contact='lattice')."
        )
    kd, cd = _field(kmc_ds, "density"), _field(continuum_ds, "density")
    if kd is None or cd is None:
        raise ConfigError("both datasets need a 'density' field (or its replica statistics) to be compared.")
    tk = np.asarray(kmc_ds["time"].values, dtype=float)
    tc = np.asarray(continuum_ds["time"].values, dtype=float)
    if times_s is None:
        chosen = [t for t in default_profile_times(tk[:-1] if tk.size > 1 else tk) if t < tk[-1]] or [tk[0]]
    else:
        chosen = [float(t) for t in np.atleast_1d(np.asarray(times_s, dtype=float))]
    pairs: list[tuple[int, int]] = []
    for t in [*chosen, float(tk[-1])]:
        ik, ic = int(np.argmin(np.abs(tk - t))), int(np.argmin(np.abs(tc - t)))
        if abs(tk[ik] - tc[ic]) > _TIME_RTOL * max(abs(tk[ik]), abs(tc[ic]), 1e-300):
            raise ConfigError(
                f"times_s: no common record near t = {t:.3g} s (kmc_ds has {tk[ik]:.4g} s, continuum_ds "
                f"{tc[ic]:.4g} s). Solve the continuum on the kMC output times."
            )
        pairs.append((ik, ic))
    if steady_from_s is None:
        win_k, win_c = slice(tk.size - 1, tk.size), slice(tc.size - 1, tc.size)
    else:
        start = float(steady_from_s)
        sel_k, sel_c = np.nonzero(tk >= start)[0], np.nonzero(tc >= start)[0]
        if not sel_k.size or not sel_c.size:
            raise ConfigError(
                f"steady_from_s={steady_from_s!r} is not allowed: expected a time (s) at or before the last record "
                f"of both datasets ({tk[-1]:.4g} s and {tc[-1]:.4g} s)."
            )
        win_k, win_c = slice(int(sel_k[0]), tk.size), slice(int(sel_c[0]), tc.size)
    z_nm = zk * 1e9
    rep = f"{kd.replicas} replica{'s' if kd.replicas != 1 else ''}"

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    ax = axes[0]
    for j, (ik, ic) in enumerate(pairs[:-1]):
        color = f"C{j}"
        ax.plot(z_nm, kd.mean[ik], color=color, lw=1.2, label=f"kMC, t = {tk[ik]:.3g} s")
        if kd.std is not None:
            ax.fill_between(z_nm, kd.mean[ik] - kd.std[ik], kd.mean[ik] + kd.std[ik], color=color, alpha=0.2, lw=0)
        ax.plot(z_nm, cd.mean[ic], color=color, lw=1.6, ls="--")
    ax.plot([], [], color="0.3", ls="--", label="continuum (dashed)")
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("z (nm) — cathode at 0")
    ax.set_ylabel("c / c0")
    ax.set_title(f"transient profiles (band: ±1 s.d., {rep})")
    ax.legend(fontsize=8)

    ax = axes[1]
    km = kd.mean[win_k].mean(axis=0)
    if kd.low is not None and kd.high is not None and kd.levels is not None:
        lo, hi = kd.levels
        ax.fill_between(
            z_nm,
            kd.low[win_k].mean(axis=0),
            kd.high[win_k].mean(axis=0),
            color="C0",
            alpha=0.15,
            lw=0,
            label=f"kMC {lo:.0%}–{hi:.0%} quantiles",
        )
    if kd.std is not None:
        ks = kd.std[win_k].mean(axis=0)
        ax.fill_between(z_nm, km - ks, km + ks, color="C0", alpha=0.3, lw=0, label="kMC ±1 s.d.")
    ax.plot(z_nm, km, color="C0", lw=1.4, label="kMC mean")
    ax.plot(z_nm, cd.mean[win_c].mean(axis=0), color="k", lw=1.6, ls="--", label="continuum")
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("z (nm) — cathode at 0")
    ax.set_ylabel("c / c0")
    n_win = win_k.stop - win_k.start
    if n_win == 1:
        ax.set_title(f"last record, t = {tk[-1]:.3g} s")
    else:
        ax.set_title(f"steady state: mean of {n_win} records, t = {tk[win_k.start]:.3g}–{tk[-1]:.3g} s")
    ax.legend(fontsize=8)

    ax = axes[2]
    kq, cq = _field(kmc_ds, "electrode_charge"), _field(continuum_ds, "electrode_charge")
    if kq is None and cq is None:
        ax.set_visible(False)
    else:
        log_t = bool(tk[0] > 0 and tk[-1] / tk[0] > 100)
        if kq is not None:
            if kq.low is not None and kq.high is not None and kq.levels is not None:
                lo, hi = kq.levels
                ax.fill_between(
                    tk, kq.low * 1e3, kq.high * 1e3, color="C3", alpha=0.15, lw=0, label=f"kMC {lo:.0%}–{hi:.0%}"
                )
            if kq.std is not None:
                ax.fill_between(
                    tk, (kq.mean - kq.std) * 1e3, (kq.mean + kq.std) * 1e3, color="C3", alpha=0.3, lw=0, label="±1 s.d."
                )
            ax.plot(tk, kq.mean * 1e3, color="C3", lw=1.4, label="kMC mean")
        if cq is not None:
            ax.plot(tc, cq.mean * 1e3, color="k", lw=1.6, ls="--", label="continuum")
        if log_t:
            ax.set_xscale("log")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("electrode charge at z = L (mC/m²)")
        ax.set_title("charging")
        ax.legend(fontsize=8)
    attrs = kmc_ds.attrs
    if isinstance(attrs.get("concentration_cm3"), float | np.floating):
        fig.suptitle(
            f"kMC vs continuum: εr = {attrs.get('permittivity', '?')}, c0 = {float(attrs['concentration_cm3']):.3g} "
            f"cm⁻³, T = {attrs.get('temperature_K', '?')} K, a = {attrs.get('spacing_nm', '?')} nm"
        )
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
