"""Basins of MD frames: standardise, embed with t-SNE, cluster with DBSCAN, merge fragments.

:class:`BasinFinder` is a scikit-learn estimator over a ``(frame, feature)`` descriptor matrix.
The DBSCAN radius is read off the knee of the sorted k-distance curve of the embedding (the
heuristic of Ester et al. 1996, located as in Satopää et al.'s "Kneedle"), and DBSCAN clusters
that are one basin in descriptor space (t-SNE likes to split a liquid into islands) are merged.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from ..errors import param_error

__all__ = ["BasinFinder", "knee_radius", "merge_fragments"]


def knee_radius(embedding: np.ndarray, k: int) -> float:
    r"""DBSCAN radius at the knee of the sorted k-distance curve.

    Parameters
    ----------
    embedding : ndarray, shape (n_samples, n_dims)
        Points to cluster.
    k : int
        Neighbour order (DBSCAN's ``min_samples``; the point itself counts as the first).

    Returns
    -------
    float
        The k-distance at the knee.

    Notes
    -----
    With the k-distances sorted ascending, :math:`d_{(1)} \le \dots \le d_{(n)}`, both axes
    scaled to [0, 1], the knee is the point farthest below the chord from the first to the last
    point: :math:`\arg\max_i (x_i - y_i)`. Points beyond the knee are the sparse ones DBSCAN
    calls noise.

    References
    ----------
    Satopää, Albrecht, Irwin, Raghavan, ICDCS Workshops (2011), doi:10.1109/ICDCSW.2011.20.
    """
    x = check_array(embedding)
    k = int(k)
    if not 2 <= k < len(x):
        raise param_error("min_samples", k, f"an integer in [2, n_frames - 1 = {len(x) - 1}]")
    dist = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)[0][:, -1]
    d = np.sort(dist)
    span = d[-1] - d[0]
    if span <= 0:
        return float(d[0]) if d[0] > 0 else 1.0
    xs = np.linspace(0.0, 1.0, len(d))
    ys = (d - d[0]) / span
    return float(d[int(np.argmax(xs - ys))])


def _spread(x: np.ndarray) -> tuple[np.ndarray, float]:
    c = x.mean(axis=0)
    return c, float(np.sqrt(((x - c) ** 2).sum(axis=1).mean()))


def merge_fragments(x: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    r"""Merge clusters that are one basin in descriptor space.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_features)
        Standardised descriptors.
    labels : ndarray of int, shape (n_samples,)
        Cluster labels, ``-1`` for noise (kept as noise).
    threshold : float
        Merge two clusters while the distance of their centroids is below ``threshold`` times
        their pooled spread.

    Returns
    -------
    labels : ndarray of int
        Merged labels (the smaller label of a merged pair survives; not renumbered).
    merges : list of (int, int)
        The merged pairs in the order they were merged.

    Notes
    -----
    The separation of clusters :math:`a, b` with centroids :math:`c` and RMS distances to their
    centroid :math:`s` is :math:`|c_a - c_b| / \sqrt{(s_a^2 + s_b^2)/2}`. Fragments of one basin
    (a liquid split into islands by t-SNE, a solid at neighbouring temperatures) overlap, so their
    separation is below 1; distinct structures (fcc-like against icosahedral) are several spreads
    apart. The closest pair is merged first and the statistics recomputed.
    """
    labels = np.asarray(labels).copy()
    merges: list[tuple[int, int]] = []
    while True:
        ids = [c for c in np.unique(labels) if c >= 0]
        if len(ids) < 2:
            return labels, merges
        stats = {c: _spread(x[labels == c]) for c in ids}
        best, pair = np.inf, None
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                (ca, sa), (cb, sb) = stats[a], stats[b]
                pooled = np.sqrt(0.5 * (sa**2 + sb**2))
                sep = np.linalg.norm(ca - cb) / pooled if pooled > 0 else np.inf
                if sep < best:
                    best, pair = sep, (a, b)
        if pair is None or best >= threshold:
            return labels, merges
        labels[labels == pair[1]] = pair[0]
        merges.append((int(pair[0]), int(pair[1])))


class BasinFinder(ClusterMixin, BaseEstimator):
    """Find basins among MD frames from their descriptors.

    Parameters
    ----------
    perplexity : float
        t-SNE perplexity (capped at ``(n_frames - 1) / 3``).
    min_samples : int
        DBSCAN's ``min_samples`` (and the k of the k-distance knee); HDBSCAN's ``min_cluster_size``.
    eps : float or "auto"
        DBSCAN radius in the embedding; ``"auto"`` takes the k-distance knee.
    eps_scale : float
        Factor on the automatic radius.
    clusterer : {"dbscan", "hdbscan"}
        Density clustering of the embedding.
    embedding : {"auto", "tsne", "pca"}
        2-D embedding; ``auto`` uses t-SNE up to ``max_tsne_frames`` frames and PCA beyond
        (with a warning).
    max_tsne_frames : int
        Largest set embedded with t-SNE under ``embedding="auto"``.
    merge_threshold : float or None
        See :func:`merge_fragments`; ``None`` keeps DBSCAN's clusters as they are.
    min_basin_fraction : float
        A cluster holding fewer frames than this fraction (or than ``min_samples``) after merging
        is not a basin: each of its frames joins the basin of its nearest frame in the embedding
        (transition frames, a rare excursion). 0 keeps every cluster.
    random_state : int
        Seed of t-SNE.

    Attributes
    ----------
    scaler_ : StandardScaler
    embedding_ : ndarray, shape (n_frames, 2)
    eps_ : float
        Radius used (nan for HDBSCAN).
    raw_labels_ : ndarray of int
        Clusters before merging.
    labels_ : ndarray of int
        Basins after merging, numbered 0, 1, ... in order of their median frame; -1 is noise.
    n_basins_ : int
    noise_fraction_ : float
    silhouette_ : float
        Silhouette of the basins in the embedding (nan with fewer than two basins).
    merges_ : list of (int, int)
        Raw cluster pairs that were merged.
    absorbed_ : dict of int to int
        Raw clusters too small to be a basin, with their frame counts.
    """

    def __init__(
        self,
        *,
        perplexity: float = 50.0,
        min_samples: int = 10,
        eps: float | str = "auto",
        eps_scale: float = 1.0,
        clusterer: str = "dbscan",
        embedding: str = "auto",
        max_tsne_frames: int = 5000,
        merge_threshold: float | None = 1.0,
        min_basin_fraction: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.perplexity = perplexity
        self.min_samples = min_samples
        self.eps = eps
        self.eps_scale = eps_scale
        self.clusterer = clusterer
        self.embedding = embedding
        self.max_tsne_frames = max_tsne_frames
        self.merge_threshold = merge_threshold
        self.min_basin_fraction = min_basin_fraction
        self.random_state = random_state

    def _validate(self, n: int) -> None:
        if self.clusterer not in ("dbscan", "hdbscan"):
            raise param_error("clusterer", self.clusterer, "'dbscan' or 'hdbscan'")
        if self.embedding not in ("auto", "tsne", "pca"):
            raise param_error("embedding", self.embedding, "'auto', 'tsne' or 'pca'")
        if not (isinstance(self.eps, str) and self.eps == "auto") and not (
            isinstance(self.eps, int | float) and self.eps > 0
        ):
            raise param_error("eps", self.eps, "'auto' or a positive radius in embedding units")
        if not 0 <= float(self.min_basin_fraction) < 0.5:
            raise param_error("min_basin_fraction", self.min_basin_fraction, "a fraction in [0, 0.5)")
        if n < 2 * int(self.min_samples) or n < 5:
            raise param_error("X", f"{n} frames", f"at least 2 * min_samples = {2 * int(self.min_samples)} frames")

    def _embed(self, xs: np.ndarray) -> np.ndarray:
        kind = self.embedding
        if kind == "auto":
            kind = "tsne" if len(xs) <= self.max_tsne_frames else "pca"
            if kind == "pca":
                warnings.warn(
                    f"{len(xs)} frames > max_tsne_frames={self.max_tsne_frames}: embedding with PCA instead of "
                    "t-SNE; raise max_tsne_frames or stride the trajectory for t-SNE.",
                    stacklevel=3,
                )
        if kind == "pca":
            return PCA(n_components=2, random_state=self.random_state).fit_transform(xs)
        perplexity = min(float(self.perplexity), (len(xs) - 1) / 3.0)
        tsne = TSNE(
            n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=self.random_state
        )
        return tsne.fit_transform(xs)

    def fit(self, X: Any, y: Any = None) -> BasinFinder:
        """Find the basins of the frames ``X``.

        Parameters
        ----------
        X : array-like, shape (n_frames, n_features)
            Frame descriptors, in time order (the basin numbering follows it).
        y : ignored

        Returns
        -------
        BasinFinder
            ``self``.
        """
        x = check_array(np.asarray(X), dtype=np.float64)
        self._validate(len(x))
        self.scaler_ = StandardScaler().fit(x)
        xs = self.scaler_.transform(x)
        self.embedding_ = self._embed(xs)
        if self.clusterer == "dbscan":
            eps = knee_radius(self.embedding_, self.min_samples) if self.eps == "auto" else float(self.eps)
            self.eps_ = float(eps) * float(self.eps_scale)
            raw = DBSCAN(eps=self.eps_, min_samples=int(self.min_samples)).fit_predict(self.embedding_)
        else:
            self.eps_ = float("nan")
            raw = HDBSCAN(min_cluster_size=int(self.min_samples), copy=True).fit_predict(self.embedding_)
        self.raw_labels_ = raw
        merged, self.merges_ = (
            (raw, []) if self.merge_threshold is None else merge_fragments(xs, raw, float(self.merge_threshold))
        )
        merged, self.absorbed_ = self._absorb_small(merged)
        # number basins by their median frame: basin 0 is the first the trajectory visits
        ids = [c for c in np.unique(merged) if c >= 0]
        order = sorted(ids, key=lambda c: np.median(np.flatnonzero(merged == c)))
        self.labels_ = np.full(len(x), -1)
        for new, old in enumerate(order):
            self.labels_[merged == old] = new
        self.n_basins_ = len(order)
        self.noise_fraction_ = float(np.mean(self.labels_ < 0))
        ok = self.labels_ >= 0
        self.silhouette_ = (
            float(silhouette_score(self.embedding_[ok], self.labels_[ok])) if self.n_basins_ >= 2 else float("nan")
        )
        return self

    def _absorb_small(self, labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
        floor = max(
            float(self.min_basin_fraction) * len(labels), int(self.min_samples) if self.min_basin_fraction else 0
        )
        ids, counts = np.unique(labels[labels >= 0], return_counts=True)
        small = {int(c): int(n) for c, n in zip(ids, counts, strict=True) if n < floor}
        keep = (labels >= 0) & ~np.isin(labels, list(small))
        if not small or not keep.any():
            return labels, {}
        out = labels.copy()
        moved = np.isin(labels, list(small))
        nearest = NearestNeighbors(n_neighbors=1).fit(self.embedding_[keep]).kneighbors(self.embedding_[moved])[1][:, 0]
        out[moved] = labels[keep][nearest]
        return out, small

    def standardised(self, X: Any) -> np.ndarray:
        """Descriptors standardised with the fitted scaler."""
        check_is_fitted(self, "scaler_")
        return self.scaler_.transform(check_array(np.asarray(X), dtype=np.float64))
