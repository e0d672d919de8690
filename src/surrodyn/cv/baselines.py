"""Linear baselines in the same API as the beta-VAE: PCA and TICA.

Both act on the standardised features, like the beta-VAE, so that every method sees the same
inputs. PCA keeps the directions of largest variance (scikit-learn); TICA the directions of
slowest decorrelation at a lag τ (deeptime, the ``md`` extra). A fitted :class:`LinearCV` is a
mean and a projection matrix; it has :meth:`~LinearCV.transform`, :meth:`~LinearCV.save` and
:meth:`~LinearCV.load` like :class:`~surrodyn.cv.learn.LearnedCV`, and :func:`load_cv` opens
either kind of model directory. The plain-autoencoder baseline is :func:`~surrodyn.cv.learn.fit_cv`
with ``beta = 0``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import atomic_write_bytes
from ..errors import ConfigError, param_error
from .learn import FORMAT_VERSION, LearnedCV, Standardizer, lagged_pairs

__all__ = ["LINEAR_METHODS", "LinearCV", "fit_linear_cv", "load_cv"]

LINEAR_METHODS = ("pca", "tica")


@dataclass
class LinearCV:
    """A linear CV ``z = (standardise(x) − mean) · components``.

    Parameters
    ----------
    method : str
        ``"pca"`` or ``"tica"``.
    standardizer : Standardizer
        Feature statistics of the training frames.
    mean : numpy.ndarray
        (F,) mean of the standardised features subtracted before projecting.
    components : numpy.ndarray
        (F, n_latent) projection.
    feature_names : list of str
        One name per feature.
    info : dict
        Method settings, explained variance (PCA) or implied timescales (TICA), timings.
    """

    method: str
    standardizer: Standardizer
    mean: np.ndarray
    components: np.ndarray
    feature_names: list[str]
    info: dict[str, Any]

    @property
    def n_latent(self) -> int:
        """Number of latent dimensions."""
        return int(self.components.shape[1])

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Return the CVs of frames (N, F), shape (N, n_latent)."""
        x = np.asarray(features, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ConfigError(f"features must be (frames, {len(self.feature_names)}); got shape {x.shape}.")
        return (self.standardizer(x).astype(np.float64) - self.mean) @ self.components

    def save(self, path: str | Path) -> Path:
        """Write the model directory (``model.json``)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.method,
            "mean_features": self.standardizer.mean.tolist(),
            "std_features": self.standardizer.std.tolist(),
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "feature_names": list(self.feature_names),
            "info": self.info,
        }
        atomic_write_bytes(out / "model.json", json.dumps(meta, indent=1).encode())
        return out

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> LinearCV:
        """Rebuild from the dictionary :meth:`save` writes."""
        std = Standardizer(np.asarray(meta["mean_features"]), np.asarray(meta["std_features"]))
        return cls(
            meta["kind"],
            std,
            np.asarray(meta["mean"], dtype=float),
            np.asarray(meta["components"], dtype=float).reshape(len(meta["feature_names"]), -1),
            list(meta["feature_names"]),
            meta["info"],
        )


def fit_linear_cv(
    trajectories: np.ndarray | Sequence[np.ndarray],
    method: str = "pca",
    n_latent: int = 2,
    lag: int = 1,
    feature_names: Sequence[str] | None = None,
) -> LinearCV:
    """Fit a PCA or TICA CV on feature frames.

    Parameters
    ----------
    trajectories : numpy.ndarray or sequence of numpy.ndarray
        Features (n_frames, F), or a list of continuous trajectories (TICA pairs frames within each).
    method : str
        ``"pca"`` or ``"tica"``.
    n_latent : int
        Output dimensions.
    lag : int
        TICA lag time in frames (ignored by PCA).
    feature_names : sequence of str, optional
        One name per feature.

    Returns
    -------
    LinearCV
        The fitted CV; ``info`` holds the explained-variance ratios (PCA) or the implied
        timescales in frames (TICA).
    """
    if method not in LINEAR_METHODS:
        raise param_error("method", method, f"one of {LINEAR_METHODS}")
    trajs = [trajectories] if isinstance(trajectories, np.ndarray) and np.ndim(trajectories) == 2 else trajectories
    trajs = [np.asarray(t, dtype=float) for t in trajs]
    x, _ = lagged_pairs(trajs, 0)
    if not np.isfinite(x).all():
        raise ConfigError("the features contain NaN or infinite values.")
    n_features = x.shape[1]
    if not isinstance(n_latent, int) or not 1 <= n_latent <= n_features:
        raise param_error("n_latent", n_latent, f"an integer in [1, {n_features}]")
    names = [f"f{i}" for i in range(n_features)] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ConfigError(f"{len(names)} feature names for {n_features} features.")
    std = Standardizer.fit(x)
    t0 = time.process_time()
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=n_latent).fit(std(x).astype(np.float64))
        mean, components = pca.mean_, pca.components_.T
        info: dict[str, Any] = {"explained_variance_ratio": pca.explained_variance_ratio_.tolist()}
    else:
        try:
            from deeptime.decomposition import TICA
        except ImportError:
            raise ConfigError("TICA needs deeptime: pip install 'surrodyn[md]'.") from None
        if not isinstance(lag, int) or lag < 1:
            raise param_error("lag", lag, "a positive number of frames")
        lagged_pairs(trajs, lag)  # raises when no trajectory is longer than the lag
        data = [std(t).astype(np.float64) for t in trajs if len(t) > lag]
        model = TICA(lagtime=lag, dim=n_latent).fit(data if len(data) > 1 else data[0]).fetch_model()
        mean, components = model.mean_0, model.instantaneous_coefficients[:, :n_latent]
        info = {"lag": lag, "timescales_frames": model.timescales(lag)[:n_latent].tolist()}
    info["train_cpu_seconds"] = round(time.process_time() - t0, 4)
    info["n_frames"] = int(x.shape[0])
    return LinearCV(method, std, np.asarray(mean, dtype=float), np.asarray(components, dtype=float), names, info)


def load_cv(path: str | Path) -> LearnedCV | LinearCV:
    """Open a CV model directory of any kind (beta-VAE/AE, PCA, TICA).

    Parameters
    ----------
    path : str or Path
        Directory written by ``save`` of :class:`~surrodyn.cv.learn.LearnedCV` or :class:`LinearCV`.

    Returns
    -------
    LearnedCV or LinearCV
        The model.
    """
    p = Path(path)
    meta_path = p / "model.json"
    if not meta_path.is_file():
        raise ConfigError(f"{p} is not a CV model directory (no model.json).")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") in LINEAR_METHODS:
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{p}: CV model format {meta.get('format_version')}, this code reads {FORMAT_VERSION}.")
        return LinearCV.from_meta(meta)
    return LearnedCV.load(p)
