"""Basins of MD frames: standardise, embed with t-SNE, cluster with DBSCAN, split and merge.

:class:`BasinFinder` is a scikit-learn estimator over a ``(frame, feature)`` descriptor matrix.
The DBSCAN radius is read off the knee of the sorted k-distance curve of the embedding (the
heuristic of Ester et al. 1996, located as in Satopää et al.'s "Kneedle"). One radius cannot
serve every map: a dense neck of frames joins a melting cluster's solid and liquid, and t-SNE
tears a long solid band into pieces. So each DBSCAN cluster is split at smaller radii into
candidate fragments, and fragments are merged back unless the density of their frames in
descriptor space has a valley between them (:func:`valley_ratio`): the embedding proposes the
boundaries, the descriptors decide which are real.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from ..errors import param_error

__all__ = [
    "SPLIT_FACTORS",
    "VALLEY_THRESHOLD",
    "BasinFinder",
    "knee_radius",
    "merge_by_valley",
    "merge_fragments",
    "valley_profile",
    "valley_ratio",
]

#: default radii (fractions of the DBSCAN radius) at which :class:`BasinFinder` splits clusters
SPLIT_FACTORS = (0.9, 0.8, 0.7, 0.6)
#: default valley ratio at or above which :func:`merge_by_valley` merges (kept boundaries of the
#: 60 Cu ramps of docs/basins.md score 0.00-0.18, merged fragments 0.75-1.00)
VALLEY_THRESHOLD = 0.6


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


def _separation(xa: np.ndarray, xb: np.ndarray) -> float:
    """Centroid distance of two sets over their pooled RMS spread (see :func:`merge_fragments`)."""
    (ca, sa), (cb, sb) = _spread(xa), _spread(xb)
    pooled = np.sqrt(0.5 * (sa**2 + sb**2))
    return float(np.linalg.norm(ca - cb) / pooled) if pooled > 0 else float("inf")


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
        best, pair = np.inf, None
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                sep = _separation(x[labels == a], x[labels == b])
                if sep < best:
                    best, pair = sep, (a, b)
        if pair is None or best >= threshold:
            return labels, merges
        labels[labels == pair[1]] = pair[0]
        merges.append((int(pair[0]), int(pair[1])))


def valley_ratio(xa: np.ndarray, xb: np.ndarray) -> float:
    r"""Depth of the density valley between two sets of points, along the direction that separates them.

    Parameters
    ----------
    xa, xb : ndarray, shape (n_a, n_features), (n_b, n_features)
        The two sets (standardised descriptors of two clusters), at least 2 points each.

    Returns
    -------
    float
        :math:`f(g^*) / \min(\max_{g \le g^*} f, \max_{g \ge g^*} f)` in [0, 1]: the density at
        the valley over the lower of the two peaks. 1 means no valley (the density falls
        monotonically from one cluster into the other); near 0, an empty gap.

    Notes
    -----
    All points are projected on Fisher's discriminant direction :math:`S^{-1}(c_b - c_a)`, with
    :math:`c` the centroids and :math:`S` the pooled within-set covariance shrunk by
    Ledoit-Wolf: the direction along which the two sets are farthest apart for their spread (the
    line joining the centroids when the spread is isotropic). :math:`f` is a Gaussian kernel
    density of the projections (Scott's bandwidth) and :math:`g^*` its minimum between the two
    projected centroids. Along the centroid line itself, many features that drift together with
    temperature (a SOAP power spectrum) can fill in the valley between a hot solid and its
    liquid. A t-SNE map can tear one continuous basin (a solid whose order parameters drift with
    temperature) into two clusters whose centroids lie several spreads apart; across the tear its
    frames are still one unimodal density, and the ratio is 1. Two phases usually leave a valley, because a trajectory
    spends less time in passage than in either phase; a change without one (a surface that
    disorders continuously into the liquid) is one basin by this measure. Defined as 1 when the
    centroids coincide or the projections have no spread.
    """
    return valley_profile(xa, xb)[2]


def valley_profile(xa: np.ndarray, xb: np.ndarray, n_grid: int = 512) -> tuple[np.ndarray, np.ndarray, float]:
    """Kernel density of two sets along their discriminant direction, and its valley ratio.

    Parameters
    ----------
    xa, xb : ndarray, shape (n_a, n_features), (n_b, n_features)
        The two sets, at least 2 points each.
    n_grid : int
        Points of the density grid, spanning the projections.

    Returns
    -------
    position : ndarray, shape (n_grid,)
        Grid along the direction (see :func:`valley_ratio`), 0 at the centroid of ``xa`` and 1 at
        that of ``xb`` (empty when the centroids coincide or the projections have no spread).
    density : ndarray, shape (n_grid,)
        Kernel density of the projections, per unit of ``position``.
    ratio : float
        :func:`valley_ratio`.
    """
    xa = np.asarray(xa, dtype=float)
    xb = np.asarray(xb, dtype=float)
    if len(xa) < 2 or len(xb) < 2:
        raise param_error("xa, xb", f"{len(xa)} and {len(xb)} points", "at least 2 points in each set")
    empty = np.zeros(0)
    ca, cb = xa.mean(axis=0), xb.mean(axis=0)
    delta = cb - ca
    if not np.linalg.norm(delta) > 0:
        return empty, empty, 1.0
    w = _discriminant(np.vstack([xa - ca, xb - cb]), delta)
    p = (np.concatenate([xa @ w, xb @ w]) - ca @ w) / (delta @ w)  # 0 at a's centroid, 1 at b's
    if not np.ptp(p) > 0:
        return empty, empty, 1.0
    grid = np.linspace(p.min(), p.max(), int(n_grid))
    f = gaussian_kde(p)(grid)
    between = (grid >= 0.0) & (grid <= 1.0)
    if not between.any():  # centroids closer than the grid spacing
        return grid, f, 1.0
    i = np.flatnonzero(between)[np.argmin(f[between])]
    peak = min(f[: i + 1].max(), f[i:].max())
    return grid, f, float(f[i] / peak)


def _discriminant(residuals: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Fisher's direction S^-1 delta, S the within-cluster covariance shrunk by Ledoit-Wolf."""
    if residuals.shape[1] == 1 or not np.any(residuals):
        return delta
    cov = LedoitWolf(assume_centered=True).fit(residuals).covariance_
    return np.linalg.solve(cov, delta)


def merge_by_valley(
    x: np.ndarray, labels: np.ndarray, threshold: float, groups: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Merge clusters that have no density valley between them in descriptor space.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_features)
        Standardised descriptors.
    labels : ndarray of int, shape (n_samples,)
        Cluster labels, ``-1`` for noise (kept as noise).
    threshold : float
        Merge a pair while its :func:`valley_ratio` is at least ``threshold`` (in (0, 1]).
    groups : ndarray of int, shape (n_samples,), optional
        A coarser clustering the clusters were cut from (:class:`BasinFinder` passes DBSCAN's
        clusters, which it splits); sets the merge order.

    Returns
    -------
    labels : ndarray of int
        Merged labels (the smaller label of a merged pair survives; not renumbered).
    merges : list of (int, int, float)
        The merged pairs, in merge order, with their valley ratio.

    Notes
    -----
    Agglomerative: among the pairs at or above the threshold, pairs from one group merge first
    (splits the density does not support are undone before clusters the embedding kept apart are
    joined), then the pair with the shallowest valley (largest ratio), then (ties at ratio 1) the
    pair whose centroids are closest in pooled spreads (:func:`merge_fragments`); the merged
    cluster's ratios to the others are recomputed. Fragments of a band merge neighbour by
    neighbour; the two ends of a band, with the middle fragment between them missing, do have a
    valley and merge only through the middle one. A fragment of frames in passage between two
    basins, with no valley to either, stays with the basin DBSCAN connected it to.
    """
    if not 0 < float(threshold) <= 1:
        raise param_error("threshold", threshold, "a valley ratio in (0, 1]")
    x = np.asarray(x, dtype=float)
    labels = np.asarray(labels).copy()
    merges: list[tuple[int, int, float]] = []
    if groups is not None and np.shape(groups) != labels.shape:
        raise param_error("groups", f"shape {np.shape(groups)}", f"one group per sample, shape {labels.shape}")
    group = np.zeros(len(labels), dtype=int) if groups is None else np.asarray(groups)
    score: dict[tuple[int, int], tuple[float, bool, float]] = {}  # valley ratio, same group, -separation
    while True:
        ids = [int(c) for c in np.unique(labels) if c >= 0]
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if (a, b) not in score:
                    ma, mb = labels == a, labels == b
                    same = set(np.unique(group[ma]).tolist()) == set(np.unique(group[mb]).tolist())
                    score[(a, b)] = (valley_ratio(x[ma], x[mb]), same, -_separation(x[ma], x[mb]))
        ready = {k: v for k, v in sorted(score.items()) if v[0] >= threshold}
        if not ready:
            return labels, merges
        # pairs from one group first, then the shallowest valley, then the closest centroids
        (a, b), (best, *_) = max(ready.items(), key=lambda kv: (kv[1][1], kv[1][0], kv[1][2]))
        labels[labels == b] = a
        merges.append((a, b, float(best)))
        score = {k: v for k, v in score.items() if a not in k and b not in k}


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
    split_factors : sequence of float or None
        Radii, as fractions of the DBSCAN radius and in decreasing order, at which each cluster is
        re-clustered to find a neck: the first radius that leaves two or more pieces of at least
        the basin floor (see ``min_basin_fraction``) splits it, every frame of the cluster joining
        its nearest piece, and each piece is tried again at the smaller radii. ``None`` (or empty)
        keeps DBSCAN's clusters whole. Only for ``clusterer="dbscan"``.
    merge : {"valley", "centroid"} or None
        Merge rule for clusters (and split pieces) that are one basin: ``"valley"``
        (:func:`merge_by_valley`, the default), ``"centroid"`` (:func:`merge_fragments`, centroids
        closer than ``merge_threshold`` pooled spreads; the rule before splitting was added), or
        ``None``.
    merge_threshold : float or None
        Threshold of the merge rule; ``None`` takes its default: valley ratio 0.6, or 1 spread.
    min_basin_fraction : float
        A DBSCAN cluster holding fewer frames than this fraction (or than ``min_samples``) is not a
        basin: each of its frames joins the cluster of its nearest frame in the embedding
        (transition frames, a rare excursion). The same floor is the smallest split piece. 0
        keeps every cluster (split pieces still hold at least ``min_samples`` frames).
    random_state : int
        Seed of t-SNE.

    Attributes
    ----------
    scaler_ : StandardScaler
    embedding_ : ndarray, shape (n_frames, 2)
    eps_ : float
        Radius used (nan for HDBSCAN).
    raw_labels_ : ndarray of int
        DBSCAN's (or HDBSCAN's) clusters.
    fragment_labels_ : ndarray of int
        Clusters after absorbing the small ones and splitting, before merging.
    labels_ : ndarray of int
        Basins after merging, numbered 0, 1, ... in order of their median frame; -1 is noise.
    n_basins_ : int
    noise_fraction_ : float
    silhouette_ : float
        Silhouette of the basins in the embedding (nan with fewer than two basins).
    merges_ : list of tuple
        Fragment pairs that were merged, in order, each with its valley ratio (nan under the
        centroid rule).
    absorbed_ : dict of int to int
        Raw clusters too small to be a basin, with their frame counts.
    valley_ratios_ : dict of (int, int) to float
        :func:`valley_ratio` between every pair of final basins: how clearly they are separated
        (near 0: an empty gap; near the merge threshold: barely).
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
        split_factors: tuple[float, ...] | None = SPLIT_FACTORS,
        merge: str | None = "valley",
        merge_threshold: float | None = None,
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
        self.split_factors = split_factors
        self.merge = merge
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
        if self.merge not in ("valley", "centroid", None):
            raise param_error("merge", self.merge, "'valley', 'centroid' or None")
        if self.merge_threshold is not None and not (
            isinstance(self.merge_threshold, int | float)
            and self.merge_threshold > 0
            and (self.merge != "valley" or self.merge_threshold <= 1)
        ):
            raise param_error(
                "merge_threshold", self.merge_threshold, "None, a valley ratio in (0, 1] or a positive separation"
            )
        factors = np.asarray(self.split_factors if self.split_factors is not None else (), dtype=float)
        if factors.ndim != 1 or np.any((factors <= 0) | (factors >= 1)) or np.any(np.diff(factors) >= 0):
            raise param_error("split_factors", self.split_factors, "decreasing fractions in (0, 1), or None")
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
        floor = self._floor(len(x))
        absorbed, self.absorbed_ = self._absorb_small(raw, floor)
        if self.clusterer == "dbscan" and self.split_factors:
            self.fragment_labels_ = self._split(absorbed, max(floor, int(self.min_samples)))
        else:
            self.fragment_labels_ = absorbed
        merged, self.merges_ = self._merge(xs, self.fragment_labels_)
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
        self.valley_ratios_ = {
            (a, b): valley_ratio(xs[self.labels_ == a], xs[self.labels_ == b])
            for a in range(self.n_basins_)
            for b in range(a + 1, self.n_basins_)
        }
        return self

    def _floor(self, n: int) -> float:
        return max(float(self.min_basin_fraction) * n, int(self.min_samples) if self.min_basin_fraction else 0)

    def _merge(self, xs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
        if self.merge is None:
            return labels, []
        if self.merge == "valley":
            thr = VALLEY_THRESHOLD if self.merge_threshold is None else float(self.merge_threshold)
            return merge_by_valley(xs, labels, thr, groups=self.raw_labels_)
        thr = 1.0 if self.merge_threshold is None else float(self.merge_threshold)
        merged, pairs = merge_fragments(xs, labels, thr)
        return merged, [(a, b, float("nan")) for a, b in pairs]

    def _split(self, labels: np.ndarray, min_piece: float) -> np.ndarray:
        """Split every cluster at the necks the smaller radii reveal (see ``split_factors``)."""
        out = np.full(len(labels), -1)
        factors = tuple(float(f) for f in self.split_factors or ())
        stack = [(np.flatnonzero(labels == c), factors) for c in np.unique(labels[labels >= 0])]
        n_pieces = 0
        while stack:
            idx, left = stack.pop(0)
            pieces = None
            for j, f in enumerate(left):
                if len(idx) < 2 * min_piece:
                    break
                sub = DBSCAN(eps=self.eps_ * f, min_samples=int(self.min_samples)).fit_predict(self.embedding_[idx])
                ids, counts = np.unique(sub[sub >= 0], return_counts=True)
                big = ids[counts >= min_piece]
                if len(big) >= 2:
                    inside = np.isin(sub, big)
                    if not inside.all():  # the rest of the cluster joins its nearest piece
                        nn = NearestNeighbors(n_neighbors=1).fit(self.embedding_[idx[inside]])
                        sub[~inside] = sub[inside][nn.kneighbors(self.embedding_[idx[~inside]])[1][:, 0]]
                    pieces = [(idx[sub == s], left[j + 1 :]) for s in big]
                    break
            if pieces is None:
                out[idx] = n_pieces
                n_pieces += 1
            else:
                stack[:0] = pieces
        return out

    def _absorb_small(self, labels: np.ndarray, floor: float) -> tuple[np.ndarray, dict[int, int]]:
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
