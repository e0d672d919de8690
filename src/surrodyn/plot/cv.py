"""Figures of learned CVs: latent free energy, latent coloured by geometric variables, rankings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ConfigError

__all__ = ["latent_free_energy", "plot_latent_colored", "plot_latent_fes", "plot_latent_on_plane", "plot_ranking"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _latent(latent: np.ndarray) -> np.ndarray:
    z = np.asarray(latent, dtype=float)
    z = z[:, None] if z.ndim == 1 else z
    if z.ndim != 2 or z.shape[0] < 2:
        raise ConfigError(f"the latent must be (frames, dims) with at least 2 frames; got shape {z.shape}.")
    return z


def latent_free_energy(
    latent: np.ndarray, kT: float = 2.494, weights: np.ndarray | None = None, bins: int = 60
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Free energy F = −kT ln p of the first one or two latent dimensions, on a histogram grid.

    Parameters
    ----------
    latent : numpy.ndarray
        (N, d) latent coordinates.
    kT : float
        Thermal energy in the unit of the result (default kJ/mol at 300 K).
    weights : numpy.ndarray, optional
        (N,) statistical weights of the frames, e.g. ``exp(bias/kT)`` for a biased run.
    bins : int
        Bins per dimension.

    Returns
    -------
    tuple
        F (bins,) or (bins, bins) with its minimum at 0 and +inf where no frame fell, and the bin edges.
    """
    z = _latent(latent)[:, :2]
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (w.shape != (z.shape[0],) or not np.all(w >= 0) or not w.sum() > 0):
        raise ConfigError(f"weights must be ({z.shape[0]},) non-negative with a positive sum.")
    hist, edges = np.histogramdd(z, bins=bins, weights=w, density=True)
    with np.errstate(divide="ignore"):
        f = -kT * np.log(hist)
    return f - f[np.isfinite(f)].min(), list(edges)


def plot_latent_fes(
    latent: np.ndarray, path: str | Path, kT: float = 2.494, weights: np.ndarray | None = None, unit: str = "kJ/mol"
) -> Path:
    """Draw the latent free-energy surface (1D profile or 2D map of the first two dimensions) as a PNG."""
    plt = _plt()
    f, edges = latent_free_energy(latent, kT, weights)
    fig, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    if f.ndim == 1:
        centres = 0.5 * (edges[0][1:] + edges[0][:-1])
        ax.plot(centres, f, color="k")
        ax.set_xlabel("latent 0")
        ax.set_ylabel(f"F ({unit})")
    else:
        shown = np.where(np.isfinite(f), f, np.nan).T
        mesh = ax.pcolormesh(edges[0], edges[1], shown, cmap="viridis", shading="flat")
        ax.contour(
            0.5 * (edges[0][1:] + edges[0][:-1]), 0.5 * (edges[1][1:] + edges[1][:-1]), shown,
            levels=np.arange(kT, np.nanmax(shown), kT), colors="w", linewidths=0.4,
        )  # fmt: skip
        fig.colorbar(mesh, ax=ax, label=f"F ({unit})")
        ax.set_xlabel("latent 0")
        ax.set_ylabel("latent 1")
    ax.set_title("free energy of the latent space, −kT ln p")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_latent_on_plane(
    latent: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    names: tuple[str, str] = ("x", "y"),
    max_points: int = 20000,
    seed: int = 0,
) -> Path:
    """Draw each latent dimension over the plane of two geometric variables (e.g. a Ramachandran plot).

    The inverse view of :func:`plot_latent_colored`. The first panel is the density of the frames
    on the plane (log scale); each further panel colours the frames by one latent dimension
    (colour range from its 1st to 99th percentile). A latent that folds, taking one value at both
    ends of a path between basins, shows up here at once, while a correlation table only sees a
    weaker number.

    Parameters
    ----------
    latent : numpy.ndarray
        (N, d) latent coordinates.
    x, y : numpy.ndarray
        (N,) the two variables spanning the plane.
    path : str or Path
        PNG to write.
    names : tuple of str
        Axis labels.
    max_points : int
        Frames drawn in the coloured panels (seeded subsample).
    seed : int
        Seed of the subsample.
    """
    plt = _plt()
    z = _latent(latent)
    xv, yv = (np.asarray(v, dtype=float).ravel() for v in (x, y))
    if xv.size != z.shape[0] or yv.size != z.shape[0]:
        raise ConfigError(f"the plane's variables have {xv.size} and {yv.size} frames, the latent {z.shape[0]}.")
    idx = np.random.default_rng(seed).permutation(z.shape[0])[:max_points]
    n = z.shape[1] + 1
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, constrained_layout=True)
    ax = axes.flat[0]
    ax.hist2d(xv, yv, bins=60, cmap="Greys", cmin=1, norm="log")
    ax.set_title("frames (log density)", fontsize=9)
    for d, ax in enumerate(list(axes.flat)[1:n]):
        lo, hi = np.percentile(z[:, d], [1, 99])
        sc = ax.scatter(xv[idx], yv[idx], c=z[idx, d], s=2, cmap="coolwarm", vmin=lo, vmax=hi)
        fig.colorbar(sc, ax=ax)
        ax.set_title(f"latent {d}", fontsize=9)
    for ax in list(axes.flat)[:n]:
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_latent_colored(
    latent: np.ndarray, variables: Mapping[str, np.ndarray], path: str | Path, max_points: int = 20000, seed: int = 0
) -> Path:
    """Scatter the first two latent dimensions, one panel per variable, coloured by its value.

    Parameters
    ----------
    latent : numpy.ndarray
        (N, d) latent coordinates (a 1D latent is drawn against the frame index).
    variables : mapping of str to numpy.ndarray
        Variables per frame (N,), e.g. the top-ranked geometric variables.
    path : str or Path
        PNG to write.
    max_points : int
        Frames drawn (seeded subsample) to keep the figure light.
    seed : int
        Seed of the subsample.
    """
    plt = _plt()
    z = _latent(latent)
    if not variables:
        raise ConfigError("no variables to colour the latent space by.")
    idx = np.random.default_rng(seed).permutation(z.shape[0])[:max_points]
    x, y = (z[idx, 0], z[idx, 1]) if z.shape[1] > 1 else (idx.astype(float), z[idx, 0])
    n = len(variables)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, constrained_layout=True)
    for ax, (name, values) in zip(axes.flat, variables.items(), strict=False):
        v = np.asarray(values, dtype=float).ravel()
        if v.size != z.shape[0]:
            raise ConfigError(f"variable {name!r} has {v.size} frames, the latent {z.shape[0]}.")
        sc = ax.scatter(x, y, c=v[idx], s=2, cmap="twilight" if "phi" in name or "psi" in name else "viridis")
        fig.colorbar(sc, ax=ax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("latent 0" if z.shape[1] > 1 else "frame")
        ax.set_ylabel("latent 1" if z.shape[1] > 1 else "latent 0")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_ranking(table: xr.Dataset, path: str | Path, by: str = "spearman", n: int = 10) -> Path:
    """Bar chart of the ``n`` variables most associated with each latent dimension (|``by``|).

    Parameters
    ----------
    table : xarray.Dataset
        From :func:`surrodyn.cv.interpret.rank_variables`.
    path : str or Path
        PNG to write.
    by : str
        ``"pearson"``, ``"spearman"`` or ``"mutual_information"``.
    n : int
        Variables per latent dimension.
    """
    from ..cv.interpret import top_variables

    plt = _plt()
    top = top_variables(table, by=by, n=n)
    fig, axes = plt.subplots(1, len(top), figsize=(4.6 * len(top), 0.32 * n + 1.4), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax, (d, items) in zip(axes[0], top.items(), strict=True):
        names = [name for name, _ in items][::-1]
        values = [value for _, value in items][::-1]
        ax.barh(names, np.abs(values), color=["tab:red" if v < 0 else "tab:blue" for v in values])
        ax.set_title(f"latent {d}", fontsize=10)
        ax.set_xlabel(f"|{by}|" + (" (red: negative)" if by != "mutual_information" else " (nats)"))
        ax.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
