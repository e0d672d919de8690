"""Figures of the surrogate: prediction vs kMC (the seed's Figure 1) and interpretation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["plot_explanation", "plot_prediction"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_prediction(
    prediction: xr.Dataset,
    path: str | Path,
    *,
    kmc_replicas: np.ndarray | None = None,
    point: int = 0,
    times_s: Sequence[float] | None = None,
    title: str | None = None,
) -> Path:
    """Normalised density vs time and z, kMC above and surrogate below, and profiles with bands.

    Parameters
    ----------
    prediction : xarray.Dataset
        From :meth:`Surrogate.predict` (dims point, quantile, time, z).
    path : str or Path
        PNG to write.
    kmc_replicas : numpy.ndarray, optional
        (R, T, Z) kMC replica densities (normalised) at the same records, for comparison.
    point : int
        Which point of ``prediction``.
    times_s : sequence of float, optional
        Times of the profile panels (default three spread over the log-time axis).
    title : str, optional
        Figure title (default: the parameters).

    Returns
    -------
    Path
    """
    plt = _plt()
    from matplotlib.colors import LogNorm

    pred = prediction.isel(point=point)
    t = pred["time"].values
    z_nm = pred["z"].values * 1e9
    q = pred["density_quantile"]
    levels = list(np.round(q["quantile"].values, 6))
    med = q.sel(quantile=0.5).values
    lo = q.isel(quantile=levels.index(0.1)).values if 0.1 in levels else q.isel(quantile=0).values
    hi = q.isel(quantile=levels.index(0.9)).values if 0.9 in levels else q.isel(quantile=-1).values
    rows = 3 if kmc_replicas is not None else 2
    fig = plt.figure(figsize=(11, 3.0 * rows))
    grid = fig.add_gridspec(rows, 3, width_ratios=(1, 1, 1))
    vmax = float(np.nanmax(med))
    norm = LogNorm(vmin=0.05, vmax=max(vmax, 1.0))
    maps = []
    if kmc_replicas is not None:
        maps.append(("kMC ensemble mean", kmc_replicas.mean(0)))
    maps.append(("surrogate median", med))
    for r, (label, field) in enumerate(maps):
        ax = fig.add_subplot(grid[r, :])
        mesh = ax.pcolormesh(t, z_nm, np.clip(field, 0.05, None).T, norm=norm, shading="nearest", cmap="viridis")
        ax.set_xscale("log")
        ax.set_ylabel("z (nm)")
        ax.set_title(label, fontsize=9, loc="left")
        fig.colorbar(mesh, ax=ax, label="n / c0", pad=0.01)
    if times_s is None:
        times_s = t[np.linspace(0, t.size - 1, 5).astype(int)[[1, 2, 4]]]
    for c, ts in enumerate(times_s):
        i = int(np.argmin(np.abs(t - ts)))
        ax = fig.add_subplot(grid[rows - 1, c])
        if kmc_replicas is not None:
            reps = kmc_replicas[:, i]
            ax.fill_between(z_nm, reps.min(0), reps.max(0), color="0.75", step="mid", label="kMC replicas (range)")
            ax.plot(z_nm, reps.mean(0), "k-", lw=1, label="kMC mean")
        # the band is of the dequantised counts (± half an ion); below zero it only means "no ion"
        ax.fill_between(z_nm, np.clip(lo[i], 0, None), hi[i], color="C1", alpha=0.4, label="surrogate 10-90 %")
        ax.plot(z_nm, med[i], "C1-", lw=1.2, label="surrogate median")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("z (nm)")
        ax.set_title(f"t = {t[i]:.3g} s", fontsize=9)
        if c == 0:
            ax.set_ylabel("n / c0")
            ax.legend(fontsize=7, loc="upper right")
    params = {k: float(v) for k, v in pred.coords.items() if k not in ("point", "quantile", "time", "z")}
    fig.suptitle(title or ", ".join(f"{k} = {v:.4g}" for k, v in params.items()), fontsize=10)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def plot_explanation(explanation: xr.Dataset, path: str | Path) -> Path:
    """Plot static importances, decoder importances over time and the attention (point-averaged)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    s = explanation["static_importance"].mean("point")
    axes[0].bar(range(s.size), s.values, color="C0")
    axes[0].set_xticks(range(s.size), [str(v) for v in s["static"].values], rotation=20, fontsize=8)
    axes[0].set_ylabel("mean selection weight")
    axes[0].set_title("static covariates", fontsize=9)
    d = explanation["decoder_importance"].mean("point")
    t = d["time"].values
    for j, name in enumerate(d["decoder"].values):
        axes[1].plot(t, d.isel(decoder=j).values, label=str(name))
    axes[1].set_xscale("log")
    axes[1].set_xlabel("t (s)")
    axes[1].set_title("known-future covariates", fontsize=9)
    axes[1].legend(fontsize=7)
    a = explanation["attention"].mean("point").values
    pos = explanation["position"].values
    mesh = axes[2].pcolormesh(np.arange(pos.size), np.arange(t.size), a, shading="nearest", cmap="magma")
    axes[2].set_xlabel("attended step")
    axes[2].set_ylabel("forecast step")
    axes[2].set_title("attention (head-averaged)", fontsize=9)
    fig.colorbar(mesh, ax=axes[2])
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
