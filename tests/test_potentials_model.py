"""HDNNP model, training and calculator: exact gradients, locality, persistence, NVE."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cluster import Icosahedron
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from _potentials_reference import torch_fingerprints
from surrodyn.errors import ConfigError
from surrodyn.potentials import (
    HDNNP,
    AtomicNetworks,
    FingerprintSet,
    SymmetryFunctions,
    TrainConfig,
    errors,
    errors_by_group,
    fit,
    refit_output_layer,
)


def labelled(atoms: Atoms) -> Atoms:
    """Copy of ``atoms`` with ASE-EMT energy and forces attached."""
    work = atoms.copy()
    work.calc = EMT()
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=work.get_potential_energy(), forces=work.get_forces())
    return out


def rattled(n: int, seed: int, sigma: float = 0.1, alloy: bool = False) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = Icosahedron("Cu", 2)
        if alloy:
            atoms.symbols[[0, 4, 9]] = "Ag"
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        frames.append(labelled(atoms))
    return frames


@pytest.fixture(scope="module")
def trained() -> tuple[HDNNP, list[Atoms]]:
    """A small potential trained briefly on rattled Cu13 (for gradient and persistence tests)."""
    torch.manual_seed(0)
    frames = rattled(24, seed=1)
    sf = SymmetryFunctions.standard(["Cu"], n_radial=8, zetas=(1.0, 4.0))
    res = fit(frames, sf, TrainConfig(hidden=(16, 16), max_epochs=150, patience_epochs=150, seed=0))
    return res.potential, frames


def _random_potential(elements: tuple[str, ...], seed: int = 0) -> HDNNP:
    torch.manual_seed(seed)
    sf = SymmetryFunctions.standard(list(elements), n_radial=6, zetas=(1.0, 2.0), radial_cutoff_A=5.0)
    net = AtomicNetworks(len(elements), sf.n_features, (12, 12), "tanh")
    net.set_scaling(
        torch.zeros(len(elements), sf.n_features),
        torch.full((len(elements), sf.n_features), 2.0),
        torch.tensor([-1.0, -2.0][: len(elements)]),
        0.5,
    )
    return HDNNP(sf, net)


def test_forces_are_minus_the_finite_difference_gradient_of_the_energy():
    pot = _random_potential(("Cu", "Ag"))
    atoms = rattled(1, seed=3, alloy=True)[0]
    atoms.calc = pot.calculator()
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-5), atol=1e-7)


def test_periodic_forces_and_stress_match_finite_differences():
    pot = _random_potential(("Cu",))
    atoms = bulk("Cu", "fcc", a=3.55, cubic=True) * (2, 1, 1)
    atoms.rattle(0.07, seed=4)
    strain = np.array([[0.0, 0.03, 0.0], [0.0, 0.0, -0.02], [0.01, 0.0, 0.0]])
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    atoms.calc = pot.calculator()
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-5), atol=1e-7)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-6), atol=1e-7)


def test_chain_rule_equals_autograd_through_an_independent_descriptor():
    pot = _random_potential(("Cu", "Ag"), seed=2)
    atoms = rattled(1, seed=5, alloy=True)[0]
    pos = torch.tensor(atoms.positions, requires_grad=True)
    species = torch.as_tensor(pot.descriptor.species_of(atoms))
    net = pot._double()
    energy = net(torch_fingerprints(pos, species, pot.descriptor), species).sum()
    (grad,) = torch.autograd.grad(energy, pos)
    out = pot.predict(atoms)
    assert out["energy"] == pytest.approx(float(energy.detach()), abs=1e-10)
    np.testing.assert_allclose(out["forces"], -grad.numpy(), atol=1e-10)


def test_energy_is_a_sum_of_local_terms():
    pot = _random_potential(("Cu", "Ag"))
    a, b = rattled(2, seed=6, alloy=True)
    b.positions += [40.0, 0.0, 0.0]  # far beyond every cutoff
    both = a + b
    pa, pb, pab = pot.predict(a), pot.predict(b), pot.predict(both)
    assert pab["energy"] == pytest.approx(pa["energy"] + pb["energy"], abs=1e-9)
    np.testing.assert_allclose(pab["forces"], np.vstack([pa["forces"], pb["forces"]]), atol=1e-12)
    np.testing.assert_allclose(pab["energies"].sum(), pab["energy"], atol=1e-10)
    np.testing.assert_allclose(pab["forces"].sum(0), 0.0, atol=1e-10)  # Newton's third law


def test_training_learns_emt_far_better_than_the_mean_force_baseline(trained):
    pot, _ = trained
    test = FingerprintSet(rattled(12, seed=99), pot.descriptor)
    m = errors(pot, test)
    rms_force = 1e3 * np.sqrt(np.mean(np.concatenate([f.numpy() for f in test.forces]) ** 2))
    e_spread = 1e3 * np.std(test.energy / test.n_atoms)
    assert m["force_rmse_meV_per_A"] < 0.25 * rms_force
    assert m["energy_rmse_meV_per_atom"] < 0.5 * e_spread


def test_errors_by_group_match_hand_computed_residuals(trained):
    pot, _ = trained
    frames = rattled(4, seed=98) + rattled(3, seed=97, sigma=0.2)
    data = FingerprintSet(frames, pot.descriptor)
    groups = ["a"] * 4 + [7] * 3  # any labels, compared as strings
    by = errors_by_group(pot, data, groups)
    assert list(by) == ["7", "a"]
    for name, rows in (("a", range(4)), ("7", range(4, 7))):
        dE = np.array([(pot.predict(frames[k])["energy"] - data.energy[k]) / len(frames[k]) for k in rows])
        dF = np.concatenate([pot.predict(frames[k])["forces"] - data.forces[k].numpy() for k in rows])
        m = by[name]
        assert m["n_structures"] == len(rows)
        # predict() works in float64 from fresh fingerprints, the set in float32: 1e-4 meV apart at most
        assert m["energy_bias_meV_per_atom"] == pytest.approx(1e3 * dE.mean(), abs=1e-4)
        assert m["energy_rmse_meV_per_atom"] == pytest.approx(1e3 * np.sqrt(np.mean(dE**2)), abs=1e-4)
        assert m["force_rmse_meV_per_A"] == pytest.approx(1e3 * np.sqrt(np.mean(dF**2)), abs=1e-3)
        assert m["force_mae_meV_per_A"] == pytest.approx(1e3 * np.mean(np.abs(dF)), abs=1e-3)
    # one group is the whole set
    whole = errors_by_group(pot, data, ["all"] * 7)["all"]
    assert {k: whole[k] for k in errors(pot, data)} == pytest.approx(errors(pot, data), rel=1e-12)
    with pytest.raises(ConfigError, match="3 group labels for 7 structures"):
        errors_by_group(pot, data, ["a", "b", "c"])


def test_save_load_round_trip_and_no_stale_inference_copy(tmp_path, trained):
    pot, frames = trained
    before = pot.predict(frames[0])
    pot.save(tmp_path / "model")
    back = HDNNP.load(tmp_path / "model")
    after = back.predict(frames[0])
    assert after["energy"] == before["energy"]
    np.testing.assert_array_equal(after["forces"], before["forces"])
    with torch.no_grad():  # training further in place must change what predict answers
        back.network.nets[0][0].bias.add_(0.1)
    assert back.predict(frames[0])["energy"] != before["energy"]


def test_load_refuses_what_is_not_a_potential(tmp_path):
    with pytest.raises(ConfigError, match="not a saved potential"):
        HDNNP.load(tmp_path)


def test_nve_conserves_energy_with_the_trained_potential(trained):
    pot, _ = trained
    atoms = Icosahedron("Cu", 2)
    atoms.calc = pot.calculator()
    thermalize_momenta(atoms, temperature_K=400, rng=np.random.default_rng(0))
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    epot, etot = [], []
    for _ in range(40):
        dyn.run(5)
        epot.append(atoms.get_potential_energy())
        etot.append(epot[-1] + atoms.get_kinetic_energy())
    # potential and kinetic energy exchange ~0.1 eV; their sum must stay put to O(dt^2)
    assert np.std(epot) > 0.02
    assert np.ptp(etot) < 0.02 * np.ptp(epot)


def test_calculator_refuses_stress_for_a_cluster(trained):
    from ase.calculators.calculator import PropertyNotImplementedError

    pot, frames = trained
    atoms = frames[0].copy()
    atoms.calc = pot.calculator()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": [0]}, "hidden"),
        ({"hidden": "x"}, "hidden"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"force_weight": 0, "energy_weight": 0}, "force_weight"),
        ({"min_validation": -1}, "min_validation"),
        ({"refit_output": "yes"}, "refit_output"),
    ],
)
def test_bad_training_settings_name_the_parameter(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_unlabelled_structures_are_refused_with_a_hint():
    with pytest.raises(ConfigError, match="LabelCache"):
        fit([Icosahedron("Cu", 2)])


@pytest.mark.parametrize(("min_validation", "held_out"), [(10, 0), (5, 6), (0, 6)])
def test_a_validation_set_is_held_out_only_when_it_is_big_enough(min_validation, held_out):
    frames = rattled(12, seed=3)
    sf = SymmetryFunctions.standard(["Cu"], n_radial=4, zetas=(1.0,))
    cfg = TrainConfig(hidden=(4,), max_epochs=3, validation_fraction=0.5, min_validation=min_validation)
    res = fit(frames, sf, cfg)
    assert res.potential.metadata["n_validation"] == held_out
    assert res.potential.metadata["n_train"] == 12 - held_out
    if held_out == 0:  # model selection then follows the training loss
        assert res.history["val_loss"] == res.history["train_loss"]


def test_the_cpu_budget_stops_training_after_the_epoch_that_exceeds_it():
    frames = rattled(6, seed=4)
    sf = SymmetryFunctions.standard(["Cu"], n_radial=4, zetas=(1.0,))
    res = fit(frames, sf, TrainConfig(hidden=(4,), max_epochs=50, max_time_s=1e-9))
    assert len(res.history["epoch"]) == 1


def _self_labelled(pot: HDNNP, n: int, seed: int) -> FingerprintSet:
    """Rattled Cu13 and Cu10Ag3 labelled by ``pot`` itself (float64), so an exact output layer exists.

    Two compositions, or only one combination of the two elements' biases would be determined.
    """
    frames = [a.copy() for a in rattled(n // 2, seed=seed, alloy=True) + rattled(n - n // 2, seed=seed + 1)]
    data = FingerprintSet(frames, pot.descriptor, labelled=False, dtype=torch.float64)
    energy, forces = pot.predict_set(data)
    return data.labelled_subset(range(n), energy, forces)


def _output_layers(pot: HDNNP) -> list[np.ndarray]:
    return [torch.cat([m[-1].weight.reshape(-1), m[-1].bias]).detach().double().numpy() for m in pot.network.nets]


def test_output_refit_recovers_the_exact_output_layer_of_a_two_element_network():
    pot = _random_potential(("Cu", "Ag"), seed=5)
    data = _self_labelled(pot, 6, seed=6)
    exact = _output_layers(pot)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():  # scramble both output layers; the hidden layers stay
        for m in pot.network.nets:
            m[-1].weight.add_(torch.randn(m[-1].weight.shape, generator=generator))
            m[-1].bias.add_(1.0)
    info = refit_output_layer(pot.network, data)
    assert info["updated"] and info["loss_before"] > 1e-4
    assert info["loss_after"] < 1e-12 * info["loss_before"]
    for got, want in zip(_output_layers(pot), exact, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_output_refit_keeps_the_layer_of_an_element_absent_from_the_data(trained):
    pot = _random_potential(("Cu", "Ag"), seed=8)
    before = _output_layers(pot)
    cu_only = FingerprintSet(rattled(4, seed=9), pot.descriptor)
    info = refit_output_layer(pot.network, cu_only)
    after = _output_layers(pot)
    assert info["updated"]
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])


def test_output_refit_lowers_the_training_loss_measured_independently(trained):
    pot, frames = trained
    data = FingerprintSet(frames, pot.descriptor)
    net = copy.deepcopy(pot.network)
    net.offset.add_(0.01)  # a per-atom energy offset Adam would leave; the bias can absorb it
    shifted = HDNNP(pot.descriptor, net)

    def loss(p: HDNNP) -> float:
        m = errors(p, data)
        return (m["energy_rmse_meV_per_atom"] ** 2 + m["force_rmse_meV_per_A"] ** 2) * 1e-6

    before, shifted_energy = loss(shifted), errors(shifted, data)["energy_rmse_meV_per_atom"]
    info = refit_output_layer(net, data)
    refitted = HDNNP(pot.descriptor, net)
    assert info["updated"]
    assert before == pytest.approx(info["loss_before"], rel=1e-3)
    assert loss(refitted) == pytest.approx(info["loss_after"], rel=1e-3)
    # no worse than the trained potential itself (float32 write-back aside): the loss's minimum
    assert loss(refitted) < loss(pot) * (1 + 1e-6)
    assert shifted_energy > 9.0  # the 10 meV/atom shift
    assert errors(refitted, data)["energy_rmse_meV_per_atom"] < 0.2 * shifted_energy


def test_fit_records_the_output_refit_and_can_skip_it():
    frames = rattled(12, seed=3)
    sf = SymmetryFunctions.standard(["Cu"], n_radial=4, zetas=(1.0,))
    on = fit(frames, sf, TrainConfig(hidden=(4,), max_epochs=5)).potential.metadata["output_refit"]
    assert on["loss_after"] <= on["loss_before"]
    assert (
        fit(frames, sf, TrainConfig(hidden=(4,), max_epochs=5, refit_output=False)).potential.metadata["output_refit"]
        is None
    )
    held = TrainConfig(hidden=(4,), max_epochs=5, validation_fraction=0.5, min_validation=2)
    refit = fit(frames, sf, held).potential.metadata["output_refit"]
    if refit["updated"]:
        assert refit["val_loss_after"] <= refit["val_loss_before"]
