"""The NumPy reference kMC of the benchmarks runs the same model as the numba engine."""

import numpy as np
import pytest

from surrodyn.kmc import KMCConfig, Simulation
from surrodyn.kmc.numpy_reference import NumpyKMC

CASES = {
    "symmetric-coulomb-disorder": dict(disorder_eV=0.05),
    "metropolis-coulomb": dict(rate_rule="metropolis", voltage_V=-0.8),
    "symmetric-no-self-image": dict(self_image=False, temperature_K=400.0),
    "metropolis-no-coulomb": dict(rate_rule="metropolis", coulomb=False, disorder_eV=0.03),
}


def _config(**kw):
    # small, crowded lattice: blocked hops, electrode contact and periodic wrap all occur
    return KMCConfig(nx=6, ny=5, nz=12, n_ions=60, **kw)


def _assert_same_energies(sim: Simulation, ref: NumpyKMC) -> None:
    np.testing.assert_array_equal(ref.pos, sim.pos)
    de_sim, de_ref = sim.hop_energy_changes(), ref.hop_energy_changes()
    np.testing.assert_array_equal(np.isnan(de_ref), np.isnan(de_sim))
    assert np.isnan(de_sim).any() and not np.isnan(de_sim).all()
    np.testing.assert_allclose(de_ref, de_sim, rtol=0, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("case", CASES)
def test_same_initial_state_and_energies(case):
    cfg = _config(**CASES[case])
    sim, ref = Simulation(cfg, seed=7), NumpyKMC(cfg, seed=7)
    np.testing.assert_array_equal(ref.site_energy, sim.site_energy)
    _assert_same_energies(sim, ref)


@pytest.mark.parametrize("case", CASES)
def test_engine_state_after_events(case):
    """After engine events, a NumPy replica built from the engine's positions agrees, rates included."""
    cfg = _config(**CASES[case])
    sim = Simulation(cfg, seed=3)
    for _ in range(3):
        sim.step(300)
        ref = NumpyKMC.from_simulation(sim)
        _assert_same_energies(sim, ref)
        np.testing.assert_allclose(ref.rates, sim.rates.reshape(-1, 6), rtol=1e-10, atol=0)
        np.testing.assert_allclose(ref.total_rate, sim.ion_rate.sum(), rtol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_numpy_incremental_updates(case):
    """The NumPy replica's incremental potentials match an engine replica built fresh at its positions."""
    cfg = _config(**CASES[case])
    ref = NumpyKMC(cfg, seed=5)
    z0 = ref.pos[:, 2].mean()
    for _ in range(3):
        before = ref.events
        ref.step(300)
        assert ref.events == before + 300
        sim = Simulation(cfg, seed=5, positions=ref.pos)  # same seed: same disorder
        _assert_same_energies(sim, ref)
        assert ref.recompute() < 1e-12
    assert ref.time_s > 0
    assert ref.net_z_hops == pytest.approx((ref.pos[:, 2].mean() - z0) * ref.n_ions)


def test_event_rate_statistics():
    """Without interactions the mean waiting time is 1/R and hops follow the rates."""
    cfg = KMCConfig(nx=10, ny=10, nz=10, n_ions=5, coulomb=False, voltage_V=0.0)
    ref = NumpyKMC(cfg, seed=1)
    ref.step(4000)
    # dilute and field-free: R = 6 N k0 minus the few hops into the electrodes
    k0 = cfg.hop_rate_Hz()
    assert ref.time_s * 6 * 5 * k0 / ref.events == pytest.approx(1.0, rel=0.15)


def test_rejects_double_occupancy():
    cfg = _config()
    sim = Simulation(cfg, seed=0)
    pos = sim.pos.copy()
    pos[1] = pos[0]
    with pytest.raises(ValueError, match="share a site"):
        NumpyKMC(cfg, positions=pos, site_energy=sim.site_energy)


def test_direct_summation_reference_agrees_with_the_engine():
    from surrodyn.kmc import KMCConfig, Simulation
    from surrodyn.kmc.numpy_reference import DirectSumNumpyKMC

    cfg = KMCConfig(
        nx=5, ny=4, nz=8, n_ions=25, permittivity=5.0, disorder_eV=0.05, voltage_V=0.3, output_times_s=[1e-8]
    )
    sim = Simulation(cfg, seed=3)
    sim.step(40)
    ref = DirectSumNumpyKMC.from_simulation(sim, seed=1)
    ref.step(30)  # its own events, potentials summed again each time
    check = Simulation(cfg, seed=3, positions=ref.pos)
    both = ~np.isnan(check.hop_energy_changes())
    assert np.array_equal(both, ~np.isnan(ref.hop_energy_changes()))
    assert np.abs(check.hop_energy_changes()[both] - ref.hop_energy_changes()[both]).max() <= 1e-10
