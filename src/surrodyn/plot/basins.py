"""Figures of a basin analysis: t-SNE maps, split and merge, occupancy, caloric curve, morphologies."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.ramp_analysis import BasinAnalysis

__all__ = [
    "plot_basin_map",
    "plot_caloric_curve",
    "plot_morphologies",
    "plot_occupancy",
    "plot_split_and_merge",
    "save_basin_figures",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _basin_colors(n: int) -> list[Any]:
    cmap = _plt().get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_basin_map(result: BasinAnalysis) -> Any:
    """Plot the 2-D embedding coloured by temperature (left) and by basin (right; noise grey)."""
    plt = _plt()
    emb, lab, temp = result.finder.embedding_, result.finder.labels_, result.temperature
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    sc = a.scatter(emb[:, 0], emb[:, 1], c=temp, s=5, cmap="coolwarm")
    fig.colorbar(sc, ax=a, label="T (K)")
    a.set_title("coloured by temperature")
    colors = _basin_colors(result.finder.n_basins_)
    noise = lab < 0
    b.scatter(emb[noise, 0], emb[noise, 1], s=5, c="0.7", label="noise")
    for k in range(result.finder.n_basins_):
        m = lab == k
        b.scatter(emb[m, 0], emb[m, 1], s=5, color=colors[k], label=f"{k}: {result.morphology[k]}")
    b.legend(markerscale=3, fontsize=8)
    b.set_title("basins")
    for ax in (a, b):
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    fig.suptitle(str(result.frames.attrs.get("cluster", "")))
    return fig


def plot_split_and_merge(
    embedding: np.ndarray,
    temperature: np.ndarray,
    fragments: np.ndarray,
    basins: np.ndarray,
    x: np.ndarray,
    *,
    merge_threshold: float | None = None,
    title: str = "",
    axes: Any = None,
) -> Any:
    """Plot how the basins were found: the map by temperature, by fragment, by basin, and the valleys.

    Parameters
    ----------
    embedding : ndarray, shape (n_frames, 2)
        The 2-D embedding (``BasinFinder.embedding_``).
    temperature : ndarray, shape (n_frames,)
        Colour of the first panel (K).
    fragments, basins : ndarray of int, shape (n_frames,)
        ``BasinFinder.fragment_labels_`` and ``labels_`` (-1 noise).
    x : ndarray, shape (n_frames, n_features)
        Standardised descriptors.
    merge_threshold : float, optional
        Valley ratio at which pairs are drawn dashed; default the finder's default
        (:data:`surrodyn.analysis.basins.VALLEY_THRESHOLD`).
    title : str
        Title of the first panel.
    axes : sequence of 4 matplotlib axes, optional
        Where to draw (a new figure otherwise).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The last panel shows, for every two fragments consecutive in time (by median frame), the
    kernel density of their frames along their discriminant direction, scaled so that their
    centroids sit at 0 and 1 (:func:`surrodyn.analysis.valley_profile`), labelled with the valley
    ratio. Dashed: no valley deep enough (ratio at or above ``merge_threshold``) to keep the two
    apart under :func:`surrodyn.analysis.merge_by_valley`.
    """
    from ..analysis.basins import VALLEY_THRESHOLD, valley_profile

    merge_threshold = VALLEY_THRESHOLD if merge_threshold is None else float(merge_threshold)
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.9), constrained_layout=True)
    else:
        fig = axes[0].figure
    a_t, a_f, a_b, a_v = axes
    sc = a_t.scatter(*embedding.T, c=temperature, s=3, cmap="coolwarm")
    fig.colorbar(sc, ax=a_t, label="T (K)")
    a_t.set_title(f"{title}: t-SNE map" if title else "t-SNE map")
    for ax, lab, what in ((a_f, fragments, "after splitting"), (a_b, basins, "basins after merging")):
        for c in np.unique(lab):
            m = lab == c
            ax.scatter(*embedding[m].T, s=3, color="0.7" if c < 0 else None, label="noise" if c < 0 else str(c))
        ax.set_title(f"{what} ({len(set(lab.tolist()) - {-1})})")
        ax.legend(markerscale=4, fontsize=7, loc="best")
    ids = sorted((c for c in np.unique(fragments) if c >= 0), key=lambda c: np.median(np.flatnonzero(fragments == c)))
    for a, b in itertools.pairwise(ids):
        pos, dens, ratio = valley_profile(x[fragments == a], x[fragments == b])
        if len(pos):
            style = "--" if ratio >= merge_threshold else "-"
            a_v.plot(pos, dens / dens.max(), ls=style, label=f"{a}|{b}: {ratio:.2f}")
    a_v.axvline(0.0, color="k", lw=0.5)
    a_v.axvline(1.0, color="k", lw=0.5)
    a_v.set_xlabel("position between the two centroids (0, 1)")
    a_v.set_ylabel("density (scaled)")
    a_v.set_title(f"valley ratios (merged at ≥ {merge_threshold:g}, dashed)")
    if len(ids) > 1:
        a_v.legend(fontsize=7)
    return fig


def plot_occupancy(result: BasinAnalysis, bin_K: float = 25.0) -> Any:
    """Plot the fraction of frames in each basin (and noise) in temperature bins, stacked."""
    plt = _plt()
    temp, lab = result.temperature, result.finder.labels_
    edges = np.arange(temp.min(), temp.max() + bin_K, bin_K)
    mids = 0.5 * (edges[:-1] + edges[1:])
    which = np.clip(np.digitize(temp, edges) - 1, 0, len(mids) - 1)
    total = np.maximum(np.bincount(which, minlength=len(mids)), 1)
    fracs = [np.bincount(which[lab == k], minlength=len(mids)) / total for k in range(result.finder.n_basins_)]
    fracs.append(np.bincount(which[lab < 0], minlength=len(mids)) / total)
    labels = [f"{k}: {result.morphology[k]}" for k in range(result.finder.n_basins_)] + ["noise"]
    fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
    ax.stackplot(mids, *fracs, labels=labels, colors=[*_basin_colors(result.finder.n_basins_), "0.7"])
    ax.set_xlabel("T (K)")
    ax.set_ylabel("basin occupancy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="center left")
    return fig


def plot_caloric_curve(result: BasinAnalysis) -> Any:
    """Plot the caloric curve, the heat capacity and the three transition estimates."""
    plt = _plt()
    n = int(result.frames.sizes["atom"])
    temp, epot = result.temperature, result.frames.potential_energy.values
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    ax.scatter(temp, epot / n, s=3, c=result.finder.labels_, cmap="tab10", vmin=0, vmax=9)
    ax.set_xlabel("T (K)")
    ax.set_ylabel("E_pot per atom (eV)")
    cv = ax.twinx()
    kb = 8.617333262e-5
    cv.plot(result.cv_grid_K, result.heat_capacity_eV_K / (n * kb), color="k", lw=1.2, label="C / (N k_B)")
    cv.set_ylabel("C / (N k_B)")
    for t, style, name in [
        (result.melting_K, "-", "basin switch (melting)"),
        (result.cv_peak_K, "--", "heat-capacity peak"),
        (result.lindemann_K, ":", "Lindemann steepest rise"),
    ]:
        if np.isfinite(t):
            ax.axvline(t, color="C3", ls=style, lw=1, label=f"{name}: {t:.0f} K")
    for t in result.solid_solid_K:
        ax.axvline(t, color="C2", ls="-", lw=1, label=f"solid-solid switch: {t:.0f} K")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_morphologies(result: BasinAnalysis) -> Any:
    """Draw each basin's medoid frame (ASE's matplotlib renderer)."""
    plt = _plt()
    from ase import Atoms
    from ase.visualize.plot import plot_atoms

    reps = result.representatives(1)
    fig, axes = plt.subplots(1, max(len(reps), 1), figsize=(3.2 * max(len(reps), 1), 3.4), constrained_layout=True)
    axes = np.atleast_1d(axes)
    symbols = list(result.frames.symbol.values)
    for ax, (b, idx) in zip(axes, reps.items(), strict=False):
        f = int(idx[0])
        atoms = Atoms(symbols, positions=result.frames.positions.values[f])
        atoms.positions -= atoms.positions.mean(axis=0)
        plot_atoms(atoms, ax, rotation="10x,20y,0z", radii=0.9)
        ax.set_title(f"basin {b}: {result.morphology[b]}\nframe {f}, {result.temperature[f]:.0f} K", fontsize=9)
        ax.set_axis_off()
    return fig


def save_basin_figures(result: BasinAnalysis, out: str | Path) -> list[Path]:
    """Write the five figures as PNG into ``out``; returns their paths."""
    plt = _plt()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    f = result.finder
    threshold = f.merge_threshold if f.merge == "valley" else None
    for name, make in [
        ("basin_map", plot_basin_map),
        (
            "split_and_merge",
            lambda r: plot_split_and_merge(
                f.embedding_,
                r.temperature,
                f.fragment_labels_,
                f.labels_,
                f.standardised(r.descriptors.values),
                merge_threshold=threshold,
                title=str(r.frames.attrs.get("cluster", "")),
            ),
        ),
        ("occupancy", plot_occupancy),
        ("caloric_curve", plot_caloric_curve),
        ("morphologies", plot_morphologies),
    ]:
        fig = make(result)
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
