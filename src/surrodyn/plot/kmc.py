"""Figures of kMC (and continuum) field datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..data import validate_field_dataset
from ..errors import ConfigError

__all__ = ["default_profile_times", "plot_kmc"]


def default_profile_times(times: np.ndarray, n: int = 4) -> np.ndarray:
    """Pick ``n`` record times spread over the run (log-spaced when the grid is)."""
    t = np.asarray(times, dtype=float)
    positive = t[t > 0]
    if positive.size >= 2 and positive[-1] / positive[0] > 100:
        targets = np.geomspace(positive[0], positive[-1], n)
    else:
        targets = np.linspace(t[0], t[-1], n)
    idx = np.unique([int(np.argmin(np.abs(t - x))) for x in targets])
    return t[idx]


def plot_kmc(
    ds: xr.Dataset,
    times_s: Sequence[float] | None = None,
    path: str | Path | None = None,
    variable: str = "density",
) -> Any:
    """Time × z heatmap of the normalised density, profiles at chosen times, electrode charge.

    Parameters
    ----------
    ds : xarray.Dataset
        A field dataset (``surrodyn.data`` schema); the replica mean is shown when the
        dataset holds several replicas, with a ±1 standard deviation band on the profiles.
    times_s : sequence of float, optional
        Times of the profiles (the nearest records are used); default: four spread times.
    path : str or Path, optional
        Write the figure there (PNG, PDF, SVG by suffix) instead of only returning it.
    variable : str
        ``"density"`` (c/c0) or ``"occupancy"`` (ions per site).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    validate_field_dataset(ds)
    if variable not in ("density", "occupancy"):
        raise ConfigError(f"variable={variable!r} is not allowed: expected 'density' or 'occupancy'.")
    da = ds[variable]
    mean = da.mean("replica") if "replica" in da.dims else da
    std = da.std("replica", ddof=1) if "replica" in da.dims and da.sizes["replica"] > 1 else None
    t = ds["time"].values
    z_nm = ds["z"].values * 1e9
    log_t = bool(t[0] > 0 and t[-1] / t[0] > 100)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    ax = axes[0]
    values = mean.values
    vmax = float(np.nanpercentile(values, 99.5)) if values.size else 1.0
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(vmax, 1e-12))
    mesh = ax.pcolormesh(z_nm, t, values, shading="nearest", norm=norm, cmap="magma")
    if log_t:
        ax.set_yscale("log")
    ax.set_xlabel("z (nm) — cathode at 0")
    ax.set_ylabel("time (s)")
    label = "c / c0" if variable == "density" else "ions per site"
    fig.colorbar(mesh, ax=ax)
    if "replica" in da.dims:
        ax.set_title(f"{label}, mean of {da.sizes['replica']} replica(s)")
    else:
        ax.set_title(f"{label}, {'continuum twin' if ds.attrs.get('model') == 'lattice-mpnp' else 'field'}")

    ax = axes[1]
    chosen = default_profile_times(t) if times_s is None else np.asarray(times_s, dtype=float)
    for tt in chosen:
        k = int(np.argmin(np.abs(t - tt)))
        (line,) = ax.plot(z_nm, mean.values[k], label=f"t = {t[k]:.3g} s")
        if std is not None:
            ax.fill_between(
                z_nm,
                mean.values[k] - std.values[k],
                mean.values[k] + std.values[k],
                color=line.get_color(),
                alpha=0.2,
                lw=0,
            )
    if variable == "density":
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("z (nm)")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
    ax.set_title("profiles (band: ±1 s.d. across replicas)" if std is not None else "profiles")

    ax = axes[2]
    if "electrode_charge" in ds:
        q = ds["electrode_charge"]
        qm = (q.mean("replica") if "replica" in q.dims else q).values * 1e3
        ax.plot(t, qm, color="C3")
        if "replica" in q.dims and q.sizes["replica"] > 1:
            qs = q.std("replica", ddof=1).values * 1e3
            ax.fill_between(t, qm - qs, qm + qs, color="C3", alpha=0.2, lw=0)
        if log_t:
            ax.set_xscale("log")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("electrode charge at z = L (mC/m²)")
        ax.set_title("charging")
    else:
        ax.set_visible(False)
    v = ds.attrs.get("voltage_V", "")
    fig.suptitle(
        f"εr = {ds.attrs.get('permittivity', '?')}, c0 = {ds.attrs.get('concentration_cm3', '?'):.3g} cm⁻³, "
        f"V = {v if not isinstance(v, np.ndarray) else 'schedule'} V, T = {ds.attrs.get('temperature_K', '?')} K"
        if isinstance(ds.attrs.get("concentration_cm3"), float)
        else "surrodyn field"
    )
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
