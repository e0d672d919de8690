"""Transition temperatures of a ramp, three independent ways, and energy-based phase labels.

1. **Basin switch**: the frame that best splits two consecutive basins of the (smoothed) basin
   sequence, read as a temperature.
2. **Heat capacity**: the peak of :math:`C = dE/dT` from the caloric curve, the slope taken by
   Gaussian-kernel local linear regression.
3. **Lindemann index**: the steepest rise of the pair-distance fluctuation over sliding windows.

The energy-based phase labels (the reference of the adjusted Rand index) segment the potential
energy against temperature into straight pieces by dynamic programming, knowing nothing of the
descriptors.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from ..errors import param_error

__all__ = [
    "KB_EV",
    "energy_phase_labels",
    "heat_capacity",
    "lindemann_index",
    "smooth_labels",
    "switch_temperatures",
]

KB_EV = 8.617333262e-5  # Boltzmann constant, eV/K


def smooth_labels(labels: np.ndarray, window: int = 11) -> np.ndarray:
    """Smooth a label sequence by its running mode; noise (-1) takes the mode of its window.

    Parameters
    ----------
    labels : ndarray of int, shape (n_frames,)
        Basin labels in time order, ``-1`` for noise.
    window : int
        Odd window length in frames.

    Returns
    -------
    ndarray of int
        Smoothed labels (-1 only where a whole window is noise).
    """
    lab = np.asarray(labels, dtype=int)
    if window < 1 or window % 2 == 0:
        raise param_error("window", window, "a positive odd number of frames")
    ids = np.unique(lab[lab >= 0])
    if ids.size == 0:
        return lab.copy()
    half = window // 2
    onehot = (lab[:, None] == ids[None, :]).astype(float)
    padded = np.pad(onehot, ((half, half), (0, 0)))
    counts = np.cumsum(padded, axis=0)
    counts = np.vstack([np.zeros((1, ids.size)), counts])
    win = counts[window:] - counts[:-window]
    out = ids[np.argmax(win, axis=1)]
    out[win.max(axis=1) == 0] = -1
    return out


def switch_temperatures(labels: np.ndarray, temperature: np.ndarray) -> list[tuple[int, int, float]]:
    """Temperatures at which the trajectory switches from each basin to the next.

    Parameters
    ----------
    labels : ndarray of int, shape (n_frames,)
        Basin labels numbered in order of appearance (as :class:`BasinFinder` gives them), -1 noise.
    temperature : ndarray, shape (n_frames,)
        Temperature of each frame (the thermostat's, for a ramp).

    Returns
    -------
    list of (int, int, float)
        ``(a, a + 1, T)`` for consecutive basins; ``T`` is the temperature at the split frame
        ``f`` minimising the frames of ``a`` after ``f`` plus those of ``a + 1`` before it (ties:
        the middle of the best range). Frames of other basins and noise are ignored.
    """
    lab = np.asarray(labels, dtype=int)
    temp = np.asarray(temperature, dtype=float)
    if lab.shape != temp.shape:
        raise param_error("temperature", temp.shape, f"one temperature per frame, shape {lab.shape}")
    out = []
    for a in range(int(lab.max(initial=-1))):
        is_a, is_b = (lab == a).astype(int), (lab == a + 1).astype(int)
        # cost(f) = #a in [f, n) + #b in [0, f)
        cost = np.concatenate([[0], np.cumsum(is_b)]) + np.concatenate([np.cumsum(is_a[::-1])[::-1], [0]])
        best = np.flatnonzero(cost == cost.min())
        f = int(best[len(best) // 2])
        f = min(max(f, 1), len(temp) - 1)
        out.append((a, a + 1, float(0.5 * (temp[f - 1] + temp[f]))))
    return out


def heat_capacity(
    temperature: np.ndarray, energy: np.ndarray, bandwidth_K: float = 25.0, grid_K: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Heat capacity :math:`dE/dT` of a caloric curve by kernel-weighted local linear regression.

    Parameters
    ----------
    temperature : ndarray, shape (n,)
        Temperatures (K).
    energy : ndarray, shape (n,)
        Energies (eV); pass the total energy, or the potential energy plus :math:`\frac32 N k_B T`.
    bandwidth_K : float
        Standard deviation of the Gaussian kernel.
    grid_K : ndarray, optional
        Where to evaluate; default 200 points across the data.

    Returns
    -------
    grid_K : ndarray
    c_eV_per_K : ndarray
        The slope at each grid temperature.

    Notes
    -----
    At each :math:`T_0`, fit :math:`E \approx a + C (T - T_0)` with weights
    :math:`w = e^{-(T - T_0)^2 / 2h^2}`; :math:`C = \sum w \Delta T \Delta E / \sum w \Delta T^2`
    with weighted-mean-centred :math:`\Delta`.
    """
    t = np.asarray(temperature, dtype=float)
    e = np.asarray(energy, dtype=float)
    if t.shape != e.shape or t.ndim != 1 or t.size < 5:
        raise param_error("energy", e.shape, f"one energy per temperature (>= 5), shape {t.shape}")
    if not bandwidth_K > 0:
        raise param_error("bandwidth_K", bandwidth_K, "a positive width in K")
    grid = np.linspace(t.min(), t.max(), 200) if grid_K is None else np.asarray(grid_K, dtype=float)
    w = np.exp(-0.5 * ((t[None, :] - grid[:, None]) / bandwidth_K) ** 2)
    sw = w.sum(axis=1, keepdims=True)
    tm = (w * t).sum(axis=1, keepdims=True) / sw
    em = (w * e).sum(axis=1, keepdims=True) / sw
    dt = t[None, :] - tm
    c = (w * dt * (e[None, :] - em)).sum(axis=1) / (w * dt**2).sum(axis=1)
    return grid, c


def lindemann_index(positions: np.ndarray, window: int = 20) -> np.ndarray:
    r"""Lindemann index over sliding windows of frames.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, n_atoms, 3)
        Frames in time order.
    window : int
        Frames per window (centred; a full window shifted inward at the ends).

    Returns
    -------
    ndarray, shape (n_frames,)
        :math:`\delta = \frac{2}{N(N-1)} \sum_{i<j} \sqrt{\langle r_{ij}^2\rangle - \langle r_{ij}\rangle^2}
        / \langle r_{ij}\rangle` with averages over the window around each frame.
    """
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise param_error("positions", pos.shape, "an array of shape (n_frames, n_atoms, 3)")
    if window < 2:
        raise param_error("window", window, "an integer >= 2")
    d = np.stack([pdist(p) for p in pos])
    c1 = np.vstack([np.zeros((1, d.shape[1])), np.cumsum(d, axis=0)])
    c2 = np.vstack([np.zeros((1, d.shape[1])), np.cumsum(d**2, axis=0)])
    n = len(pos)
    lo = np.clip(np.arange(n) - window // 2, 0, None)
    hi = np.clip(lo + window, None, n)
    lo = np.clip(hi - window, 0, None)
    cnt = (hi - lo)[:, None]
    m1 = (c1[hi] - c1[lo]) / cnt
    m2 = (c2[hi] - c2[lo]) / cnt
    return (np.sqrt(np.clip(m2 - m1**2, 0, None)) / m1).mean(axis=1)


def _segment_costs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSE of a straight-line fit of y on x over every frame range [i, j)."""
    n = len(x)
    # centred first: the fits do not change, but running sums of y^2 at an absolute energy zero
    # (1e6 eV and more) would swamp the residuals in round-off
    x, y = x - x.mean(), y - y.mean()
    cs = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones(n), x, y, x * x, x * y, y * y)]
    s0, sx, sy, sxx, sxy, syy = (c[None, :] - c[:, None] for c in cs)
    with np.errstate(invalid="ignore", divide="ignore"):
        vx = sxx - sx**2 / s0
        cxy = sxy - sx * sy / s0
        sse = syy - sy**2 / s0 - np.where(vx > 1e-12, cxy**2 / vx, 0.0)
    sse[~(s0 > 0)] = np.inf
    return np.clip(sse, 0.0, None)


def energy_phase_labels(
    temperature: np.ndarray, energy: np.ndarray, n_phases: int, min_frames: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Phase labels from the caloric curve alone: the best piecewise-linear fit with ``n_phases`` pieces.

    Parameters
    ----------
    temperature : ndarray, shape (n_frames,)
        Temperatures in time order (a monotone ramp).
    energy : ndarray, shape (n_frames,)
        Potential energy of each frame.
    n_phases : int
        Number of pieces.
    min_frames : int
        Shortest piece.

    Returns
    -------
    labels : ndarray of int, shape (n_frames,)
        Piece index 0, 1, ... of each frame.
    breaks : ndarray of int
        First frame of pieces 1, 2, ... of the contiguous segmentation.

    Notes
    -----
    Minimises the summed squared residuals of a separate straight line E(T) on each piece over all
    contiguous segmentations (dynamic programming, :math:`O(K n^2)`). A phase transition is a kink
    or a jump of the caloric curve, which is where the pieces break. Frames in the middle of a
    jump belong to whichever piece fits them better, so agreement with descriptor basins is
    limited by the width of the jump.
    """
    t = np.asarray(temperature, dtype=float)
    e = np.asarray(energy, dtype=float)
    n, k = len(t), int(n_phases)
    if k < 1 or k * min_frames > n:
        raise param_error("n_phases", n_phases, f"between 1 and n_frames / min_frames = {n // max(min_frames, 1)}")
    cost = _segment_costs(t, e)
    idx = np.arange(n + 1)
    too_short = idx[None, :] - idx[:, None] < min_frames
    cost[too_short] = np.inf
    best = np.full((k + 1, n + 1), np.inf)
    arg = np.zeros((k + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for p in range(1, k + 1):
        tot = best[p - 1][:, None] + cost  # start i -> end j
        arg[p] = np.argmin(tot, axis=0)
        best[p] = tot[arg[p], idx]
    breaks = []
    j = n
    for p in range(k, 0, -1):
        j = int(arg[p, j])
        breaks.append(j)
    breaks = sorted(breaks)[1:]
    labels = np.searchsorted(np.asarray(breaks), np.arange(n), side="right")
    return labels, np.asarray(breaks, dtype=int)
