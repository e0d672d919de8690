"""Quality metrics of a latent space against known slow variables."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["basin_accuracy", "knn_r2"]


def knn_r2(latent: np.ndarray, target: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0,
           periodic: bool = False) -> float:  # fmt: skip
    """Cross-validated R² of predicting ``target`` from ``latent`` by k-nearest-neighbour regression.

    A latent that determines the variable (through any smooth map, not only a linear one) scores
    near 1; one that ignores it scores near 0.

    Parameters
    ----------
    latent : numpy.ndarray
        Latent coordinates (N, d) or (N,).
    target : numpy.ndarray
        Variable to recover (N,).
    k : int
        Neighbours (distance-weighted).
    folds : int
        Shuffled K-fold cross-validation.
    seed : int
        Seed of the fold assignment.
    periodic : bool
        The target is an angle in radians: regress (sin, cos) and score the R² of the angle
        through the circular residual.

    Returns
    -------
    float
        Out-of-fold R² (1 − SSE/SST).
    """
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsRegressor

    z = np.asarray(latent, dtype=float).reshape(len(latent), -1)
    t = np.asarray(target, dtype=float).ravel()
    if z.shape[0] != t.size:
        raise ConfigError(f"latent has {z.shape[0]} frames, target {t.size}.")
    y = np.column_stack([np.sin(t), np.cos(t)]) if periodic else t[:, None]
    pred = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(z):
        model = KNeighborsRegressor(n_neighbors=k, weights="distance").fit(z[train], y[train])
        pred[test] = model.predict(z[test])
    if periodic:
        resid = np.angle(np.exp(1j * (np.arctan2(pred[:, 0], pred[:, 1]) - t)))
        centre = np.angle(np.mean(np.exp(1j * t)))
        spread = np.angle(np.exp(1j * (t - centre)))
        return float(1.0 - np.sum(resid**2) / np.sum(spread**2))
    return float(1.0 - np.sum((pred[:, 0] - t) ** 2) / np.sum((t - t.mean()) ** 2))


def basin_accuracy(latent: np.ndarray, labels: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated balanced accuracy of telling basins apart from the latent (k-NN classifier).

    Parameters
    ----------
    latent : numpy.ndarray
        Latent coordinates (N, d) or (N,).
    labels : numpy.ndarray
        Basin label per frame (N,), e.g. ``phi > 0``.
    k : int
        Neighbours.
    folds : int
        Shuffled, stratified K-fold cross-validation.
    seed : int
        Seed of the fold assignment.

    Returns
    -------
    float
        Out-of-fold balanced accuracy (mean recall over basins; 1/n_basins by chance).
    """
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    z = np.asarray(latent, dtype=float).reshape(len(latent), -1)
    y = np.asarray(labels).ravel()
    if z.shape[0] != y.size:
        raise ConfigError(f"latent has {z.shape[0]} frames, labels {y.size}.")
    if np.unique(y).size < 2:
        raise ConfigError("the labels hold a single basin: nothing to tell apart.")
    pred = np.empty_like(y)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y):
        pred[test] = KNeighborsClassifier(n_neighbors=k).fit(z[train], y[train]).predict(z[test])
    return float(balanced_accuracy_score(y, pred))
