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

__all__ = [
    "first_order_indices",
    "importance_consistency",
    "surrogate_sensitivity",
    "sweep_sensitivity",
    "training_design",
]


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
    return first_order_indices(data.static, data.static_names, data.mean[:, 1:], bins)


def first_order_indices(
    static: np.ndarray, names: tuple[str, ...] | list[str], fields: np.ndarray, bins: int | None = None
) -> dict[str, float]:
    """First-order indices of fields (P, ...) to the static covariates (P, S), bias-corrected by permutation."""
    n_points = static.shape[0]
    y = transform(np.asarray(fields, dtype=float)).reshape(n_points, -1)
    var = y.var(0)
    keep = var > 1e-12
    y, var = y[:, keep], var[keep]
    k = bins or max(2, int(np.sqrt(n_points)))
    rng = np.random.default_rng(0)

    def index(x: np.ndarray) -> float:
        edges = np.quantile(x, np.linspace(0, 1, k + 1)[1:-1])
        group = np.searchsorted(edges, x, side="right")
        cond = np.zeros_like(y)
        for g in np.unique(group):
            cond[group == g] = y[group == g].mean(0)
        return float(np.sum(cond.var(0)) / np.sum(var))

    out = {}
    for j, name in enumerate(names):
        x = static[:, j]
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


def surrogate_sensitivity(model: Any, n_points: int = 256, fields_fn: Any = None, seed: int = 0) -> dict[str, float]:
    """First-order indices of the surrogate's own mean fields over a Sobol design of the training ranges.

    Parameters
    ----------
    model : Surrogate
        Trained model; its sweep spec gives the parameter ranges.
    n_points : int
        Design size (a power of two).
    fields_fn : callable, optional
        ``fields_fn(model, params) -> fields`` for models with field covariates
        (e.g. :func:`surrodyn.pipeline.continuum_fields`).
    seed : int
        Seed of the design.

    Returns
    -------
    dict of str to float
        As :func:`sweep_sensitivity`, with the same estimator, on noise-free surrogate fields.
    """
    from .data import static_value

    params = training_design(model, n_points, seed)
    fields = fields_fn(model, params) if fields_fn is not None else None
    _, mean, _ = model.forward_arrays(params, fields=fields)
    static = np.stack([static_value(p, params[p]) for p in model.parameters], -1)
    return first_order_indices(static, model.config.static_names, mean, bins=int(np.sqrt(n_points)))


def training_design(model: Any, n_points: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Draw a scrambled Sobol design of ``n_points`` parameter sets over the training sweep's ranges."""
    from ..sweep.design import unit_samples

    swept = [p for p in model.spec.parameters if p.name in model.parameters]
    u = unit_samples("sobol", n_points, len(swept), seed=seed)
    return {p.name: np.array([p.from_unit(x) for x in u[:, j]]) for j, p in enumerate(swept)}
