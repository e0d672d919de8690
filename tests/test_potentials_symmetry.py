"""Symmetry functions: values and pair Jacobians against autograd, invariances, periodic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.cluster import Icosahedron
from scipy.spatial.transform import Rotation

from _potentials_reference import torch_fingerprints
from surrodyn.errors import ConfigError
from surrodyn.potentials import AngularFunctions, ANIAngularFunctions, RadialFunctions, SymmetryFunctions


def _cluster(seed: int = 0, alloy: bool = True) -> Atoms:
    atoms = Icosahedron("Cu", 2)
    if alloy:
        atoms.symbols[[0, 3, 5, 11]] = "Ag"
    atoms.positions += np.random.default_rng(seed).normal(0.0, 0.15, atoms.positions.shape)
    return atoms


def _full_jacobian(fp, n: int) -> np.ndarray:
    """dG[i, d] / dr[k, c] assembled from the pair Jacobian (R_p = r_j - r_i)."""
    J = np.zeros((n, fp.G.shape[1], n, 3))
    for p, (i, j) in enumerate(zip(fp.pair_i, fp.pair_j, strict=True)):
        J[i, :, j, :] += fp.dG[p]
        J[i, :, i, :] -= fp.dG[p]
    return J


@pytest.fixture(params=["G4", "G5", "ANI"])
def sf(request) -> SymmetryFunctions:
    # angular cutoff below the radial one, so both cutoffs and both element blocks are exercised
    if request.param == "ANI":
        return SymmetryFunctions.ani(
            ["Cu", "Ag"], radial_eta_per_A2=2.0, n_radial=5, radial_cutoff_A=6.0, angular_eta_per_A2=4.0,
            zeta=8.0, n_angular_shifts=2, angular_start_A=2.0, angular_cutoff_A=4.5, n_sections=3,
        )  # fmt: skip
    return SymmetryFunctions.standard(["Cu", "Ag"], n_radial=5, zetas=(1.0, 4.0), kind=request.param)


def test_values_and_jacobian_match_autograd_of_independent_implementation(sf):
    atoms = _cluster()
    fp = sf.compute(atoms)
    pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    species = torch.as_tensor(fp.species)
    G_ref = torch_fingerprints(pos, species, sf)
    np.testing.assert_allclose(fp.G, G_ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    J_ref = torch.autograd.functional.jacobian(lambda x: torch_fingerprints(x, species, sf), pos)
    np.testing.assert_allclose(_full_jacobian(fp, len(atoms)), J_ref.numpy(), rtol=1e-8, atol=1e-10)


def test_jacobian_matches_finite_differences_in_a_periodic_cell():
    sf = SymmetryFunctions.standard(["Cu"], n_radial=4, zetas=(1.0, 2.0), radial_cutoff_A=5.0, angular_cutoff_A=4.0)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)  # 4 atoms: every neighbour is a periodic image
    atoms.rattle(0.08, seed=3)
    fp = sf.compute(atoms)
    J = _full_jacobian(fp, len(atoms))
    h = 1e-6
    for k in range(len(atoms)):
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[k, c] += h
            minus.positions[k, c] -= h
            fd = (sf.compute(plus, derivatives=False).G - sf.compute(minus, derivatives=False).G) / (2 * h)
            np.testing.assert_allclose(J[:, :, k, c], fd, atol=2e-7 * np.abs(fp.G).max())


def test_single_pair_and_triplet_have_the_textbook_values():
    rad = RadialFunctions((0.5,), (2.0,), 5.0)
    ang = AngularFunctions((0.1,), (2.0,), (1.0,), 5.0, "G4")
    sf = SymmetryFunctions(("Cu",), rad, ang)
    r, theta = 2.5, np.deg2rad(70.0)
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [r, 0, 0], [r * np.cos(theta), r * np.sin(theta), 0]])
    G = sf.compute(atoms, derivatives=False).G

    def fc(x):
        return 0.5 * (np.cos(np.pi * x / 5.0) + 1)

    rjk = 2 * r * np.sin(theta / 2)
    g2 = 2 * np.exp(-0.5 * (r - 2.0) ** 2) * fc(r)
    g4 = 2.0 ** (1 - 2) * (1 + np.cos(theta)) ** 2 * np.exp(-0.1 * (2 * r**2 + rjk**2)) * fc(r) ** 2 * fc(rjk)
    np.testing.assert_allclose(G[0], [g2, g4], rtol=1e-12)


def test_ani_triplet_has_the_textbook_value():
    rad = RadialFunctions((0.5,), (2.0,), 5.0)
    ang = ANIAngularFunctions((0.7,), (3.0,), (1.2,), (2.3,), 4.0)
    sf = SymmetryFunctions(("Cu",), rad, ang)
    a, b, theta = 2.5, 2.7, np.deg2rad(70.0)
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [a, 0, 0], [b * np.cos(theta), b * np.sin(theta), 0]])
    G = sf.compute(atoms, derivatives=False).G

    def fc(x):
        return 0.5 * (np.cos(np.pi * x / 4.0) + 1)

    theta95 = np.arccos(0.95 * np.cos(theta))  # ANI's damped angle
    ani = 2.0 ** (1 - 3) * (1 + np.cos(theta95 - 1.2)) ** 3 * np.exp(-0.7 * ((a + b) / 2 - 2.3) ** 2) * fc(a) * fc(b)
    assert G[0, 1] == pytest.approx(ani, rel=1e-12)


def test_rounding_to_float32_changes_only_the_constants(sf):
    rounded = sf.rounded_to_float32()
    assert rounded.n_features == sf.n_features and type(rounded.angular) is type(sf.angular)
    assert rounded.radial.cutoff_A == sf.radial.cutoff_A and rounded.angular.cutoff_A == sf.angular.cutoff_A
    for values in (rounded.radial.rs_A, rounded.angular.eta_per_A2, rounded.angular.zeta):
        assert all(v == float(np.float32(v)) for v in values)
    G, G32 = (s.compute(_cluster(), derivatives=False).G for s in (sf, rounded))
    assert 0 < np.abs(G32 - G).max() < 1e-6 * np.abs(G).max()


def test_invariant_under_rotation_translation_and_permutation(sf):
    atoms = _cluster(seed=4)
    G = sf.compute(atoms, derivatives=False).G
    moved = atoms.copy()
    moved.positions = Rotation.random(random_state=1).apply(atoms.positions) + np.array([3.0, -7.0, 11.0])
    np.testing.assert_allclose(sf.compute(moved, derivatives=False).G, G, atol=1e-11)
    perm = np.random.default_rng(2).permutation(len(atoms))
    shuffled = atoms[perm]  # permutes like atoms among themselves (element order travels with the atoms)
    np.testing.assert_allclose(sf.compute(shuffled, derivatives=False).G, G[perm], atol=1e-11)


def test_periodic_fingerprints_do_not_depend_on_the_supercell():
    sf = SymmetryFunctions.standard(["Cu"])
    unit = bulk("Cu", "fcc", a=3.61)
    G1 = sf.compute(unit, derivatives=False).G
    G27 = sf.compute(unit * (3, 3, 3), derivatives=False).G
    np.testing.assert_allclose(G27, np.repeat(G1, 27, axis=0), rtol=1e-10)
    assert G1.min() >= 0 and G1[0, : len(sf.radial)].sum() > 0


def test_fingerprint_is_continuous_at_the_cutoff():
    sf = SymmetryFunctions.standard(["Cu"], radial_cutoff_A=5.0, angular_cutoff_A=4.0)
    near = sf.compute(Atoms("Cu2", positions=[[0, 0, 0], [5.0 - 1e-7, 0, 0]]))
    assert np.abs(near.G).max() < 1e-12 and np.abs(near.dG).max() < 1e-5
    far = sf.compute(Atoms("Cu2", positions=[[0, 0, 0], [5.0 + 1e-7, 0, 0]]))
    assert np.all(far.G == 0) and len(far.pair_i) == 0


def test_layout_names_and_round_trip(sf):
    n_angular = 2 * 3 if sf.angular.kind == "ANI" else 3 * 2 * 2  # functions per element pair
    assert len(sf.feature_names) == sf.n_features == 5 * 2 + n_angular * 3
    assert SymmetryFunctions.from_dict(sf.to_dict()) == sf


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RadialFunctions((1.0, 2.0), (1.0,), 5.0), "rs_A"),
        (lambda: RadialFunctions((1.0,), (1.0,), -1.0), "cutoff_A"),
        (lambda: AngularFunctions((0.1,), (0.5,), (1.0,), 4.0), "zeta"),
        (lambda: AngularFunctions((0.1,), (1.0,), (0.5,), 4.0), "lambda_"),
        (lambda: AngularFunctions((0.1,), (1.0,), (1.0,), 4.0, "G3"), "kind"),
        (lambda: ANIAngularFunctions((0.1,), (2.0,), (3.5,), (2.0,), 4.0), "theta_s"),
        (lambda: ANIAngularFunctions((0.1, 0.2), (2.0,), (1.0,), (2.0,), 4.0), "theta_s/rs_A"),
        (lambda: SymmetryFunctions.ani(["Cu"], n_sections=0), "n_sections"),
        (lambda: SymmetryFunctions.ani(["Cu"], angular_start_A=3.5), "angular_start_A"),
        (lambda: SymmetryFunctions.standard(["Cu", "Cu"]), "elements"),
        (lambda: SymmetryFunctions.standard(["Xx"]), "elements"),
        (lambda: SymmetryFunctions.standard(["Cu"], n_radial=0), "n_radial"),
    ],
)
def test_bad_settings_name_the_parameter(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_unknown_element_and_degenerate_cell_are_refused():
    sf = SymmetryFunctions.standard(["Cu"])
    with pytest.raises(ConfigError, match="Ag"):
        sf.compute(Atoms("CuAg", positions=[[0, 0, 0], [2.5, 0, 0]]))
    with pytest.raises(ConfigError, match="full-rank cell"):
        sf.compute(Atoms("Cu", positions=[[0, 0, 0]], pbc=True))
