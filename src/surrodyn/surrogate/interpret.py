"""Interpretation checks: the TFT's variable importances against a direct sensitivity analysis of the data.

The TFT's static selection weights say how much each static covariate feeds the network. That is
only worth reporting if it agrees with what the kMC data themselves say, so
:func:`sweep_sensitivity` estimates first-order variance-based (Sobol) indices of the kMC
ensemble-mean fields over the sweep, S_i = Var(E[Y | x_i]) / Var(Y), per record and bin,
averaged; :func:`importance_consistency` compares the two rankings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .data import FieldData, transform

__all__ = ["importance_consistency", "sweep_sensitivity"]


def sweep_sensitivity(data: FieldData, bins: int | None = None) -> dict[str, float]:
    """First-order sensitivity indices of the kMC mean fields to each static covariate.

    Parameters
    ----------
    data : FieldData
        Sweep points with ensemble means (space-filling designs: Sobol or LHS).
    bins : int, optional
        Quantile bins per parameter for the conditional means (default ``max(2, √P)``).

    Returns
    -------
    dict of str to float
        Per static covariate name, the index averaged over records and bins (variance-weighted),
        corrected for the bias of binning finite samples by subtracting the index of a random
        permutation of the same parameter.

    Notes
    -----
    Y is ``asinh(n / c0)`` of the ensemble mean, the network's own scale. With ``P`` points
    and ``k`` bins, E[Y | x_i] is the mean of Y over the points in each bin.
    """
    if data.mean is None:
        raise ValueError("sensitivity needs the ensemble means (FieldData.mean).")
    y = transform(data.mean[:, 1:].astype(float)).reshape(data.n_points, -1)
    var = y.var(0)
    keep = var > 1e-12
    y, var = y[:, keep], var[keep]
    k = bins or max(2, int(np.sqrt(data.n_points)))
    rng = np.random.default_rng(0)

    def index(x: np.ndarray) -> float:
        edges = np.quantile(x, np.linspace(0, 1, k + 1)[1:-1])
        group = np.searchsorted(edges, x, side="right")
        cond = np.zeros_like(y)
        for g in np.unique(group):
            cond[group == g] = y[group == g].mean(0)
        return float(np.sum(cond.var(0)) / np.sum(var))

    out = {}
    for j, name in enumerate(data.static_names):
        x = data.static[:, j]
        null = np.mean([index(rng.permutation(x)) for _ in range(20)])
        out[name] = float(max(0.0, index(x) - null))
    return out


def importance_consistency(tft_importance: dict[str, float], sensitivity: dict[str, float]) -> dict[str, Any]:
    """Compare TFT importances with data sensitivities: normalised shares and Spearman rank correlation."""
    names = list(tft_importance)
    a = np.array([tft_importance[n] for n in names])
    b = np.array([sensitivity.get(n, 0.0) for n in names])
    rho = float(spearmanr(a, b).statistic) if len(names) > 2 else float("nan")
    return {
        "names": names,
        "tft_share": (a / a.sum()).tolist(),
        "sensitivity_share": (b / b.sum()).tolist() if b.sum() > 0 else b.tolist(),
        "same_top": bool(np.argmax(a) == np.argmax(b)),
        "same_order": bool(np.array_equal(np.argsort(a), np.argsort(b))),
        "spearman": rho,
    }
