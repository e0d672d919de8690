"""Structural descriptors of nanoclusters: exact limits of perfect lattices, invariances, normalisations."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

pytest.importorskip("ase")

from ase.build import bulk
from ase.cluster import Icosahedron, Octahedron

from surrodyn.analysis.descriptors import (
    FCC_SHELL_MIDPOINT,
    CNAFractions,
    CoordinationHistogram,
    DescriptorSet,
    FrameDescriptor,
    RadialDistribution,
    SOAPAverage,
    Steinhardt,
    cna_signatures,
    compute_descriptors,
    default_descriptors,
    descriptor_preset,
    nearest_neighbour_cutoff,
    neighbor_pairs,
    steinhardt,
)
from surrodyn.analysis.steinhardt import _wigner_3j
from surrodyn.errors import ConfigError

A_CU = 3.61
R_NN = A_CU / np.sqrt(2.0)
CUTOFF = FCC_SHELL_MIDPOINT * R_NN  # ≈ 3.08 Å, between the √1 and √2 shells

FCC = {"q4": 0.19094, "q6": 0.57452, "w4": -0.15932, "w6": -0.01316}
HCP = {"q4": 0.09722, "q6": 0.48476, "w4": 0.13410, "w6": -0.01244}


@pytest.fixture(scope="module")
def fcc_bulk():
    return bulk("Cu", "fcc", a=A_CU, cubic=True).repeat((3, 3, 3))  # 108 atoms, widths 10.83 Å > 3 cutoff


@pytest.fixture(scope="module")
def ico13():
    return Icosahedron("Cu", noshells=2)


@pytest.fixture(scope="module")
def ico55_thermal():
    rng = np.random.default_rng(20240611)
    atoms = Icosahedron("Cu", noshells=3)
    return atoms.positions + rng.normal(0.0, 0.04, atoms.positions.shape), atoms.numbers


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# --------------------------------------------------------------------------------------------
# Wigner 3j and Steinhardt exact limits


def test_wigner_3j_known_values_and_orthogonality():
    assert _wigner_3j(1, 1, 0, 0, 0, 0) == pytest.approx(-1 / np.sqrt(3), abs=1e-15)
    assert _wigner_3j(2, 2, 2, 0, 0, 0) == pytest.approx(-np.sqrt(2 / 35), abs=1e-15)
    assert _wigner_3j(1, 1, 1, 1, -1, 0) == pytest.approx(1 / np.sqrt(6), abs=1e-15)
    assert _wigner_3j(2, 2, 2, 1, 1, 0) == 0.0  # m1 + m2 + m3 != 0
    assert _wigner_3j(1, 1, 3, 0, 0, 0) == 0.0  # triangle violated
    # sum_{m1, m2} (l l L; m1 m2 M)(l l L'; m1 m2 M) = δ_{LL'} / (2L + 1) at fixed M
    l = 3  # noqa: E741
    for big_l, big_l2, big_m in [(2, 2, 0), (4, 4, 1), (2, 4, 0), (6, 6, -2), (3, 5, 2)]:
        total = sum(
            _wigner_3j(l, l, big_l, m1, -big_m - m1, big_m) * _wigner_3j(l, l, big_l2, m1, -big_m - m1, big_m)
            for m1 in range(-l, l + 1)
        )
        assert total == pytest.approx((big_l == big_l2) / (2 * big_l + 1), abs=1e-14)


def test_steinhardt_perfect_fcc_periodic(fcc_bulk):
    values = steinhardt(fcc_bulk.positions, CUTOFF, wigner=True, cell=fcc_bulk.cell[:], pbc=True)
    assert set(values) == {"q4", "q6", "w4", "w6"}
    for key, ref in FCC.items():
        np.testing.assert_allclose(values[key], ref, atol=5e-6)


def test_steinhardt_primitive_cell_bonds_to_own_images():
    primitive = bulk("Cu", "fcc", a=A_CU)  # one atom: all 12 neighbours are its own periodic images
    i, j, _ = neighbor_pairs(primitive.positions, CUTOFF, cell=primitive.cell[:])
    assert len(i) == 12 and (i == j).all()
    values = steinhardt(primitive.positions, CUTOFF, wigner=True, cell=primitive.cell[:])
    for key, ref in FCC.items():
        np.testing.assert_allclose(values[key], ref, atol=5e-6)


def test_steinhardt_fcc_interior_atom_without_cell():
    block = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat((3, 3, 3))
    i, _, _ = neighbor_pairs(block.positions, CUTOFF)
    full = np.bincount(i, minlength=len(block)) == 12
    assert full.any()
    values = steinhardt(block.positions, CUTOFF, wigner=True)
    for key, ref in FCC.items():
        np.testing.assert_allclose(values[key][full], ref, atol=5e-6)


def test_steinhardt_perfect_hcp():
    a = R_NN
    hcp = bulk("Cu", "hcp", a=a, c=a * np.sqrt(8 / 3)).repeat((5, 5, 3))
    values = steinhardt(hcp.positions, CUTOFF, wigner=True, cell=hcp.cell[:])
    for key, ref in HCP.items():
        np.testing.assert_allclose(values[key], ref, atol=5e-6)


def test_steinhardt_icosahedron_centre(ico13):
    values = steinhardt(ico13.positions, nearest_neighbour_cutoff(ico13.positions), degrees=(4, 6), wigner=True)
    assert values["q4"][0] == pytest.approx(0.0, abs=1e-10)
    assert values["q6"][0] == pytest.approx(0.66332, abs=5e-6)
    assert values["w6"][0] == pytest.approx(-0.16975, abs=5e-6)
    assert values["w4"][0] == 0.0  # undefined where q4 = 0, reported as 0


def test_steinhardt_isolated_atoms_are_zero():
    positions = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 2.5, 0.0]])
    values = steinhardt(positions, 3.0, degrees=(2, 6), wigner=True)
    assert values["q2"][1] == values["q6"][1] == values["w2"][1] == values["w6"][1] == 0.0
    # a dimer: q_l = 1 for every l (a single bond direction), ŵ_l of one direction is the m=0 3j symbol
    np.testing.assert_allclose(values["q6"][[0, 2]], 1.0, atol=1e-12)
    np.testing.assert_allclose(values["w2"][[0, 2]], _wigner_3j(2, 2, 2, 0, 0, 0), atol=1e-12)


# --------------------------------------------------------------------------------------------
# common-neighbour analysis


def test_cna_fcc_bulk_is_all_421(fcc_bulk):
    n_common, n_bonds, chain = cna_signatures(fcc_bulk.positions, CUTOFF, cell=fcc_bulk.cell[:], pbc=True)
    assert n_common.size == 12 * len(fcc_bulk) // 2
    assert (n_common == 4).all() and (n_bonds == 2).all() and (chain == 1).all()


def test_cna_hcp_is_half_421_half_422():
    hcp = bulk("Cu", "hcp", a=R_NN, c=R_NN * np.sqrt(8 / 3)).repeat((5, 5, 3))
    sig = np.column_stack(cna_signatures(hcp.positions, CUTOFF, cell=hcp.cell[:]))
    assert (np.all(sig == (4, 2, 1), axis=1).sum(), np.all(sig == (4, 2, 2), axis=1).sum()) == (450, 450)


def test_cna_fully_coordinated_pairs_of_an_fcc_cluster_are_421():
    oct_ = Octahedron("Cu", 5, cutoff=2)
    i, j, _ = neighbor_pairs(oct_.positions, CUTOFF)
    cn = np.bincount(i, minlength=len(oct_))
    upper = i < j
    sig = np.column_stack(cna_signatures(oct_.positions, CUTOFF))
    interior = (cn[i[upper]] == 12) & (cn[j[upper]] == 12)
    assert interior.sum() > 0
    assert (sig[interior] == (4, 2, 1)).all()
    assert not (sig[~interior] == (4, 2, 1)).all(axis=1).all()  # surface pairs differ


def test_cna_icosahedron_13(ico13):
    i, j, _ = neighbor_pairs(ico13.positions, CUTOFF)
    upper = i < j
    pi, pj = i[upper], j[upper]
    sig = np.column_stack(cna_signatures(ico13.positions, CUTOFF))
    assert len(sig) == 12 + 30
    centre = (pi == 0) | (pj == 0)
    assert (sig[centre] == (5, 5, 5)).all()
    assert (sig[~centre] == (3, 2, 2)).all()

    fractions = dict(zip(CNAFractions(CUTOFF).names, CNAFractions(CUTOFF)(ico13.positions, ico13.numbers), strict=True))
    assert fractions["cna_555"] == pytest.approx(12 / 42)
    assert fractions["cna_other"] == pytest.approx(30 / 42)
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_cna_fractions_bulk_and_empty(fcc_bulk):
    desc = CNAFractions(CUTOFF, cell=fcc_bulk.cell[:])
    np.testing.assert_array_equal(desc(fcc_bulk.positions, fcc_bulk.numbers), [1, 0, 0, 0, 0, 0])
    assert desc.names == ["cna_421", "cna_422", "cna_555", "cna_544", "cna_433", "cna_other"]
    # bcc signatures on request: with a cutoff between the 2nd (a) and 3rd (a√2) shells each atom
    # has 8 first neighbours (666 pairs) and 6 second neighbours (444 pairs): fractions 4/7 and 3/7
    from ase.build import bulk

    fe = bulk("Fe", "bcc", a=2.87, cubic=True).repeat(4)
    bcc = CNAFractions(3.5, signatures=[(6, 6, 6), (4, 4, 4), (4, 2, 1)], cell=fe.cell[:])
    assert bcc.names == ["cna_666", "cna_444", "cna_421", "cna_other"]
    np.testing.assert_allclose(bcc(fe.positions, fe.numbers), [4 / 7, 3 / 7, 0, 0], atol=1e-12)
    with pytest.raises(ValueError, match="signatures"):
        CNAFractions(CUTOFF, signatures=[(4, 2)])
    np.testing.assert_array_equal(CNAFractions(CUTOFF)(np.array([[0.0, 0, 0], [9, 0, 0]]), np.array([29, 29])), 0.0)


def test_cna_rejects_a_cell_too_small_for_unique_images():
    cell = bulk("Cu", "fcc", a=A_CU, cubic=True).repeat((2, 2, 2))
    with pytest.raises(ConfigError, match="too small for common-neighbour"):
        cna_signatures(cell.positions, CUTOFF, cell=cell.cell[:])
    with pytest.raises(ConfigError, match="too small"):
        CNAFractions(CUTOFF, cell=cell.cell[:])


# --------------------------------------------------------------------------------------------
# neighbours, coordination, RDF


def test_neighbor_pairs_against_brute_force(ico55_thermal):
    positions, _ = ico55_thermal
    i, j, d = neighbor_pairs(positions, CUTOFF)
    dist = squareform(pdist(positions))
    ref_i, ref_j = np.nonzero((dist <= CUTOFF) & ~np.eye(len(positions), dtype=bool))  # row-major: sorted by i, j
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(j, ref_j)
    np.testing.assert_allclose(d, positions[j] - positions[i], atol=1e-14)


def test_neighbor_pairs_periodic_fcc(fcc_bulk):
    i, j, d = neighbor_pairs(fcc_bulk.positions, CUTOFF, cell=fcc_bulk.cell[:], pbc=(True, True, True))
    np.testing.assert_array_equal(np.bincount(i), 12)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), R_NN, atol=1e-12)
    assert np.all(i != j)
    np.testing.assert_allclose(d.sum(axis=0), 0.0, atol=1e-9)  # every bond listed in both directions


def test_nearest_neighbour_cutoff_of_copper(fcc_bulk):
    assert nearest_neighbour_cutoff(fcc_bulk.positions) == pytest.approx(0.5 * (1 + np.sqrt(2)) * R_NN)
    assert nearest_neighbour_cutoff(fcc_bulk.positions) == pytest.approx(3.08, abs=0.01)


def test_coordination_histogram_normalisation_and_folding(ico13, ico55_thermal):
    positions, numbers = ico55_thermal
    desc = CoordinationHistogram(CUTOFF)
    assert desc.names == [f"cn_{k}" for k in range(3, 14)]
    assert desc(positions, numbers).sum() == pytest.approx(1.0)

    values = dict(zip(desc.names, desc(ico13.positions, ico13.numbers), strict=True))
    assert values["cn_12"] == pytest.approx(1 / 13) and values["cn_6"] == pytest.approx(12 / 13)
    folded = CoordinationHistogram(CUTOFF, kmin=7, kmax=10)(ico13.positions, ico13.numbers)
    np.testing.assert_allclose(folded, [12 / 13, 0, 0, 1 / 13])


def test_radial_distribution_against_direct_count(ico55_thermal):
    positions, numbers = ico55_thermal
    desc = RadialDistribution()
    assert len(desc.names) == 20 and desc.names[0] == "rdf_2.10" and desc.names[-1] == "rdf_5.90"
    counts, _ = np.histogram(pdist(positions), bins=np.linspace(2.0, 6.0, 21))
    np.testing.assert_allclose(desc(positions, numbers), 2 * counts / len(positions), atol=1e-12)


def test_radial_distribution_periodic_fcc_shells(fcc_bulk):
    desc = RadialDistribution(2.0, 4.0, n_bins=4, cell=fcc_bulk.cell[:])
    # shells of fcc: 12 at a/√2 = 2.553 Å, 6 at a = 3.61 Å
    np.testing.assert_allclose(desc(fcc_bulk.positions, fcc_bulk.numbers), [0, 12, 0, 6], atol=1e-12)


# --------------------------------------------------------------------------------------------
# invariances and the descriptor set


def test_descriptors_invariant_under_rotation_translation_permutation(ico55_thermal):
    positions, numbers = ico55_thermal
    rng = np.random.default_rng(7)
    desc = default_descriptors(CUTOFF)
    ref = desc(positions, numbers)
    for _ in range(3):
        perm = rng.permutation(len(positions))
        moved = positions[perm] @ _random_rotation(rng).T + rng.normal(0.0, 20.0, 3)
        np.testing.assert_allclose(desc(moved, numbers[perm]), ref, rtol=0, atol=1e-10)


def test_default_descriptors_names():
    desc = default_descriptors()
    assert isinstance(desc, FrameDescriptor)
    assert len(desc.names) == len(set(desc.names)) == 8 + 6
    full = default_descriptors(distributions=True)
    assert len(full.names) == len(set(full.names)) == 8 + 6 + 11 + 20
    assert full.names[:14] == desc.names
    assert desc.names[:8] == ["q4_mean", "q4_std", "q6_mean", "q6_std", "w4_mean", "w4_std", "w6_mean", "w6_std"]
    assert desc.descriptors[0].cutoff_A == pytest.approx(3.085, abs=1e-3)


class RadiusOfGyration:
    """A user-defined descriptor implementing the protocol."""

    def __init__(self):
        self.names = ["rg"]

    def __call__(self, positions, numbers):
        return np.array([np.sqrt(((positions - positions.mean(axis=0)) ** 2).sum(axis=1).mean())])


def test_compute_descriptors_trajectory(ico55_thermal):
    positions, numbers = ico55_thermal
    rng = np.random.default_rng(3)
    frames = positions[None] + rng.normal(0.0, 0.02, (4, *positions.shape))
    out = compute_descriptors(frames, numbers)
    assert out.dims == ("frame", "feature") and out.shape == (4, 14)
    np.testing.assert_array_equal(out["frame"], np.arange(4))
    assert list(out["feature"].values) == default_descriptors().names
    full = compute_descriptors(frames, numbers, default_descriptors(CUTOFF, distributions=True))
    np.testing.assert_allclose(full.sel(feature="cn_3").values, 0.0)
    np.testing.assert_allclose(
        out.isel(frame=2), default_descriptors(nearest_neighbour_cutoff(frames[0]))(frames[2], numbers)
    )

    custom = DescriptorSet([RadiusOfGyration(), Steinhardt(CUTOFF, degrees=(6,))])
    out = compute_descriptors(frames, numbers, custom, progress=True)
    assert list(out["feature"].values) == ["rg", "q6_mean", "q6_std"]
    assert out.sel(feature="rg").values[0] == pytest.approx(RadiusOfGyration()(frames[0], numbers)[0])


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("bad", [np.zeros((5, 2)), np.zeros(3), np.zeros((0, 3)), [[0, 0, np.nan]], "xyz"])
def test_bad_positions(bad):
    with pytest.raises(ConfigError, match="positions"):
        neighbor_pairs(bad, 3.0)
    with pytest.raises(ConfigError, match="positions"):
        Steinhardt(3.0)(bad, np.array([29]))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan, "3", True, None])
def test_bad_cutoff(bad):
    for make in (Steinhardt, CNAFractions, CoordinationHistogram):
        with pytest.raises(ConfigError, match="cutoff_A"):
            make(bad)
    with pytest.raises(ConfigError, match="cutoff_A"):
        steinhardt(np.zeros((2, 3)), bad)


def test_bad_configuration():
    with pytest.raises(ConfigError, match="degrees"):
        Steinhardt(3.0, degrees=(4, 4))
    with pytest.raises(ConfigError, match="degrees"):
        steinhardt(np.zeros((2, 3)), 3.0, degrees=(0,))
    with pytest.raises(ConfigError, match="kmax"):
        CoordinationHistogram(3.0, kmin=8, kmax=4)
    with pytest.raises(ConfigError, match="kmin"):
        CoordinationHistogram(3.0, kmin=-1)
    with pytest.raises(ConfigError, match="r_max_A"):
        RadialDistribution(r_min_A=4.0, r_max_A=3.0)
    with pytest.raises(ConfigError, match="n_bins"):
        RadialDistribution(n_bins=0)
    with pytest.raises(ConfigError, match="pbc"):
        neighbor_pairs(np.zeros((2, 3)), 3.0, pbc=True)
    with pytest.raises(ConfigError, match="cell"):
        neighbor_pairs(np.zeros((2, 3)), 3.0, cell=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="pbc"):
        neighbor_pairs(np.zeros((2, 3)), 3.0, cell=[10.0, 10.0, 10.0], pbc=[True, False])
    with pytest.raises(ConfigError, match="at least two atoms"):
        nearest_neighbour_cutoff(np.zeros((1, 3)))


def test_bad_descriptor_sets_and_trajectories(ico13):
    with pytest.raises(ConfigError, match="duplicate"):
        DescriptorSet([Steinhardt(3.0), Steinhardt(3.5)])
    with pytest.raises(TypeError, match="frame descriptor"):
        DescriptorSet([Steinhardt(3.0), "q6"])
    with pytest.raises(ConfigError, match="descriptors"):
        DescriptorSet([])

    class Liar:
        def __init__(self):
            self.names = ["a", "b"]

        def __call__(self, positions, numbers):
            return np.zeros(3)

    frames = ico13.positions[None]
    with pytest.raises(ConfigError, match="one value per name"):
        compute_descriptors(frames, ico13.numbers, Liar())
    with pytest.raises(ConfigError, match="one value per name"):
        DescriptorSet([Liar()])(ico13.positions, ico13.numbers)
    with pytest.raises(ConfigError, match=r"\(n_frames, n_atoms, 3\)"):
        compute_descriptors(ico13.positions, ico13.numbers)
    with pytest.raises(ConfigError, match="numbers"):
        compute_descriptors(frames, ico13.numbers[:5])
    with pytest.raises(TypeError, match="frame descriptor"):
        compute_descriptors(frames, ico13.numbers, descriptors=len)


def test_soap_average_needs_dscribe(monkeypatch):
    monkeypatch.setitem(sys.modules, "dscribe", None)
    monkeypatch.setitem(sys.modules, "dscribe.descriptors", None)
    with pytest.raises(ImportError, match="pip install dscribe"):
        SOAPAverage(cutoff_A=5.0)
    with pytest.raises(ConfigError, match="average"):
        SOAPAverage(average="mean")


def test_soap_average_invariances_and_size():
    # needs dscribe (the `soap` extra, part of `test`): the SOAP power spectrum averaged over atoms
    # is invariant under rotation, translation and atom order, and has n_max (n_max + 1) / 2
    # (l_max + 1) features for one species
    pytest.importorskip("dscribe")
    rng = np.random.default_rng(30)
    atoms = Icosahedron("Cu", noshells=3)
    pos = atoms.positions + rng.normal(scale=0.05, size=atoms.positions.shape)  # no symmetry left
    soap = SOAPAverage(n_max=4, l_max=3)
    assert len(soap.names) == 4 * 5 // 2 * 4
    f = soap(pos, atoms.numbers)
    assert f.shape == (len(soap.names),) and np.all(np.isfinite(f))
    perm = rng.permutation(len(pos))
    moved = (pos @ _random_rotation(rng).T + np.array([3.0, -1.0, 7.0]))[perm]
    np.testing.assert_allclose(soap(moved, atoms.numbers[perm]), f, rtol=1e-6, atol=1e-10 * np.abs(f).max())
    # a different structure of the same size is a different vector (cuboctahedron-like octahedron cut)
    octa = Octahedron("Cu", 5, cutoff=2)
    g = SOAPAverage(n_max=4, l_max=3)(octa.positions, octa.numbers)
    assert np.linalg.norm(g - f) > 1e-2 * np.linalg.norm(f)
    with pytest.raises(ConfigError, match="species"):
        SOAPAverage(species="Cu")


def test_descriptor_presets():
    assert descriptor_preset("default", 3.0).names == default_descriptors(3.0).names
    assert len(descriptor_preset("distributions").names) == 45  # 8 + 6 + 11 + 20
    with pytest.raises(ValueError, match=r"^kind='acsf'"):
        descriptor_preset("acsf")
