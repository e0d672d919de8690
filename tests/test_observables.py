"""Observables: Gauss's law at the electrode, Ramo–Shockley current, dataset schema."""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.data import add_ensemble_statistics, validate_field_dataset
from surrodyn.kmc import KMCConfig, Simulation
from surrodyn.units import VACUUM_PERMITTIVITY_F_M


@pytest.fixture(scope="module")
def run():
    cfg = KMCConfig(
        nx=6,
        ny=6,
        nz=30,
        n_ions=80,
        permittivity=50.0,
        voltage_V=0.4,
        output_times_s={"kind": "log", "start": 1e-9, "stop": 3e-6, "num": 12},
        record_xz=True,
    )
    return cfg, Simulation(cfg, seed=9).run()


def test_electrode_charge_obeys_gauss_law(run):
    """sigma at z = L equals eps·(V - phi_last)/a, the discrete field between last layer and metal."""
    cfg, ds = run
    phi_last = ds["potential"].isel(z=-1).values
    gauss = VACUUM_PERMITTIVITY_F_M * cfg.permittivity * (ds["voltage"].values - phi_last) / cfg.spacing_m
    np.testing.assert_allclose(ds["electrode_charge"].values, gauss, rtol=1e-10, atol=1e-15)


def test_potential_hits_the_electrode_values_by_discrete_poisson(run):
    cfg, ds = run
    phi = ds["potential"].isel(replica=0).values
    v = ds["voltage"].values[:, None]
    full = np.concatenate([np.zeros((phi.shape[0], 1)), phi, v], axis=1)
    lap = full[:, :-2] - 2 * full[:, 1:-1] + full[:, 2:]
    rho = ds["occupancy"].isel(replica=0).values - cfg.filling  # charge per site in e
    np.testing.assert_allclose(-lap, cfg.coulomb_scale_V * rho, rtol=1e-9, atol=1e-12)


def test_integrated_current_is_minus_the_charge_change(run):
    cfg, ds = run
    t = ds["time"].values
    current = ds["current"].isel(replica=0).values
    q = ds["electrode_charge"].isel(replica=0).values
    dt = np.diff(t, prepend=0.0)
    transported = np.cumsum(current * dt)
    # the charge at t = 0 follows from the initial positions
    sim0 = Simulation(cfg, seed=9)
    from surrodyn.kmc.observables import electrode_charge_C_m2

    q0 = electrode_charge_C_m2(sim0.layer_counts(), cfg, 0.4)
    np.testing.assert_allclose(transported, -(q - q0), rtol=1e-9, atol=1e-12)


def test_schema_and_statistics(run):
    cfg, ds = run
    validate_field_dataset(ds)
    assert ds["time"].attrs["units"] == "s" and ds["z"].attrs["units"] == "m"
    assert ds["z"].values[0] == pytest.approx(cfg.spacing_m)
    assert ds.attrs["permittivity"] == 50.0 and "config_yaml" in ds.attrs
    assert ds["occupancy_xz"].sum(("x",)).values * cfg.ny == pytest.approx(ds["occupancy"].values * cfg.nx * cfg.ny)
    np.testing.assert_allclose(ds["occupancy"].sum("z").values * cfg.nx * cfg.ny, cfg.n_ions_resolved)
    both = add_ensemble_statistics(ds.isel(replica=[0, 0]).assign_coords(replica=[0, 1]))
    np.testing.assert_allclose(both["density_mean"].values, ds["density"].isel(replica=0).values)
    assert float(both["density_std"].max()) == 0.0
    assert both["density_quantile"].sizes["quantile"] == 5


def test_charging_crossing_time_of_an_exponential():
    from surrodyn.kmc.observables import charging_crossing_time_s

    t = np.geomspace(1e-9, 1e-3, 400)
    tau = 2e-6
    q = 5.0 + 3.0 * (1 - np.exp(-t / tau))
    assert charging_crossing_time_s(t, q, 0.5, final=8.0) == pytest.approx(tau * np.log(2), rel=1e-3)
    assert charging_crossing_time_s(t, q, 1 - np.exp(-1)) == pytest.approx(tau, rel=1e-3)
    assert np.isnan(charging_crossing_time_s(t[:5], q[:5], 0.9, final=8.0))
    with pytest.raises(ValueError, match="level"):
        charging_crossing_time_s(t, q, 1.5)
