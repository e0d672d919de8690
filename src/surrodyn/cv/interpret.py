"""Interpret learned CVs: rank geometric variables by their association with each latent dimension.

For every latent dimension and every variable: Pearson and Spearman correlation and the mutual
information (k-nearest-neighbour estimator of Kraskov et al. 2004, via scikit-learn, in nats).
Periodic variables (angles) enter as their sine and cosine, and the stronger of the two is kept,
since a correlation with a raw angle is meaningless across the ±π cut. The correlation matrix
between latent dimensions measures disentanglement (off-diagonal near 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import ConfigError

__all__ = ["latent_correlation", "rank_variables", "top_variables"]


def _columns(variables: Mapping[str, np.ndarray], periodic: Sequence[str], n: int) -> tuple[list[str], np.ndarray]:
    names, cols = [], []
    for name, values in variables.items():
        v = np.asarray(values, dtype=float).ravel()
        if v.size != n:
            raise ConfigError(f"variable {name!r} has {v.size} frames, the latent {n}.")
        if name in periodic:
            names += [f"sin {name}", f"cos {name}"]
            cols += [np.sin(v), np.cos(v)]
        else:
            names.append(name)
            cols.append(v)
    return names, np.column_stack(cols)


def rank_variables(
    latent: np.ndarray,
    variables: Mapping[str, np.ndarray],
    periodic: Sequence[str] = (),
    mutual_information: bool = True,
    max_frames: int = 5000,
    seed: int = 0,
) -> xr.Dataset:
    """Association of every latent dimension with every geometric variable.

    Parameters
    ----------
    latent : numpy.ndarray
        Latent coordinates (N, d).
    variables : mapping of str to numpy.ndarray
        Geometric variables per frame (N,), by name.
    periodic : sequence of str
        Names of variables that are angles in radians (entered as sin and cos).
    mutual_information : bool
        Also estimate the mutual information (slower: k-NN estimator on up to ``max_frames`` frames).
    max_frames : int
        Frames drawn (seeded) for the mutual information.
    seed : int
        Seed of that draw and of the estimator.

    Returns
    -------
    xarray.Dataset
        ``pearson``, ``spearman`` and ``mutual_information`` over dims (latent, variable); the
        variables include ``sin x``/``cos x`` for periodic ones. Use :func:`top_variables` to rank.
    """
    from scipy.stats import rankdata

    z = np.asarray(latent, dtype=float)
    z = z[:, None] if z.ndim == 1 else z
    names, v = _columns(variables, periodic, z.shape[0])
    if z.shape[0] < 3:
        raise ConfigError("at least 3 frames are needed to correlate.")

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), np.inf)
        b = (b - b.mean(0)) / np.where(b.std(0) > 0, b.std(0), np.inf)
        return a.T @ b / a.shape[0]

    data = {
        "pearson": (("latent", "variable"), corr(z, v)),
        "spearman": (("latent", "variable"), corr(rankdata(z, axis=0), rankdata(v, axis=0))),
    }
    if mutual_information:
        from sklearn.feature_selection import mutual_info_regression

        rng = np.random.default_rng(seed)
        idx = rng.choice(z.shape[0], size=min(max_frames, z.shape[0]), replace=False)
        mi = np.stack([mutual_info_regression(v[idx], z[idx, d], random_state=seed) for d in range(z.shape[1])])
        data["mutual_information"] = (("latent", "variable"), mi)
    return xr.Dataset(data, coords={"latent": np.arange(z.shape[1]), "variable": names})


def top_variables(table: xr.Dataset, by: str = "spearman", n: int = 5) -> dict[int, list[tuple[str, float]]]:
    """Return the ``n`` variables most associated with each latent dimension (by |value| of ``by``)."""
    if by not in table:
        raise ConfigError(f"unknown ranking {by!r}; the table has {list(table.data_vars)}.")
    out = {}
    for d in table["latent"].values:
        vals = table[by].sel(latent=d).values
        order = np.argsort(-np.abs(vals))[:n]
        out[int(d)] = [(str(table["variable"].values[i]), float(vals[i])) for i in order]
    return out


def latent_correlation(latent: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix between latent dimensions (disentanglement: off-diagonal ≈ 0)."""
    z = np.asarray(latent, dtype=float)
    return np.atleast_2d(np.corrcoef(z, rowvar=False))
