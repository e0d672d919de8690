"""Basins, transitions and morphologies of ramps (surrodyn.analysis.basins/transitions/morphology/ramp_analysis).

Synthetic descriptor data with a known answer for the estimator, closed forms for the transition
estimators (exact lines, Stein's identity for the kernel slope, the small-displacement Lindemann
index), ideal ASE clusters for the CNA labels, and one tiny Cu13 ramp on ASE's EMT for the
end-to-end path, the report files and the command line.
"""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest
import xarray as xr
from ase.calculators.emt import EMT
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import read, write
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation
from sklearn.base import clone
from sklearn.cluster import DBSCAN
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from surrodyn.analysis import (
    MORPHOLOGIES,
    BasinFinder,
    CNAFractions,
    Steinhardt,
    analyse_ramp,
    classify_cna,
    energy_phase_labels,
    heat_capacity,
    knee_radius,
    lindemann_index,
    merge_by_valley,
    merge_fragments,
    nearest_neighbour_cutoff,
    quench,
    read_frames,
    representatives,
    smooth_labels,
    summarize,
    switch_temperatures,
    valley_profile,
    valley_ratio,
)
from surrodyn.cli.main import main
from surrodyn.errors import ConfigError
from surrodyn.md import ClusterSpec, RampConfig, load_ramp, run_ramp

EPS = np.finfo(float).eps

# --------------------------------------------------------------------------------------------
# synthetic "ramp-like" descriptors: three basins visited in time order
# --------------------------------------------------------------------------------------------

SIZES = (150, 300, 150)
TRUTH = np.repeat([0, 1, 2], SIZES)


def ramp_like_descriptors(rng: np.random.Generator) -> np.ndarray:
    """8 features; unit Gaussian basins 10-14 sigma apart, each drifting with time like a heated solid."""
    centres = np.zeros((3, 8))
    centres[1, :4] = 5.0
    centres[2, 4:] = 5.0
    drift = 0.5 * np.array([1, -1, 1, -1, 1, -1, 1, -1], dtype=float)
    return np.vstack(
        [
            c + rng.normal(size=(n, 8)) + np.linspace(-1, 1, n)[:, None] * drift
            for c, n in zip(centres, SIZES, strict=True)
        ]
    )


@pytest.fixture(scope="module")
def ramp_like():
    return ramp_like_descriptors(np.random.default_rng(2))


@pytest.fixture(scope="module")
def tsne_fit(ramp_like):
    return BasinFinder(random_state=0).fit(ramp_like)


# --------------------------------------------------------------------------------------------
# knee_radius
# --------------------------------------------------------------------------------------------


def test_knee_radius_separates_blobs_from_background():
    rng = np.random.default_rng(0)
    k, sigma = 10, 0.1
    centres = np.array([[-3.0, 0.0], [3.0, 0.0]])
    blobs = np.vstack([c + rng.normal(scale=sigma, size=(200, 2)) for c in centres])
    bg = rng.uniform(-10, 10, size=(400, 2))
    bg = bg[np.linalg.norm(bg[:, None, :] - centres[None], axis=2).min(axis=1) > 1.5][:40]
    assert len(bg) == 40
    x = np.vstack([blobs, bg])
    truth = np.r_[np.zeros(200), np.ones(200)]
    r = knee_radius(x, k)
    kdist = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)[0][:, -1]
    # above the k-distance of 90% of the blob points (they are core points), below that of every
    # background point (none is core)
    assert np.percentile(kdist[:400], 90) < r < kdist[400:].min()
    assert sigma < r < 0.5  # the blob scale, far below the background spacing (~3)
    lab = DBSCAN(eps=r, min_samples=k).fit_predict(x)
    assert np.all(lab[400:] == -1)
    assert np.all(lab[:400] >= 0)
    assert adjusted_rand_score(truth, lab[:400]) == 1.0


def test_knee_radius_exact_on_twins():
    # pairs of points 100 apart; with k = 2 each point's k-distance is its twin's distance:
    # sorted d = [1]*8 + [10]*2, chord x - y is largest at the last 1
    sep = [1.0, 1.0, 1.0, 1.0, 10.0]
    x = np.array([[100.0 * i + s * j, 0.0] for i, s in enumerate(sep) for j in (0, 1)])
    assert knee_radius(x, 2) == 1.0
    # flat curve: the common k-distance; all points coincident: the fallback 1
    assert knee_radius(x[:8] * 0.5, 2) == 0.5
    assert knee_radius(np.zeros((6, 2)), 2) == 1.0


def test_knee_radius_scales_with_the_embedding():
    x = np.random.default_rng(1).normal(size=(300, 2))
    r = knee_radius(x, 10)
    assert knee_radius(3.5 * x + np.array([7.0, -2.0]), 10) == pytest.approx(3.5 * r, rel=1e-12)


@pytest.mark.parametrize("k", [1, 30])
def test_knee_radius_rejects_bad_k(k):
    with pytest.raises(ValueError, match=r"min_samples="):
        knee_radius(np.zeros((30, 2)), k)


# --------------------------------------------------------------------------------------------
# merge_fragments
# --------------------------------------------------------------------------------------------


def test_merge_fragments_halves_of_one_gaussian():
    # N(0, I_8) cut by the plane x0 = 0: centroids ±sqrt(2/pi) on x0, RMS spread^2 = 8 - 2/pi,
    # separation 2 sqrt(2/pi) / sqrt(8 - 2/pi) = 0.588
    d = 8
    x = np.random.default_rng(3).normal(size=(4000, d))
    lab = (x[:, 0] >= 0).astype(int)
    sep = 2 * np.sqrt(2 / np.pi) / np.sqrt(d - 2 / np.pi)
    assert sep == pytest.approx(0.588, abs=1e-3)
    merged, merges = merge_fragments(x, lab, 1.1 * sep)
    assert merges == [(0, 1)]
    np.testing.assert_array_equal(merged, np.zeros(len(x), dtype=int))
    kept, merges = merge_fragments(x, lab, 0.9 * sep)
    assert merges == []
    np.testing.assert_array_equal(kept, lab)


def test_merge_fragments_keeps_distinct_clusters_and_noise():
    # two unit Gaussians in 2-D, 6 sigma apart: separation 6 / sqrt(2) = 4.24 spreads
    rng = np.random.default_rng(4)
    a = rng.normal(size=(2000, 2))
    b = rng.normal(size=(2000, 2)) + np.array([6.0, 0.0])
    noise = np.full((50, 2), 100.0)  # would wreck the statistics if it were counted
    x = np.vstack([a, b, noise])
    lab = np.r_[np.full(2000, 3), np.full(2000, 7), np.full(50, -1)]
    before = lab.copy()
    out, merges = merge_fragments(x, lab, 1.0)
    assert merges == []
    np.testing.assert_array_equal(out, lab)
    out, merges = merge_fragments(x, lab, 0.92 * 6 / np.sqrt(2))
    assert merges == []
    out, merges = merge_fragments(x, lab, 1.08 * 6 / np.sqrt(2))
    assert merges == [(3, 7)]  # the smaller label survives, not renumbered
    np.testing.assert_array_equal(out, np.r_[np.full(4000, 3), np.full(50, -1)])
    np.testing.assert_array_equal(lab, before)  # input untouched


def test_merge_fragments_merges_closest_pair_first():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 8))
    lab = np.where(x[:, 0] >= 0, 5, 9)  # halves of one basin (separation 0.59)
    far = rng.normal(size=(500, 8)) + 10.0  # a distinct basin
    out, merges = merge_fragments(np.vstack([x, far]), np.r_[lab, np.full(500, 2)], 1.0)
    assert merges == [(5, 9)]
    np.testing.assert_array_equal(out, np.r_[np.full(3000, 5), np.full(500, 2)])


# --------------------------------------------------------------------------------------------
# valley_ratio, merge_by_valley
# --------------------------------------------------------------------------------------------


def _smoothed_mixture_ratio(d: float, h: float) -> float:
    """Valley over peak of 0.5 N(-d/2, 1 + h^2) + 0.5 N(d/2, 1 + h^2): the expected KDE of two unit Gaussians."""
    g = np.linspace(-d, d, 200_001)
    s2 = 1.0 + h * h
    f = np.exp(-((g + d / 2) ** 2) / (2 * s2)) + np.exp(-((g - d / 2) ** 2) / (2 * s2))
    return float(f[len(g) // 2] / f.max())


@pytest.mark.parametrize("d", [4.0, 6.0])
def test_valley_ratio_of_two_gaussians_matches_the_smoothed_mixture(d):
    # two unit Gaussians in 8-D, d apart on axis 0: the discriminant direction is axis 0 (up to
    # sampling noise) and the projections are the 1-D mixture; Scott's kernel (h = n^(-1/5) std)
    # widens each component to sqrt(1 + h^2)
    rng = np.random.default_rng(20)
    n = 20_000
    xa = rng.normal(size=(n, 8))
    xb = rng.normal(size=(n, 8))
    xb[:, 0] += d
    p = np.r_[xa[:, 0], xb[:, 0]] - xa.mean(axis=0)[0]  # ~ the projections (centroids on axis 0)
    h = (2 * n) ** -0.2 * p.std(ddof=1)
    expected = _smoothed_mixture_ratio(d, h)
    assert 0.01 < expected < 0.35  # a real valley, shallower for d = 4
    assert valley_ratio(xa, xb) == pytest.approx(expected, abs=0.03)


def test_valley_ratio_is_one_without_a_valley_and_invariant():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(4000, 8))
    half = x[:, 0] >= 0  # halves of one Gaussian: the density falls from one into the other
    assert valley_ratio(x[half], x[~half]) == 1.0
    assert valley_ratio(x, x) == 1.0  # same centroid
    a, b = x[:2000], x[2000:] + np.r_[5.0, np.zeros(7)]
    r = valley_ratio(a, b)
    assert r < 0.2
    assert valley_ratio(3.0 * a - 7.0, 3.0 * b - 7.0) == pytest.approx(r, rel=1e-9)  # units and origin
    assert valley_ratio(b, a) == pytest.approx(r, rel=1e-9)  # symmetric
    with pytest.raises(ValueError, match=r"xa, xb='1 and 2000 points'"):
        valley_ratio(a[:1], b)


def test_valley_is_read_along_the_discriminant_not_the_centroid_line():
    # two clusters stretched along x (a drift, sd 5) and 5 apart in y (sd 1), offset (5, 5): along
    # the centroid line the drift fills the gap (separation 7.1 over a spread of 3.6: unimodal),
    # along S^-1 delta (mostly y) the 5-sd gap shows
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(25)
    xa = rng.normal(size=(3000, 2)) * np.array([5.0, 1.0])
    xb = rng.normal(size=(3000, 2)) * np.array([5.0, 1.0]) + np.array([5.0, 5.0])
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    p = np.r_[xa @ u, xb @ u]
    f = gaussian_kde(p)(np.linspace(xa.mean(0) @ u, xb.mean(0) @ u, 200))
    assert f.min() > 0.9 * min(f[0], f[-1])  # no valley between the centroids on that line
    assert valley_ratio(xa, xb) < 0.2


def test_valley_profile_coordinates_and_ratio():
    # two Gaussians 6 apart on axis 1 of 3: the density peaks at the centroids (0 and 1 on the
    # line), has its valley half way, integrates to ~1, and gives valley_ratio's number
    rng = np.random.default_rng(24)
    xa = rng.normal(size=(3000, 3))
    xb = rng.normal(size=(3000, 3)) + np.array([0.0, 6.0, 0.0])
    pos, dens, ratio = valley_profile(xa, xb)
    assert ratio == valley_ratio(xa, xb)
    p = np.r_[xa[:, 1], xb[:, 1]]
    assert ratio == pytest.approx(_smoothed_mixture_ratio(6.0, 6000**-0.2 * p.std(ddof=1)), abs=0.02)  # ~0.065
    assert pos.shape == dens.shape == (512,)
    left, right = pos < 0.5, pos >= 0.5
    assert pos[left][np.argmax(dens[left])] == pytest.approx(0.0, abs=0.03)
    assert pos[right][np.argmax(dens[right])] == pytest.approx(1.0, abs=0.03)
    assert pos[np.argmin(np.where((pos > 0) & (pos < 1), dens, np.inf))] == pytest.approx(0.5, abs=0.05)
    assert np.trapezoid(dens, pos) == pytest.approx(1.0, abs=0.01)
    empty, none, one = valley_profile(xa, xa)
    assert len(empty) == len(none) == 0 and one == 1.0


def _band(rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    """A uniform strip 12 long and 1 wide in 3-D: one basin with a long extent."""
    return np.c_[np.sort(rng.uniform(0, 12, n)), rng.uniform(0, 1, n), rng.uniform(0, 1, n)]


def test_merge_by_valley_rejoins_a_band_and_keeps_a_distinct_cluster():
    rng = np.random.default_rng(22)
    band = _band(rng)
    blob = rng.normal(scale=0.5, size=(500, 3)) + np.array([6.0, 5.0, 0.5])
    x = np.vstack([band, blob])
    pieces = np.minimum((band[:, 0] // 3).astype(int), 3)  # four consecutive pieces of the band
    lab = np.r_[pieces, np.full(500, 7)]
    lab[5] = -1  # noise stays noise
    # the two ends of the band, without the middle, have an empty gap between them
    assert valley_ratio(band[pieces == 0], band[pieces == 3]) < 0.05
    out, merges = merge_by_valley(x, lab, 0.6)
    assert len(merges) == 3 and all(r >= 0.6 for *_, r in merges)
    assert out[5] == -1
    assert len(set(out[:3000][out[:3000] >= 0])) == 1  # the band is one cluster again
    assert np.all(out[3000:] == 7)  # the blob is not merged
    with pytest.raises(ValueError, match=r"threshold=0"):
        merge_by_valley(x, lab, 0)
    with pytest.raises(ValueError, match=r"groups="):
        merge_by_valley(x, lab, 0.6, groups=np.zeros(3))


@pytest.mark.parametrize(("groups", "first"), [((0, 1, 1), (1, 2)), ((0, 0, 1), (0, 1))])
def test_merge_by_valley_breaks_ties_within_a_group_first(groups, first):
    # one Gaussian cut into A, B, C at x0 = -0.5, 0.5: no valley A|B or B|C (ratio 1, a tie), a
    # gap A|C. The pair from one group (DBSCAN cluster) merges first, whichever it is.
    x = np.random.default_rng(23).normal(size=(6000, 3))
    lab = np.digitize(x[:, 0], [-0.5, 0.5])
    assert valley_ratio(x[lab == 0], x[lab == 1]) == 1.0
    assert valley_ratio(x[lab == 1], x[lab == 2]) == 1.0
    assert valley_ratio(x[lab == 0], x[lab == 2]) < 0.6
    out, merges = merge_by_valley(x, lab, 0.6, groups=np.asarray(groups)[lab])
    assert merges[0][:2] == first
    assert len(merges) == 2 and np.all(out == 0)


# --------------------------------------------------------------------------------------------
# BasinFinder
# --------------------------------------------------------------------------------------------


def _assert_merges_only_undo_splits(bf: BasinFinder) -> None:
    for a, b, ratio in bf.merges_:
        assert ratio >= 0.6
        assert set(bf.raw_labels_[bf.fragment_labels_ == a]) == set(bf.raw_labels_[bf.fragment_labels_ == b])


def test_basin_finder_recovers_ramp_basins_in_time_order(tsne_fit):
    bf = tsne_fit
    assert bf.n_basins_ == 3
    assert bf.noise_fraction_ <= 0.05
    ok = bf.labels_ >= 0
    assert bf.noise_fraction_ == pytest.approx(1 - ok.mean())
    np.testing.assert_array_equal(bf.labels_[ok], TRUTH[ok])  # numbered 0, 1, 2 in time order
    assert adjusted_rand_score(TRUTH[ok], bf.labels_[ok]) == 1.0
    assert bf.embedding_.shape == (600, 2)
    assert np.isfinite(bf.eps_) and bf.eps_ > 0
    # the drifting middle basin may be split at smaller radii; any split is undone, and no two
    # DBSCAN clusters are joined
    _assert_merges_only_undo_splits(bf)
    assert set(bf.valley_ratios_) == {(0, 1), (0, 2), (1, 2)}
    assert max(bf.valley_ratios_.values()) < 0.2  # basins 10-14 sigma apart: deep valleys (merge at 0.6)
    assert 0.5 < bf.silhouette_ <= 1.0
    np.testing.assert_allclose(bf.standardised(bf.scaler_.mean_[None]), 0.0, atol=1e-12)


def test_basin_finder_is_reproducible(ramp_like, tsne_fit):
    again = BasinFinder(random_state=0).fit(ramp_like)
    np.testing.assert_array_equal(again.embedding_, tsne_fit.embedding_)
    np.testing.assert_array_equal(again.labels_, tsne_fit.labels_)
    assert again.eps_ == tsne_fit.eps_


def test_basin_finder_pca_and_sklearn_api(ramp_like):
    bf = BasinFinder(embedding="pca", random_state=0)
    labels = bf.fit_predict(ramp_like)
    np.testing.assert_array_equal(labels, bf.labels_)
    ok = labels >= 0
    assert bf.n_basins_ == 3 and bf.noise_fraction_ <= 0.1
    np.testing.assert_array_equal(labels[ok], TRUTH[ok])
    assert clone(bf).get_params() == bf.get_params()
    fixed = BasinFinder(embedding="pca", eps=0.25, eps_scale=2.0).fit(ramp_like)
    assert fixed.eps_ == 0.5
    with pytest.raises(NotFittedError):
        BasinFinder().standardised(ramp_like)


def test_auto_embedding_falls_back_to_pca_with_a_warning(ramp_like):
    with pytest.warns(UserWarning, match="max_tsne_frames=100") as record:
        bf = BasinFinder(max_tsne_frames=100).fit(ramp_like)
    assert record[0].filename == __file__  # stacklevel points at the caller
    pca = BasinFinder(embedding="pca").fit(ramp_like)
    np.testing.assert_array_equal(bf.embedding_, pca.embedding_)
    np.testing.assert_array_equal(bf.labels_, pca.labels_)


@pytest.mark.filterwarnings("ignore:The default value of `copy`:FutureWarning")  # scikit-learn's own
def test_hdbscan_clusterer(ramp_like):
    bf = BasinFinder(clusterer="hdbscan", embedding="pca").fit(ramp_like)
    assert np.isnan(bf.eps_)
    ok = bf.labels_ >= 0
    assert bf.n_basins_ == 3 and bf.noise_fraction_ <= 0.05
    assert adjusted_rand_score(TRUTH[ok], bf.labels_[ok]) >= 0.99


def test_basins_are_numbered_by_median_frame():
    # basin A occupies frames 0-99 and 400-599 (median 449.5), B frames 100-399 (median 249.5):
    # B is visited first by its median although A opens the trajectory
    rng = np.random.default_rng(6)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(300, 8)) + 6.0
    x = np.vstack([a[:100], b, a[100:]])
    truth = np.r_[np.ones(100, int), np.zeros(300, int), np.ones(200, int)]
    bf = BasinFinder(embedding="pca").fit(x)
    ok = bf.labels_ >= 0
    assert bf.n_basins_ == 2
    assert bf.raw_labels_[0] == 0  # DBSCAN numbers A first
    np.testing.assert_array_equal(bf.labels_[ok], truth[ok])


def test_small_cluster_is_absorbed_by_its_nearest_basin():
    # A (300 frames) and B (300, 4 sigma off on features 0-3) are basins; S (20 tight frames, 3
    # sigma off A on features 4-7, farther from B) is not: 20 < 0.05 * 620. S is visited in the
    # middle of B's time, but joins A, its neighbour in the embedding.
    rng = np.random.default_rng(7)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(300, 8)) + 4.0 * (np.arange(8) < 4)
    s = 0.3 * rng.normal(size=(20, 8)) + 3.0 * (np.arange(8) >= 4)
    x = np.vstack([a, b[:100], s, b[100:]])
    is_s = np.zeros(620, bool)
    is_s[400:420] = True
    truth = np.r_[np.zeros(300, int), np.ones(100, int), np.zeros(20, int), np.ones(200, int)]

    kept = BasinFinder(embedding="pca", min_basin_fraction=0.0).fit(x)
    assert kept.n_basins_ == 3 and kept.absorbed_ == {}
    _assert_merges_only_undo_splits(kept)
    raw_s = kept.raw_labels_[400]
    assert raw_s >= 0 and np.array_equal(kept.raw_labels_ == raw_s, is_s)  # S is a DBSCAN cluster
    # by median frame: A (149.5), S (409.5), B (469.5)
    ok = kept.labels_ >= 0
    np.testing.assert_array_equal(
        kept.labels_[ok], np.r_[np.zeros(300), np.full(100, 2), np.ones(20), np.full(200, 2)][ok]
    )

    bf = BasinFinder(embedding="pca").fit(x)
    assert bf.n_basins_ == 2
    np.testing.assert_array_equal(bf.raw_labels_, kept.raw_labels_)
    assert bf.absorbed_ == {int(raw_s): 20}
    ok = bf.labels_ >= 0
    np.testing.assert_array_equal(bf.labels_[ok], truth[ok])
    assert np.all(bf.labels_[is_s] == 0)


def _dumbbell(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs 6 apart joined by a dense bridge, in x order; -1 marks the bridge."""
    a = rng.normal(scale=0.5, size=(400, 2)) + np.array([-3.0, 0.0])
    b = rng.normal(scale=0.5, size=(400, 2)) + np.array([3.0, 0.0])
    bridge = np.c_[rng.uniform(-3, 3, 200), rng.normal(scale=0.15, size=200)]
    x = np.vstack([a, bridge, b])
    truth = np.r_[np.zeros(400, int), -np.ones(200, int), np.ones(400, int)]
    order = np.argsort(x[:, 0], kind="stable")
    return x[order], truth[order]


@pytest.mark.parametrize("seed", range(3))
def test_basin_finder_splits_two_basins_joined_by_a_neck(seed):
    # 2-D data embed as themselves (PCA); the bridge is denser than the knee radius, so DBSCAN
    # alone sees one cluster (the Cu55 failure of docs/basins.md). The split at smaller radii
    # finds the neck and the valley between the blobs keeps it.
    x, truth = _dumbbell(np.random.default_rng(seed))
    whole = BasinFinder(embedding="pca", split_factors=None).fit(x)
    assert len(set(whole.raw_labels_[truth >= 0]) - {-1}) == 1
    assert whole.n_basins_ == 1
    bf = BasinFinder(embedding="pca").fit(x)
    np.testing.assert_array_equal(bf.raw_labels_, whole.raw_labels_)
    assert bf.n_basins_ == 2
    blob = (truth >= 0) & (bf.labels_ >= 0)
    assert adjusted_rand_score(truth[blob], bf.labels_[blob]) == 1.0
    assert bf.valley_ratios_[(0, 1)] < 0.3
    assert bf.noise_fraction_ <= 0.06


@pytest.mark.parametrize("seed", range(3))
def test_basin_finder_keeps_a_band_whole(seed):
    # one long uniform band: whatever the smaller radii cut, no valley supports it
    rng = np.random.default_rng(seed)
    x = np.c_[np.sort(rng.uniform(0, 10, 1000)), rng.normal(scale=0.3, size=1000)]
    bf = BasinFinder(embedding="pca").fit(x)
    assert bf.n_basins_ == 1
    _assert_merges_only_undo_splits(bf)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"merge": "kmeans"}, "merge"),
        ({"merge_threshold": 1.5}, "merge_threshold"),
        ({"merge_threshold": 0.0}, "merge_threshold"),
        ({"merge": "centroid", "merge_threshold": -1.0}, "merge_threshold"),
        ({"split_factors": (0.6, 0.9)}, "split_factors"),
        ({"split_factors": (1.2,)}, "split_factors"),
        ({"clusterer": "kmeans"}, "clusterer"),
        ({"embedding": "umap"}, "embedding"),
        ({"eps": -1.0}, "eps"),
        ({"eps": "knee"}, "eps"),
        ({"min_samples": 400}, "X"),
        ({"min_basin_fraction": 0.5}, "min_basin_fraction"),
        ({"min_basin_fraction": -0.1}, "min_basin_fraction"),
    ],
)
def test_basin_finder_rejects_bad_parameters(ramp_like, params, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        BasinFinder(**{"embedding": "pca", **params}).fit(ramp_like)


def test_basin_finder_rejects_too_few_frames():
    with pytest.raises(ConfigError, match=r"X='4 frames'"):
        BasinFinder(min_samples=2).fit(np.zeros((4, 3)))


# --------------------------------------------------------------------------------------------
# smooth_labels, switch_temperatures
# --------------------------------------------------------------------------------------------


def _mode_reference(lab: np.ndarray, window: int) -> np.ndarray:
    ids = np.unique(lab[lab >= 0])
    out = np.full(len(lab), -1)
    h = window // 2
    for i in range(len(lab)):
        w = lab[max(i - h, 0) : i + h + 1]
        counts = np.array([np.count_nonzero(w == c) for c in ids])
        if counts.size and counts.max() > 0:
            out[i] = ids[np.argmax(counts)]  # ties: the smallest label
    return out


def test_smooth_labels_removes_flips_and_fills_noise():
    lab = np.r_[np.zeros(50, int), np.ones(50, int)]
    noisy = lab.copy()
    noisy[[10, 30, 31]] = [1, -1, -1]
    noisy[[70, 85]] = [0, -1]
    np.testing.assert_array_equal(smooth_labels(noisy, 5), lab)
    np.testing.assert_array_equal(smooth_labels(noisy, 1), noisy)
    # noise survives only where the whole window is noise
    gap = lab.copy()
    gap[20:27] = -1
    out = smooth_labels(gap, 5)
    np.testing.assert_array_equal(np.flatnonzero(out < 0), [22, 23, 24])
    np.testing.assert_array_equal(smooth_labels(np.full(9, -1), 3), np.full(9, -1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-1, max_value=3), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=6),
)
def test_smooth_labels_is_the_window_mode(labels, half):
    lab = np.asarray(labels)
    np.testing.assert_array_equal(smooth_labels(lab, 2 * half + 1), _mode_reference(lab, 2 * half + 1))


@pytest.mark.parametrize("window", [0, 4, -3])
def test_smooth_labels_rejects_bad_window(window):
    with pytest.raises(ValueError, match=r"window="):
        smooth_labels(np.zeros(10, int), window)


def test_switch_temperature_of_a_clean_split():
    temp = np.linspace(300.0, 1200.0, 200)
    lab = np.r_[np.zeros(100, int), np.ones(100, int)]
    assert switch_temperatures(lab, temp) == [(0, 1, 0.5 * (temp[99] + temp[100]))]


def test_switch_temperature_ignores_misassignments_noise_and_other_basins():
    temp = np.linspace(300.0, 1200.0, 300)
    lab = np.r_[np.zeros(100, int), np.ones(100, int), np.full(100, 2)]
    lab[[20, 40]] = 1  # cost at the true split 100 -> 3, at 99 -> 4, at 101 -> 4
    lab[150] = 0
    lab[[60, 130]] = -1
    lab[[5, 250]] = [2, 0]  # a frame of basin 2 in the first part, of 0 in the third
    out = switch_temperatures(lab, temp)
    assert out == [(0, 1, 0.5 * (temp[99] + temp[100])), (1, 2, 0.5 * (temp[199] + temp[200]))]


def test_switch_temperature_tie_takes_the_middle():
    temp = np.linspace(300.0, 1200.0, 200)
    lab = np.r_[np.zeros(100, int), np.full(20, -1), np.ones(80, int)]  # splits 100..120 all cost 0
    assert switch_temperatures(lab, temp) == [(0, 1, 0.5 * (temp[109] + temp[110]))]


def test_switch_temperatures_edge_cases():
    assert switch_temperatures(np.full(10, -1), np.arange(10.0)) == []
    assert switch_temperatures(np.zeros(10, int), np.arange(10.0)) == []
    with pytest.raises(ValueError, match=r"temperature="):
        switch_temperatures(np.zeros(10, int), np.arange(9.0))


# --------------------------------------------------------------------------------------------
# heat_capacity
# --------------------------------------------------------------------------------------------


def test_heat_capacity_of_a_line_is_its_slope():
    rng = np.random.default_rng(8)
    t = np.sort(rng.uniform(200.0, 1400.0, 500))
    grid, c = heat_capacity(t, -35.0 + 4.2e-3 * t, bandwidth_K=30.0)
    assert grid.shape == (200,) and grid[0] == t.min() and grid[-1] == t.max()
    np.testing.assert_allclose(c, 4.2e-3, rtol=1e-9)


def _sigmoid_curve(t, b=3e-3, delta=0.4, tm=712.4, w=15.0):
    z = (t - tm) / w
    energy = 1.0 + b * t + delta / (1 + np.exp(-z))
    slope = b + delta / w * np.exp(-z) / (1 + np.exp(-z)) ** 2
    return energy, slope


def test_heat_capacity_is_the_kernel_smoothed_derivative():
    # On dense uniform data far from the ends, the kernel sums are Gaussian integrals, and by
    # Stein's identity  E[(T - T0) E(T)] = h^2 E[E'(T)]  for T ~ N(T0, h^2): the local-linear
    # slope is the derivative dE/dT convolved with the kernel.
    h = 25.0
    t = np.linspace(200.0, 1400.0, 2401)
    energy, _ = _sigmoid_curve(t)
    grid = np.arange(500.0, 901.0, 5.0)  # >= 12 h from the ends
    _, c = heat_capacity(t, energy, bandwidth_K=h, grid_K=grid)
    s = np.linspace(-12 * h, 12 * h, 48001)
    kernel = np.exp(-0.5 * (s / h) ** 2) / (np.sqrt(2 * np.pi) * h)
    ref = np.array([np.trapezoid(_sigmoid_curve(t0 + s)[1] * kernel, s) for t0 in grid])
    np.testing.assert_allclose(c, ref, rtol=1e-9)


def test_heat_capacity_peak_at_the_transition():
    t = np.linspace(200.0, 1400.0, 2401)
    energy, _ = _sigmoid_curve(t, tm=712.4)
    grid, c = heat_capacity(t, energy, bandwidth_K=25.0, grid_K=np.arange(500.0, 901.0, 1.0))
    # the smoothed peak is symmetric about Tm: the grid point nearest to it wins
    assert abs(grid[np.argmax(c)] - 712.4) <= 0.5


@pytest.mark.parametrize(
    ("t", "e", "kw", "name"),
    [
        (np.arange(10.0), np.arange(9.0), {}, "energy"),
        (np.arange(4.0), np.arange(4.0), {}, "energy"),
        (np.arange(10.0), np.arange(10.0), {"bandwidth_K": 0.0}, "bandwidth_K"),
    ],
)
def test_heat_capacity_rejects_bad_input(t, e, kw, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        heat_capacity(t, e, **kw)


# --------------------------------------------------------------------------------------------
# lindemann_index
# --------------------------------------------------------------------------------------------

ICO13 = Icosahedron("Cu", 2).positions


def _floor(n_frames: int, window: int) -> float:
    """Round-off floor of the running-sum variance: sqrt(eps * n / window) times a safety factor 10."""
    return 10 * np.sqrt(EPS * n_frames / window)


def test_lindemann_of_rigid_motion_is_zero():
    rng = np.random.default_rng(9)
    n, window = 500, 20
    rot = Rotation.random(n, random_state=rng)
    pos = np.stack([r.apply(ICO13) + rng.normal(scale=10.0, size=3) for r in rot])
    delta = lindemann_index(pos, window)
    assert delta.shape == (n,)
    assert delta.max() < _floor(n, window)  # 7e-7: round-off only
    still = lindemann_index(np.repeat(ICO13[None], 50, axis=0), 10)
    assert still.max() < _floor(50, 10)


def test_lindemann_small_displacement_limit():
    # independent isotropic displacements u ~ N(0, sigma^2 I): r_ij = |R_ij + u_i - u_j| has
    # std sqrt(2) sigma + O(sigma^3 / R^2), so delta = sqrt(2) sigma <1/R_ij> (one window over all
    # frames; sampling error 0.07% for 4000 frames, second order 1e-5 at sigma = 0.01 A)
    rng = np.random.default_rng(10)
    n, sigma = 4000, 0.01
    pos = ICO13 + rng.normal(scale=sigma, size=(n, *ICO13.shape))
    delta = lindemann_index(pos, n)
    np.testing.assert_allclose(delta, delta[0], rtol=1e-12)  # one window for every frame
    assert delta[0] == pytest.approx(np.sqrt(2) * sigma * np.mean(1 / pdist(ICO13)), rel=0.01)


def test_lindemann_grows_with_displacement():
    z = np.random.default_rng(11).normal(size=(300, *ICO13.shape))
    means = [lindemann_index(ICO13 + s * z, 20).mean() for s in (0.0, 0.01, 0.03, 0.1, 0.3)]
    assert means[0] < _floor(300, 20)
    assert np.all(np.diff(means) > 0)


def test_lindemann_window_placement():
    # still for frames 0-99, displaced from 100 on: window [i - 10, i + 10) (shifted inside at the
    # ends) holds only still frames iff i <= 90
    rng = np.random.default_rng(12)
    pos = np.repeat(ICO13[None], 200, axis=0)
    pos[100:] += rng.normal(scale=0.05, size=(100, *ICO13.shape))
    delta = lindemann_index(pos, 20)
    assert delta[:91].max() < _floor(200, 20)
    assert delta[91:].min() > 1e-4


def test_lindemann_rejects_bad_input():
    with pytest.raises(ValueError, match=r"positions="):
        lindemann_index(np.zeros((5, 13)), 20)
    with pytest.raises(ValueError, match=r"window="):
        lindemann_index(np.zeros((5, 13, 3)), 1)


# --------------------------------------------------------------------------------------------
# energy_phase_labels
# --------------------------------------------------------------------------------------------


def test_energy_phase_labels_find_a_jump():
    rng = np.random.default_rng(13)
    t = np.linspace(300.0, 1200.0, 300)
    e = 2e-3 * t + np.where(np.arange(300) < 120, 0.0, 0.5) + rng.normal(scale=0.01, size=300)
    labels, breaks = energy_phase_labels(t, e, 2)
    assert breaks.shape == (1,) and abs(int(breaks[0]) - 120) <= 2
    np.testing.assert_array_equal(labels, (np.arange(300) >= breaks[0]).astype(int))


def test_energy_phase_labels_exact_kink_and_jump():
    # slope change between frames 99 and 100 (the two lines cross at their mid temperature, so
    # neither frame lies on the other line), a jump between 199 and 200: zero error only there
    t = np.linspace(300.0, 1200.0, 300)
    tk = 0.5 * (t[99] + t[100])
    e = np.where(t < tk, 1e-3 * (t - tk), 4e-3 * (t - tk))
    e[200:] += 0.3
    labels, breaks = energy_phase_labels(t, e, 3)
    np.testing.assert_array_equal(breaks, [100, 200])
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 100))


def _sse(t, e):
    coef = np.polyfit(t, e, 1)
    return float(np.sum((np.polyval(coef, t) - e) ** 2))


@pytest.mark.parametrize("seed", range(4))
def test_energy_phase_labels_is_the_optimal_segmentation(seed):
    rng = np.random.default_rng(seed)
    n, k, m = 24, 3, 3
    t = np.sort(rng.uniform(300.0, 1200.0, n))
    e = rng.normal(size=n).cumsum()
    labels, breaks = energy_phase_labels(t, e, k, min_frames=m)
    edges = [0, *breaks.tolist(), n]
    assert len(edges) == k + 1 and min(np.diff(edges)) >= m
    got = sum(_sse(t[a:b], e[a:b]) for a, b in itertools.pairwise(edges))
    best = min(
        sum(_sse(t[a:b], e[a:b]) for a, b in itertools.pairwise((0, *cut, n)))
        for cut in itertools.combinations(range(m, n - m + 1), k - 1)
        if min(np.diff((0, *cut, n))) >= m
    )
    assert got == pytest.approx(best, rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(labels, np.searchsorted(breaks, np.arange(n), side="right"))


def test_energy_phase_labels_do_not_depend_on_the_energy_zero():
    # a constant added to E changes no straight-line fit; absolute energies of all-electron
    # codes are ~1e6-1e7 eV for a hundred Cu atoms
    rng = np.random.default_rng(14)
    n = 1000
    t = np.linspace(300.0, 1200.0, n)
    e = 0.01 * t + np.where(np.arange(n) < 400, 0.0, 0.5) + rng.normal(scale=0.01, size=n)
    _, breaks = energy_phase_labels(t, e, 2)
    np.testing.assert_array_equal(breaks, [400])
    for offset in (-1e4, -1e7):
        np.testing.assert_array_equal(energy_phase_labels(t, e + offset, 2)[1], breaks)


@pytest.mark.parametrize(("k", "min_frames"), [(0, 20), (6, 20), (2, 60)])
def test_energy_phase_labels_rejects_too_many_phases(k, min_frames):
    t = np.linspace(300.0, 1200.0, 100)
    with pytest.raises(ValueError, match=r"n_phases="):
        energy_phase_labels(t, t, k, min_frames=min_frames)


# --------------------------------------------------------------------------------------------
# morphology: classify_cna, representatives, quench
# --------------------------------------------------------------------------------------------


def _cna(positions: np.ndarray) -> dict[str, float]:
    cna = CNAFractions(nearest_neighbour_cutoff(positions))
    return dict(zip(cna.names, cna(positions, np.full(len(positions), 29)), strict=True))


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        (Icosahedron("Cu", 2), "icosahedral"),
        (Icosahedron("Cu", 4), "icosahedral"),
        (Octahedron("Cu", 7, cutoff=3), "fcc-like"),
        (Decahedron("Cu", 3, 3, 1), "decahedral"),
    ],
)
def test_classify_ideal_clusters(atoms, expected):
    assert classify_cna(_cna(atoms.positions)) == expected
    # the same atoms at random places in a sphere of the cluster's volume: a gas
    rng = np.random.default_rng(15)
    pos = atoms.positions - atoms.positions.mean(axis=0)
    radius = np.linalg.norm(pos, axis=1).max()
    u = rng.normal(size=pos.shape)
    gas = u / np.linalg.norm(u, axis=1)[:, None] * radius * rng.uniform(size=(len(pos), 1)) ** (1 / 3)
    assert classify_cna(_cna(gas)) == "disordered"


def test_classify_cna_thresholds_and_keys():
    def frac(f421, f422, f555):
        return {"cna_421": f421, "cna_422": f422, "cna_555": f555, "cna_other": 1 - f421 - f422 - f555}

    assert classify_cna(frac(0.5, 0.3, 0.041 * 0.841)) == "icosahedral"  # f555 / o just above 0.04
    assert classify_cna(frac(0.5, 0.3, 0.039 * 0.831)) == "decahedral"  # just below
    assert classify_cna(frac(0.8, 0.05, 0.01)) == "fcc-like"  # f422 / o < 0.1
    assert classify_cna(frac(0.7, 0.3, 0.002)) == "fcc-like"  # f555 / o < 0.004
    assert classify_cna(frac(0.1, 0.02, 0.02)) == "disordered"  # o = 0.14 < 0.25
    # o = 0.2449 and 0.2551 either side of 0.25 (a hot liquid at 0.151 is disordered)
    assert classify_cna(frac(0.15, 0.08, 0.0149)) == "disordered"
    assert classify_cna(frac(0.15, 0.08, 0.0251)) == "icosahedral"
    assert classify_cna(frac(0.1, 0.02, 0.02), ordered_min=0.1) == "icosahedral"
    assert set(MORPHOLOGIES) == {"fcc-like", "icosahedral", "decahedral", "disordered"}
    with pytest.raises(ValueError, match=r"fractions=\['cna_421', 'cna_422'\]"):
        classify_cna({"cna_421": 0.5, "cna_422": 0.2})


def test_representatives_medoid_and_neighbours():
    # basin 0: a centre and a symmetric star around it; basin 1: points 0, 1, 2, 3, 10 on a line
    # (summed distances 16, 13, 12, 13, 34: medoid 2, then 1 and 3 at distance 1, in frame order)
    star = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [2, 0], [-2, 0]], dtype=float)
    line = np.array([[0, 5], [1, 5], [2, 5], [3, 5], [10, 5]], dtype=float)
    x = np.vstack([star[1:4], line[:2], [[50.0, 50.0]], star[[0]], line[2:], star[4:]])
    labels = np.array([0, 0, 0, 1, 1, -1, 0, 1, 1, 1, 0, 0, 0])
    reps = representatives(x, labels, n=3)
    assert sorted(reps) == [0, 1]
    # the centre of the star, then the first two of its four neighbours at distance 1 (stable order)
    np.testing.assert_array_equal(reps[0], [6, 0, 1])
    np.testing.assert_array_equal(reps[1], [7, 4, 8])
    one = representatives(x, labels, n=1)
    assert [len(v) for v in one.values()] == [1, 1]
    assert len(representatives(x, labels, n=20)[1]) == 5


def test_quench_returns_the_inherent_structure():
    rng = np.random.default_rng(16)
    ideal = Icosahedron("Cu", 2)
    perturbed = ideal.copy()
    perturbed.positions += rng.normal(scale=0.1, size=perturbed.positions.shape)
    before = perturbed.positions.copy()
    e_perturbed = EMT().get_potential_energy(perturbed.copy())
    ref = quench(ideal, EMT(), fmax_eV_A=1e-4)
    q = quench(perturbed, EMT(), fmax_eV_A=1e-4)
    assert q.info["quench_converged"] and ref.info["quench_converged"]
    assert q.calc is None
    np.testing.assert_array_equal(perturbed.positions, before)  # input untouched
    assert perturbed.calc is None and perturbed.cell.rank == 0
    assert q.info["energy"] < e_perturbed - 1.0
    # both quenches end within fmax = 1e-4 eV/A of the icosahedral minimum: energies within
    # ~ N fmax^2 / k ~ 1e-7 eV, pair distances within ~ fmax / k ~ 1e-4 A
    assert q.info["energy"] == pytest.approx(ref.info["energy"], abs=1e-6)
    np.testing.assert_allclose(np.sort(pdist(q.positions)), np.sort(pdist(ref.positions)), atol=1e-3)
    assert EMT().get_potential_energy(q.copy()) == pytest.approx(q.info["energy"], abs=1e-12)
    assert classify_cna(_cna(q.positions)) == "icosahedral"


# --------------------------------------------------------------------------------------------
# end to end: one tiny Cu13 ramp on ASE's EMT
# --------------------------------------------------------------------------------------------

RAMP = RampConfig(
    cluster=ClusterSpec("icosahedron", 2),
    start_K=300,
    stop_K=1200,
    steps=8000,  # 16 ps, 201 frames: fewer frames do not resolve the density valley at melting
    stride=40,
    equilibration_steps=200,
    calculator="ase-emt",
)


@pytest.fixture(scope="module")
def ramp_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cu13") / "ramp"
    run_ramp(RAMP, out, progress=False)
    return out


@pytest.fixture(scope="module")
def analysis(ramp_dir):
    return analyse_ramp(read_frames(ramp_dir))


def test_analyse_ramp_of_a_cu13_ramp(analysis):
    r = analysis
    n = RAMP.n_frames
    assert r.descriptors.shape == (n, 14)
    assert r.finder.labels_.shape == r.smoothed.shape == r.energy_labels.shape == r.lindemann.shape == (n,)
    assert r.finder.n_basins_ >= 2
    assert r.morphology[0] == "icosahedral" and r.morphology[r.finder.n_basins_ - 1] == "disordered"
    assert set(r.morphology) == set(range(r.finder.n_basins_)) and set(r.morphology.values()) <= set(MORPHOLOGIES)
    # a 300 K icosahedron is heated into a liquid
    assert r.morphology[0] == "icosahedral"
    assert r.morphology[r.finder.n_basins_ - 1] == "disordered"
    temps = [t for _, _, t in r.switches]
    assert [(a, b) for a, b, _ in r.switches] == [(a, a + 1) for a in range(r.finder.n_basins_ - 1)]
    assert np.all(np.diff(temps) > 0) and 300 < temps[0] and temps[-1] < 1200
    assert r.melting_K in temps
    assert 300 <= r.cv_peak_K <= 1200 and 300 <= r.lindemann_K <= 1200
    assert r.cv_grid_K.shape == r.heat_capacity_eV_K.shape == (200,)
    assert np.all((r.lindemann > 0) & (r.lindemann < 0.5))
    # pair-distance fluctuations of the 1150 K liquid are about twice those of the 300 K solid
    assert r.lindemann[-10:].mean() > 1.5 * r.lindemann[:10].mean()
    assert set(np.unique(r.energy_labels)) == set(range(r.finder.n_basins_))
    assert -1 <= r.ari <= 1
    d = r.to_dict()
    assert json.loads(json.dumps(d))["n_frames"] == n
    assert [b["frames"] for b in d["basins"]] == [int(np.sum(r.finder.labels_ == b)) for b in range(r.finder.n_basins_)]
    assert d["switches_K"] == [list(s) for s in r.switches]
    text = r.to_text()
    assert text.startswith(f"Cu13-icosahedron: {n} frames, {r.finder.n_basins_} basins")
    assert text.count("\n  basin ") == r.finder.n_basins_


def _reject_nan(token: str):
    raise ValueError(f"non-standard JSON constant {token}")


def test_ari_is_undefined_for_a_single_basin(ramp_dir, tmp_path):
    # a radius wider than the whole map puts every frame in one basin; the energy labels then have
    # one phase too, and the ARI would be a trivial 1 (as Cu55 runs with a missed melting showed)
    r = analyse_ramp(read_frames(ramp_dir), finder=BasinFinder(eps=1e6, min_basin_fraction=0.0))
    assert r.finder.n_basins_ == 1
    assert np.isnan(r.ari) and np.isnan(r.melting_K)
    assert "ARI vs energy phases undefined (one basin)" in r.to_text()
    # the saved report is standard JSON: the undefined figures are null, not NaN
    out = r.save(tmp_path / "one", figures=False)
    report = json.loads((out / "report.json").read_text(), parse_constant=_reject_nan)
    assert report["ari_energy_labels"] is None and report["melting_switch_K"] is None


def test_read_frames_from_extxyz_matches_the_ramp(ramp_dir):
    nc = read_frames(ramp_dir)
    xyz = read_frames(ramp_dir / "frames.extxyz")
    # extended XYZ stores positions with 8 decimals, energies and temperatures in full
    np.testing.assert_allclose(xyz.positions.values, nc.positions.values, rtol=0, atol=5e-9 + 1e-12)
    np.testing.assert_array_equal(xyz.potential_energy.values, nc.potential_energy.values)
    np.testing.assert_array_equal(xyz.target_temperature.values, nc.target_temperature.values)
    np.testing.assert_array_equal(xyz.symbol.values, nc.symbol.values)
    # PCA is stable against the 5e-9 A rounding: identical basins
    a = analyse_ramp(nc, finder=BasinFinder(embedding="pca"))
    b = analyse_ramp(xyz, finder=BasinFinder(embedding="pca"))
    np.testing.assert_allclose(a.descriptors.values, b.descriptors.values, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(a.finder.labels_, b.finder.labels_)
    assert a.switches == b.switches and a.morphology == b.morphology


def test_read_frames_rejects_bad_trajectories(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "missing.extxyz")
    bad = tmp_path / "bad.xyz"
    bad.write_text("not a trajectory\n")
    with pytest.raises(ConfigError, match="cannot read"):
        read_frames(bad)
    mixed = tmp_path / "mixed.extxyz"
    write(mixed, [Icosahedron("Cu", 2), Icosahedron("Cu", 3)], format="extxyz")
    with pytest.raises(ConfigError, match="same atoms"):
        read_frames(mixed)


def test_analyse_ramp_rejects_bad_input(ramp_dir):
    ds = read_frames(ramp_dir).isel(frame=slice(0, 40))
    with pytest.raises(ConfigError, match="CNAFractions"):
        analyse_ramp(ds, descriptors=Steinhardt(3.1), finder=BasinFinder(embedding="pca"))
    no_t = ds.copy()
    no_t["target_temperature"] = no_t.target_temperature * np.nan
    with pytest.raises(ConfigError, match="temperature"):
        analyse_ramp(no_t)


def test_analyse_ramp_with_many_small_basins(ramp_dir):
    # more basins than frames / 20 (the default shortest energy phase) must not break the analysis
    ds = read_frames(ramp_dir)
    finder = BasinFinder(min_samples=3, min_basin_fraction=0.0, merge=None, perplexity=10)
    r = analyse_ramp(ds, finder=finder)
    k = r.finder.n_basins_
    assert k * 20 > ds.sizes["frame"]  # the case that needs shorter phases
    assert set(np.unique(r.energy_labels)) == set(range(k))


def test_save_writes_report_dataset_figures_and_morphologies(analysis, tmp_path):
    r = analysis
    out = r.save(tmp_path / "basins", n_representatives=2, quench_calculator=EMT())
    assert out == tmp_path / "basins"
    report = json.loads((out / "report.json").read_text())
    expected = json.loads(json.dumps(r.to_dict()))
    for b in report["basins"]:
        assert b.pop("medoid_quenched_morphology") in MORPHOLOGIES
        assert np.isfinite(b.pop("medoid_quenched_energy_eV"))
    assert report == expected
    assert (out / "report.txt").read_text() == r.to_text() + "\n"
    with xr.open_dataset(out / "basins.nc") as ds:
        np.testing.assert_array_equal(ds.basin.values, r.finder.labels_)
        np.testing.assert_array_equal(ds.basin_smoothed.values, r.smoothed)
        np.testing.assert_array_equal(ds.energy_phase.values, r.energy_labels)
        np.testing.assert_array_equal(ds.embedding.values, r.finder.embedding_)
        np.testing.assert_array_equal(ds.descriptors.values, r.descriptors.values)
        assert json.loads(ds.attrs["report"])["n_basins"] == r.finder.n_basins_
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["basin_map.png", "caloric_curve.png", "morphologies.png", "occupancy.png", "split_and_merge.png"]
    assert all((out / "figures" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    reps = r.representatives(2)
    positions = r.frames.positions.values
    for b, idx in reps.items():
        for rank, f in enumerate(idx):
            name = out / "morphologies" / f"basin{b}_{'medoid' if rank == 0 else 'near1'}"
            atoms = read(f"{name}.xyz")
            assert atoms.info["frame"] == f and atoms.info["basin"] == b
            np.testing.assert_allclose(atoms.positions, positions[f], atol=5e-9 + 1e-12)
            q = read(f"{name}_quenched.xyz")
            assert q.get_potential_energy() < r.frames.potential_energy.values[f]  # extxyz: info energy -> calc
    # the solid's medoid quenches to the icosahedron
    ico = json.loads((out / "report.json").read_text())["basins"][0]
    assert ico["medoid_quenched_morphology"] == "icosahedral"


def test_summarize_identical_runs(analysis):
    s = summarize([analysis, analysis])
    assert s["n_runs"] == 2 and s["n_basins"] == [analysis.finder.n_basins_] * 2
    for key, value in [("melting_switch_K", analysis.melting_K), ("heat_capacity_peak_K", analysis.cv_peak_K)]:
        assert s[key]["values"] == [value, value] and s[key]["mean"] == value and s[key]["std"] == 0.0
    if not analysis.solid_solid_K:
        assert np.isnan(s["solid_solid_K"]["mean"]) and np.isnan(s["solid_solid_K"]["std"])


def test_cli_basins(ramp_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["basins", str(ramp_dir), str(ramp_dir / "ramp.nc"), "--out", str(out), "--no-figures"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 2
    assert summary["melting_switch_K"]["std"] == 0.0  # the same ramp twice
    for sub in ("00_ramp", "01_ramp"):
        assert (out / sub / "report.json").is_file() and (out / sub / "basins.nc").is_file()
        assert not (out / sub / "figures").exists()
    assert "Cu13-icosahedron" in capsys.readouterr().out
    raw = tmp_path / "raw"
    args = ["basins", str(ramp_dir), "--out", str(raw), "--no-figures", "--no-split", "--merge", "none"]
    assert main([*args, "--min-basin-fraction", "0"]) == 0
    assert json.loads((raw / "00_ramp" / "report.json").read_text())["merges"] == []
    with xr.open_dataset(raw / "00_ramp" / "basins.nc") as ds:
        np.testing.assert_array_equal(ds.fragment.values, ds.raw_cluster.values)  # neither absorbed nor split


def test_cli_basins_descriptor_choice(ramp_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "dist"
    assert main(["basins", str(ramp_dir), "--out", str(out), "--no-figures", "--descriptors", "distributions"]) == 0
    with xr.open_dataset(out / "00_ramp" / "basins.nc") as ds:
        assert ds.sizes["feature"] == 45  # Steinhardt 8 + CNA 6 + coordination 11 + radial 20
    pytest.importorskip("dscribe")
    soap = tmp_path / "soap"
    assert main(["basins", str(ramp_dir), "--out", str(soap), "--no-figures", "--descriptors", "soap"]) == 0
    with xr.open_dataset(soap / "00_ramp" / "basins.nc") as ds:
        names = [str(f) for f in ds.feature.values]
        assert names[0] == "soap_0" and "cna_555" in names and len(names) == 147 + 6
    monkeypatch.setitem(sys.modules, "dscribe", None)
    monkeypatch.setitem(sys.modules, "dscribe.descriptors", None)
    capsys.readouterr()
    assert main(["basins", str(ramp_dir), "--out", str(tmp_path / "x"), "--descriptors", "soap"]) == 2
    assert "pip install dscribe" in capsys.readouterr().err
    assert main(["basins", str(tmp_path / "nowhere.extxyz"), "--out", str(out)]) == 2


def test_cli_md_ramp(tmp_path, capsys):
    cfg = tmp_path / "ramp.yaml"
    cfg.write_text(
        "cluster: {shape: icosahedron, size: 2}\ntemperature_K: [300, 600]\nsteps: 100\nstride: 20\n"
        "equilibration_steps: 0\ncalculator: ase-emt\nseed: 1\n"
    )
    out = tmp_path / "md"
    assert main(["md", "ramp", str(cfg), "--out", str(out), "--seed", "3", "--no-progress"]) == 0
    ds = load_ramp(out)
    assert ds.sizes["frame"] == 6 and ds.attrs["seed"] == 3
    assert json.loads(ds.attrs["config"])["stop_K"] == 600.0
    assert (out / "frames.extxyz").is_file()
    assert "Cu13-icosahedron: 6 frames" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: {shape: icosahedron, size: 2}\nstepz: 100\n")
    assert main(["md", "ramp", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'stepz'" in err and "did you mean 'steps'" in err
