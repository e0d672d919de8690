"""The Müller–Brown toy: exact Boltzmann samples and a redundant, nonlinear feature set.

The potential (Müller & Brown 1979, Theor. Chim. Acta 53, 75) is a sum of four Gaussians with
three minima. Samples are drawn exactly from exp(−V/kT) on a fine grid (no dynamics), then
embedded in ``n_features`` distances to fixed anchor points, which is how a molecule's
pairwise distances relate to its few slow coordinates: many features, two degrees of freedom.
"""

from __future__ import annotations

import numpy as np

from ..errors import param_error

__all__ = ["muller_brown", "muller_brown_features", "muller_brown_samples"]

_A = np.array([-200.0, -100.0, -170.0, 15.0])
_a = np.array([-1.0, -1.0, -6.5, 0.7])
_b = np.array([0.0, 0.0, 11.0, 0.6])
_c = np.array([-10.0, -10.0, -6.5, 0.7])
_X0 = np.array([1.0, 0.0, -0.5, -1.0])
_Y0 = np.array([0.0, 0.5, 1.5, 1.0])


def muller_brown(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Müller–Brown potential V(x, y) (its own energy units; minima ≈ −147, −108, −82)."""
    x, y = np.asarray(x, dtype=float)[..., None], np.asarray(y, dtype=float)[..., None]
    dx, dy = x - _X0, y - _Y0
    return np.sum(_A * np.exp(_a * dx**2 + _b * dx * dy + _c * dy**2), axis=-1)


def muller_brown_samples(n: int, kT: float = 20.0, seed: int = 0, grid: int = 400) -> np.ndarray:
    """Exact samples of exp(−V/kT) over [−1.7, 1.2] × [−0.4, 2.1] (grid cells, uniform inside a cell).

    Parameters
    ----------
    n : int
        Number of samples.
    kT : float
        Temperature in the potential's units (20 puts all three basins in reach).
    seed : int
        Seed.
    grid : int
        Grid cells per axis.

    Returns
    -------
    numpy.ndarray
        Positions (n, 2).
    """
    if not kT > 0:
        raise param_error("kT", kT, "a positive number")
    xs, ys = np.linspace(-1.7, 1.2, grid + 1), np.linspace(-0.4, 2.1, grid + 1)
    xc, yc = 0.5 * (xs[1:] + xs[:-1]), 0.5 * (ys[1:] + ys[:-1])
    v = muller_brown(*np.meshgrid(xc, yc, indexing="ij"))
    p = np.exp(-(v - v.min()) / kT).ravel()
    rng = np.random.default_rng(seed)
    cell = rng.choice(p.size, size=n, p=p / p.sum())
    i, j = np.unravel_index(cell, (grid, grid))
    return np.column_stack([xs[i] + rng.random(n) * (xs[1] - xs[0]), ys[j] + rng.random(n) * (ys[1] - ys[0])])


def muller_brown_features(positions: np.ndarray, n_features: int = 12, noise: float = 0.01, seed: int = 0,
                          scale: float = 1.0) -> np.ndarray:  # fmt: skip
    """Distances from each position to ``n_features`` fixed anchors around the potential, plus noise.

    Parameters
    ----------
    positions : numpy.ndarray
        (N, 2) positions.
    n_features : int
        Number of anchors (features).
    noise : float
        Standard deviation of Gaussian noise added to every distance.
    seed : int
        Seed of the anchors and the noise.
    scale : float
        Unit factor applied to the features (e.g. 1e-3 to mimic raw small-valued units).

    Returns
    -------
    numpy.ndarray
        Features (N, n_features).
    """
    rng = np.random.default_rng(seed)
    anchors = np.column_stack([rng.uniform(-2.5, 2.0, n_features), rng.uniform(-1.0, 3.0, n_features)])
    d = np.linalg.norm(np.asarray(positions)[:, None, :] - anchors[None], axis=-1)
    return scale * (d + noise * rng.standard_normal(d.shape))
