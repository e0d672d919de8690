"""The quantum tier of the reference labels: GFN2-xTB through tblite (the ``xtb`` extra).

Checks that the xTB reference is a conservative force field as labelled (forces are the negative
energy gradient), that the label cache pays for each structure once, and that an active-learning
round runs end to end on a multi-element molecule with it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import molecule

from surrodyn.md import make_calculator
from surrodyn.potentials import ActiveLearningConfig, LabelCache, SymmetryFunctions, TrainConfig, active_learn

pytest.importorskip("tblite")


def _frames(n: int, seed: int) -> list:
    base = molecule("CH3CH2OH")
    out = []
    for k in range(n):
        a = base.copy()
        a.rattle(0.06, seed=seed + k)
        out.append(a)
    return out


def test_gfn2_forces_are_the_negative_energy_gradient():
    atoms = _frames(1, 3)[0]
    atoms.calc = make_calculator("gfn2-xtb")
    forces = atoms.get_forces()
    assert np.isfinite(atoms.get_potential_energy()) and np.abs(forces).max() > 0.1  # rattled: far from a minimum
    h = 1e-4
    for k, c in [(0, 0), (2, 1), (5, 2), (8, 0)]:  # a C, the O and two H
        e = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[k, c] += sign * h
            moved.calc = make_calculator("gfn2-xtb")
            e.append(moved.get_potential_energy())
        assert forces[k, c] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=2e-4)  # measured: <= 5e-5


def test_gfn1_and_gfn2_are_different_methods():
    atoms = _frames(1, 4)[0]
    energies = []
    for name in ("gfn1-xtb", "gfn2-xtb"):
        atoms.calc = make_calculator(name)
        energies.append(atoms.get_potential_energy())
    assert abs(energies[0] - energies[1]) > 1.0  # eV: the two parametrisations differ far beyond round-off


def test_label_cache_calls_xtb_once_per_structure(tmp_path):
    calls = []

    def factory():
        calls.append(1)
        return make_calculator("gfn2-xtb")

    frames = _frames(3, 10)
    cache = LabelCache(tmp_path / "labels", factory)
    energies, forces = cache.label(frames)
    again = LabelCache(tmp_path / "labels", factory).label(frames)  # a new process: read from disk
    np.testing.assert_array_equal(energies, again[0])
    assert len(calls) == 1 and len(list((tmp_path / "labels").iterdir())) == 3
    assert all(f.shape == (9, 3) for f in forces)


def test_active_learning_round_with_the_xtb_reference(tmp_path):
    pool, test = _frames(12, 100), _frames(4, 200)
    sf = SymmetryFunctions.standard(["C", "H", "O"], n_radial=4, zetas=(1.0,), angular_eta_per_A2=(0.01,))
    cfg = ActiveLearningConfig(
        strategy="autoencoder", seed=0, n_initial=4, batch_size=2, n_rounds=1, train=TrainConfig(max_epochs=5)
    )
    res = active_learn(pool, lambda: make_calculator("gfn2-xtb"), cfg, tmp_path / "run", test=test, descriptor=sf)
    rounds = json.loads((tmp_path / "run/state.json").read_text())["rounds"]
    assert [r["n_labels"] for r in rounds] == [4, 6]
    assert all(np.isfinite(v) for r in rounds for v in r["metrics"].values())
    assert res.cost_s > 0
