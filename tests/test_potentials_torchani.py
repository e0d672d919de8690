"""Parity with TorchANI's AEV (the optional extra ``surrodyn[ani]``): same functions, same layout.

TorchANI computes ANI's radial and angular terms with its own neighbour list, triple enumeration
and species-pair blocks. Configured with the same constants, our G2 + ANI angular fingerprints must
equal its AEV feature for feature; its radial terms carry NeuroChem's factor 1/4.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron

from surrodyn.potentials import SymmetryFunctions

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
torchani = pytest.importorskip("torchani")
from torchani.aev import AEVComputer, ANIAngular, ANIRadial  # noqa: E402

ELEMENTS = ["Cu", "Ag"]
KW = {
    "radial_eta_per_A2": 4.0,
    "n_radial": 8,
    "radial_start_A": 1.5,
    "radial_cutoff_A": 5.5,
    "angular_eta_per_A2": 3.0,
    "zeta": 14.1,
    "n_angular_shifts": 3,
    "angular_start_A": 2.0,
    "angular_cutoff_A": 4.5,
    "n_sections": 4,
}


def _computer(sf: SymmetryFunctions) -> AEVComputer:
    """TorchANI's AEV computer with the constants of ``sf`` (built by :meth:`SymmetryFunctions.ani`)."""
    rad, ang = sf.radial, sf.angular
    return AEVComputer(
        ANIRadial(rad.eta_per_A2[0], list(rad.rs_A), rad.cutoff_A),
        ANIAngular(ang.eta_per_A2[0], ang.zeta[0], sorted(set(ang.rs_A)), sorted(set(ang.theta_s)), ang.cutoff_A),
        num_species=len(ELEMENTS),
        strategy="pyaev",
    ).double()


def _torchani_aev(atoms, sf: SymmetryFunctions) -> np.ndarray:
    computer = _computer(sf)
    species = torch.as_tensor(sf.species_of(atoms))[None]
    coords = torch.as_tensor(atoms.positions, dtype=torch.float64)[None]
    if atoms.pbc.any():
        cell = torch.as_tensor(np.asarray(atoms.cell), dtype=torch.float64)
        aev = computer(species, coords, cell=cell, pbc=torch.as_tensor(atoms.pbc))
    else:
        aev = computer(species, coords)
    aev = aev[0].numpy().copy()
    aev[:, : computer.radial_len] *= 4.0  # NeuroChem's 1/4 on the radial terms
    return aev


def _alloy_cluster():
    atoms = Icosahedron("Cu", 3)
    atoms.symbols[np.random.default_rng(0).choice(len(atoms), 15, replace=False)] = "Ag"
    atoms.rattle(0.1, seed=1)
    return atoms


def _alloy_crystal():
    atoms = bulk("Cu", "fcc", a=3.65, cubic=True) * (2, 2, 2)
    atoms.symbols[np.random.default_rng(2).choice(len(atoms), 8, replace=False)] = "Ag"
    atoms.rattle(0.08, seed=3)
    return atoms


@pytest.mark.parametrize("build", [_alloy_cluster, _alloy_crystal], ids=["cluster", "periodic"])
def test_ani_fingerprints_equal_torchani_aev(build):
    atoms = build()
    sf = SymmetryFunctions.ani(ELEMENTS, **KW)
    ours = sf.compute(atoms, derivatives=False).G
    ref = _torchani_aev(atoms, sf)
    assert ours.shape == ref.shape == (len(atoms), 8 * 2 + 3 * 4 * 3)
    assert np.abs(ref).max() > 0.5 and np.count_nonzero(ref[:, 16:]) > 0.5 * ref[:, 16:].size
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max(), rtol=0)
    # the rest (~1e-6) is TorchANI's constants, stored in float32: with those constants, 1e-10
    exact = sf.rounded_to_float32().compute(atoms, derivatives=False)
    np.testing.assert_allclose(exact.G, ref, atol=1e-10, rtol=1e-10)


def test_torchani_gradient_matches_our_pair_jacobian():
    atoms = _alloy_cluster()[:30]
    sf = SymmetryFunctions.ani(ELEMENTS, **KW).rounded_to_float32()
    fp = sf.compute(atoms)
    w = np.random.default_rng(5).normal(size=fp.G.shape)  # a random linear "energy" of the fingerprints
    # our force-like contraction: dE/dr_k = sum_p w[i_p] . dG_p (into j_p) minus the same into i_p
    grad = np.zeros((len(atoms), 3))
    contrib = np.einsum("pd,pdc->pc", w[fp.pair_i], fp.dG)
    np.add.at(grad, fp.pair_j, contrib)
    np.add.at(grad, fp.pair_i, -contrib)
    computer = _computer(sf)
    coords = torch.tensor(atoms.positions[None], dtype=torch.float64, requires_grad=True)
    aev = computer(torch.as_tensor(fp.species)[None], coords)[0]
    scale = torch.ones(aev.shape[1], dtype=torch.float64)
    scale[: computer.radial_len] = 4.0
    (aev * scale * torch.as_tensor(w)).sum().backward()
    np.testing.assert_allclose(grad, coords.grad[0].numpy(), rtol=1e-9, atol=1e-10 * np.abs(grad).max())
