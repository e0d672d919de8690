"""Self-checks of the continuum twin: exact limits, conservation, equilibrium, analytic formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from surrodyn.continuum import (
    LatticeGrid,
    charging_times_s,
    coupling_parameter,
    debye_length_m,
    double_layer_function,
    mott_schottky_width_m,
    mpnp_rhs,
    rc_time_s,
    solve_mpnp,
    steady_state,
    voltage_split,
)
from surrodyn.data import validate_field_dataset
from surrodyn.errors import ConfigError
from surrodyn.kmc import KMCConfig, seed_case_config
from surrodyn.kmc.green import parallel_plate_green
from surrodyn.kmc.observables import electrode_charge_C_m2, planar_potential_V, space_charge_layers
from surrodyn.protocols import Schedule
from surrodyn.units import bjerrum_length_m, thermal_energy_eV

KT = thermal_energy_eV(300.0)


def small(**kw) -> KMCConfig:
    base = dict(nx=4, ny=4, nz=30, spacing_nm=1.0, concentration_cm3=3e19, permittivity=60.0, voltage_V=0.3)
    base.update(kw)
    return KMCConfig(**base)


def conserving_occupancy(m: int, filling: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.uniform(0.2, 1.8, m) * filling
    return n * (m * filling / n.sum())


# ----------------------------------------------------------------------------- grid
def test_same_grid_is_the_kmc_planar_electrostatics():
    c = seed_case_config()
    g = LatticeGrid.from_config(c)
    np.testing.assert_allclose(g.z_m, (np.arange(c.nz) + 1) * c.spacing_m, rtol=0, atol=1e-20)
    # Green's function: the kMC's planar parallel-plate Green's function in volts
    np.testing.assert_allclose(g.green_V, c.coulomb_scale_V * parallel_plate_green(c.nz), rtol=1e-11, atol=0)
    n = conserving_occupancy(c.nz, c.filling)
    counts = n * c.nx * c.ny
    np.testing.assert_allclose(g.potential_V(n, 0.5), planar_potential_V(counts, c, 0.5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.electrode_charge_C_m2(n, 0.5), electrode_charge_C_m2(counts, c, 0.5), rtol=1e-12)


@pytest.mark.parametrize("contact", ["lattice", "continuum"])
@pytest.mark.parametrize("refine", [1, 3])
def test_grid_poisson_and_gauss(contact, refine):
    """Discrete Poisson holds cell by cell, and the electrode charges balance the ions (Gauss)."""
    c = small()
    g = LatticeGrid.from_config(c, refine=refine, contact=contact)
    m = g.n_cells
    assert m == (c.nz + (contact == "continuum")) * refine
    assert g.z_m[0] == pytest.approx(g.wall_m + g.h_m / 2)
    assert g.z_m[-1] == pytest.approx(c.gap_m - g.wall_m - g.h_m / 2)
    n = conserving_occupancy(m, c.filling, seed=refine)
    v = 0.37
    phi = g.potential_V(n, v)
    eps = 8.8541878128e-12 * c.permittivity
    e = 1.602176634e-19
    d = g.wall_m + g.h_m / 2
    full = np.concatenate([[0.0], phi, [v]])
    dist = np.concatenate([[d], np.full(m - 1, g.h_m), [d]])
    field = np.diff(full) / dist  # dphi/dz at the faces
    rho_h = e * (n - c.filling) * g.h_m / c.spacing_m**3
    np.testing.assert_allclose(eps * np.diff(field), -rho_h, rtol=1e-9, atol=1e-12 * np.abs(rho_h).max())
    # the left electrode carries eps * E(0) = -sigma_left, the right the rest; total charge zero
    sigma_left = -eps * field[0]
    sigma_right = eps * field[-1]
    assert sigma_right == pytest.approx(g.electrode_charge_C_m2(n, v), rel=1e-9)
    assert sigma_left + sigma_right + rho_h.sum() == pytest.approx(0.0, abs=1e-12 * abs(sigma_right))


def test_jacobian_is_exact():
    c = small()
    g = LatticeGrid.from_config(c, refine=2)
    n = conserving_occupancy(g.n_cells, c.filling, seed=4)
    f0, jac = mpnp_rhs(n, g, 0.4, 310.0, 3.0e8, jacobian=True)
    assert np.allclose(f0, mpnp_rhs(n, g, 0.4, 310.0, 3.0e8))
    num = np.empty_like(jac)
    step = 1e-7 * c.filling
    for j in range(n.size):
        e = np.zeros(n.size)
        e[j] = step
        num[:, j] = (mpnp_rhs(n + e, g, 0.4, 310.0, 3.0e8) - mpnp_rhs(n - e, g, 0.4, 310.0, 3.0e8)) / (2 * step)
    assert np.abs(jac - num).max() <= 1e-6 * np.abs(jac).max()
    # every column sums to zero: the flux form conserves ions for any perturbation
    assert np.abs(jac.sum(axis=0)).max() <= 1e-10 * np.abs(jac).max()


def test_flux_vanishes_exactly_on_fermi_dirac_profiles():
    """Zero flux <=> n/(1-n) e^{q phi/kT} uniform: the steady states are Fermi–Dirac."""
    c = small()
    ss = steady_state(c)
    g = LatticeGrid.from_config(c)
    rate = c.hop_rate_Hz()
    dndt = mpnp_rhs(ss.occupancy, g, 0.3, 300.0, rate)
    assert np.abs(dndt).max() <= 1e-9 * rate * c.filling
    perturbed = ss.occupancy * (1 + 0.01 * np.sin(np.arange(c.nz)))
    assert np.abs(mpnp_rhs(perturbed, g, 0.3, 300.0, rate)).max() > 1e-4 * rate * c.filling


# ----------------------------------------------------------------------------- dynamics
def test_ion_number_conserved_through_protocol_changes():
    volts = Schedule((0.0, 2e-7, 6e-7), (0.0, 0.8, -0.4), "voltage_V")
    temps = Schedule((0.0, 4e-7), (300.0, 360.0), "temperature_K")
    c = small(
        voltage_V=volts, temperature_K=temps, output_times_s={"kind": "log", "start": 1e-10, "stop": 2e-6, "num": 80}
    )
    ds = solve_mpnp(c, refine=2)
    occ = ds["occupancy"].values
    total = occ.sum(axis=1)
    target = occ.shape[1] * c.filling
    assert np.abs(total / target - 1).max() <= 1e-8
    assert np.all(occ > 0) and np.all(occ < 1)
    # the protocol is recorded and the field responds to the voltage reversal
    np.testing.assert_allclose(ds["voltage"].values, volts(ds["time"].values))
    q = ds["electrode_charge"].values
    assert q[np.searchsorted(ds.time.values, 6e-7) - 1] > 0 > q[-1]


def test_dynamics_relax_to_the_direct_steady_state():
    for kw in ({}, {"refine": 2, "contact": "continuum"}):
        c = small(voltage_V=0.6, output_times_s=[1e-9, 1e-7, 1e-5, 1e-3])
        ds = solve_mpnp(c, **kw)
        ss = steady_state(c, **kw)
        final = ds["occupancy"].values[-1]
        assert np.abs(final - ss.occupancy).max() <= 1e-7 * ss.occupancy.max()
        assert ds["electrode_charge"].values[-1] == pytest.approx(ss.electrode_charge_C_m2, rel=1e-7)
        np.testing.assert_allclose(ds["potential"].values[-1], ss.potential_V, atol=1e-8)


def test_current_is_the_rate_of_change_of_the_induced_charge():
    c = small(output_times_s={"kind": "linear", "start": 0.0, "stop": 2e-7, "num": 41})
    ds = solve_mpnp(c)
    assert np.isnan(ds["current"].values[0])
    q = ds["electrode_charge"].values
    t = ds["time"].values
    # constant voltage: dQ/dt = -I (positive current carries cations towards z = L)
    np.testing.assert_allclose(-np.diff(q) / np.diff(t), ds["current"].values[1:], rtol=1e-10)
    assert np.all(ds["current"].values[1:] < 0)  # cations move to the cathode at z = 0


def test_output_follows_the_field_schema_and_matches_the_kmc_coordinates():
    from surrodyn.data import kmc_dataset
    from surrodyn.kmc import Simulation

    c = small(output_times_s=[0.0, 1e-8, 1e-7])
    ds = solve_mpnp(c)
    validate_field_dataset(ds)
    sim = Simulation(c, seed=1)
    kds = kmc_dataset([list(sim.irun())], c)
    assert ds.sizes["time"] == kds.sizes["time"] and ds.sizes["z"] == kds.sizes["z"]
    np.testing.assert_array_equal(ds["time"].values, kds["time"].values)
    np.testing.assert_allclose(ds["z"].values, kds["z"].values, rtol=0, atol=1e-20)
    for name in ("occupancy", "density", "potential", "electrode_charge", "current", "voltage", "temperature"):
        assert name in ds and ds[name].attrs["units"] == kds[name].attrs["units"]
    np.testing.assert_allclose(ds["occupancy"].values[0], c.filling)
    assert ds.attrs["permittivity"] == c.permittivity and "config_yaml" in ds.attrs


def test_disorder_is_ignored_with_a_warning():
    c = small(disorder_eV=0.05, output_times_s=[1e-8])
    with pytest.warns(UserWarning, match="disorder"):
        solve_mpnp(c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"refine": 0}, "refine"),
        ({"refine": 1.5}, "refine"),
        ({"contact": "wall"}, "contact"),
        ({"initial_occupancy": np.full(5, 0.01)}, "initial_occupancy"),
        ({"initial_occupancy": np.full(30, 1.2)}, "initial_occupancy"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        solve_mpnp(small(output_times_s=[1e-9]), **kwargs)


def test_coulomb_off_is_rejected():
    with pytest.raises(ConfigError, match="coulomb"):
        solve_mpnp(small(coulomb=False, output_times_s=[1e-9]))


# ----------------------------------------------------------------------------- steady state
@pytest.mark.parametrize("voltage", [0.0, 0.05, 0.5, 2.0, -1.0])
def test_steady_state_is_canonical_fermi_dirac(voltage):
    c = small(voltage_V=voltage)
    ss = steady_state(c)
    n, phi = ss.occupancy, ss.potential_V
    assert n.sum() == pytest.approx(c.nz * c.filling, rel=1e-12)
    # Fermi–Dirac: ln(n/(1-n)) + q phi/kT = mu/kT in every cell
    mu = np.log(n / (1 - n)) + phi / KT
    assert np.ptp(mu) <= 1e-9 * max(1.0, abs(voltage) / KT)
    assert mu.mean() == pytest.approx(ss.chemical_potential_eV / KT, abs=1e-9)
    # self-consistent: phi is the potential of the charges it creates
    g = LatticeGrid.from_config(c)
    np.testing.assert_allclose(phi, g.potential_V(n, voltage), atol=1e-11)
    assert ss.residual_V < 1e-10
    if voltage == 0.0:
        np.testing.assert_allclose(n, c.filling, rtol=1e-10)
    if voltage > 0:
        assert n[0] > c.filling > n[-1]


def test_steady_state_saturates_at_one_ion_per_site():
    # strong field, high filling: the accumulation layer fills its sites and widens (Bikerman)
    c = small(concentration_cm3=2e20, permittivity=30.0, voltage_V=3.0)
    ss = steady_state(c)
    assert 0.97 < ss.occupancy[0] < 1.0 and np.all(ss.occupancy < 1.0)
    # a Boltzmann (dilute) layer would put more than one ion per site at the contact
    assert c.filling * np.exp(-(ss.potential_V[0] - ss.potential_V[c.nz // 2]) / KT) > 1.0
    assert ss.occupancy.sum() == pytest.approx(c.nz * c.filling, rel=1e-12)


def test_steady_state_with_disorder_averages_fermi_dirac_over_the_gaussian():
    c = small(disorder_eV=0.06, voltage_V=0.2)
    ss = steady_state(c)
    mu = ss.chemical_potential_eV
    s = 0.06
    for k in (0, 7, 29):
        x = ss.potential_V[k]
        exact = quad(
            lambda e, x=x: np.exp(-0.5 * (e / s) ** 2) / (s * np.sqrt(2 * np.pi)) / (1 + np.exp((x + e - mu) / KT)),
            -12 * s,
            12 * s,
            epsabs=1e-15,
            epsrel=1e-13,
            limit=200,
        )[0]
        assert ss.occupancy[k] == pytest.approx(exact, rel=1e-9)
    # disorder deepens the accumulation (carriers sink into the low-energy tail of the sites)
    plain = steady_state(c, include_disorder=False)
    assert ss.occupancy.sum() == pytest.approx(plain.occupancy.sum(), rel=1e-12)


def test_steady_state_rejects_bad_state():
    with pytest.raises(ConfigError, match="temperature_K"):
        steady_state(small(), temperature_K=-3.0)


# ----------------------------------------------------------------------------- analytic limits
def semi_infinite(voltage: float, concentration_cm3: float, permittivity: float) -> KMCConfig:
    # 200 nm cell at a = 0.5 nm, > 25 Debye lengths wide
    return KMCConfig(
        nx=100,  # wide, so that rounding the ion number leaves c0 as asked
        ny=100,
        nz=399,
        spacing_nm=0.5,
        concentration_cm3=concentration_cm3,
        permittivity=permittivity,
        voltage_V=voltage,
        self_image=False,
    )


@pytest.mark.parametrize(
    ("voltage", "concentration_cm3", "permittivity"),
    [(0.5, 3e18, 134.0), (2.0, 3e18, 134.0), (0.5, 4e20, 3000.0)],
    ids=["dilute-0.5V", "dilute-2V", "saturated-theta0.05"],
)
def test_semi_infinite_voltage_split_and_depletion_width(voltage, concentration_cm3, permittivity):
    """The numerical continuum (ions reach the wall, fine grid) recovers the analytic double layers."""
    c = semi_infinite(voltage, concentration_cm3, permittivity)
    c0 = c.bulk_concentration_m3
    lam = debye_length_m(permittivity, 300.0, c0)
    assert c.gap_m > 25 * lam
    sp = voltage_split(voltage, permittivity, 300.0, c0, filling=c.filling)
    errors = {}
    for refine in (2, 4):
        ss = steady_state(c, refine=refine, contact="continuum")
        phi_bulk = ss.potential_V[np.argmin(np.abs(np.gradient(ss.potential_V)))]
        contact_occ = 1.0 / (1.0 + np.exp(-ss.chemical_potential_eV / KT))  # Fermi–Dirac at phi = 0
        layers = space_charge_layers(ss.occupancy, ss.z_m, c.filling, c.spacing_m, c.gap_m)
        errors[refine] = {
            "accumulation": phi_bulk / sp.accumulation_drop_V - 1,
            "depletion": (voltage - phi_bulk) / sp.depletion_drop_V - 1,
            "enrichment": contact_occ / c.filling / sp.contact_enrichment - 1,
            "charge": abs(ss.electrode_charge_C_m2) / sp.surface_charge_C_m2 - 1,
            "width": float(layers["depletion_width_m"]) / sp.depletion_width_m - 1,
        }
    for key, err in errors[4].items():
        limit = 0.01 if key != "enrichment" else 0.02
        assert abs(err) <= limit, (key, err)
    # discretisation error shrinks with the grid (second order)
    assert abs(errors[4]["enrichment"]) < abs(errors[2]["enrichment"])


def test_reference_worked_numbers():
    """The seed-case figures of shared/reference/kmc-physics.md (300 K, eps_r 100, 3e18 cm^-3)."""
    c0 = 3e24
    assert debye_length_m(100, 300, c0) == pytest.approx(6.9e-9, rel=0.01)
    assert bjerrum_length_m(100, 300) == pytest.approx(0.557e-9, rel=0.002)
    assert bjerrum_length_m(1, 298) / 1e-9 == pytest.approx(56.0, rel=0.002)
    # table: V, accumulation drop (mV), contact c/c0, depletion drop (mV), width/lambda_D (large-psi rows)
    table = [(0.05, 21, 2.3, 29, None), (0.2, 53, 7.7, 147, 3.1), (0.5, 77, 19.3, 423, 5.6), (1.0, 95, 38.7, 906, 8.3),
             (2.0, 112, 77.4, 1888, 12.0)]  # fmt: skip
    for v, acc, enrich, dep, width in table:
        sp = voltage_split(v, 100, 300, c0)
        assert sp.accumulation_drop_V * 1e3 == pytest.approx(acc, abs=1.0)
        assert sp.depletion_drop_V * 1e3 == pytest.approx(dep, abs=1.0)
        assert sp.contact_enrichment == pytest.approx(enrich, abs=0.051)  # table rounding
        assert sp.accumulation_drop_V + sp.depletion_drop_V == pytest.approx(v, rel=1e-12)
        if width is not None:  # the table uses Mott–Schottky with the kT correction, valid for psi >> 1
            assert sp.depletion_width_m / sp.debye_length_m == pytest.approx(width, rel=0.015)
            ms = mott_schottky_width_m(sp.depletion_drop_V - KT, 100, c0)
            assert sp.depletion_width_m == pytest.approx(ms, rel=0.01 + 1 / (sp.depletion_drop_V / KT))
    # tau_RC = 3.45e-16 m^2 / D at the seed case (L = 100 nm)
    assert rc_time_s(debye_length_m(100, 300, c0), 100e-9, 1.0) == pytest.approx(3.45e-16, rel=0.01)
    assert coupling_parameter(100, 300, c0) == pytest.approx(0.129, rel=0.01)


def test_double_layer_function_limits():
    psi = np.linspace(-20, 20, 81)
    f = double_layer_function(psi)
    assert np.all(f >= 0) and double_layer_function(0.0) == 0.0
    # lattice form tends to the dilute form as theta0 e^{-psi} -> 0, and is smaller on the crowded side
    mild = psi > -10
    np.testing.assert_allclose(double_layer_function(psi[mild], 1e-12), f[mild], rtol=1e-7, atol=1e-12)
    assert np.isfinite(double_layer_function(-1000.0, 0.1)) and double_layer_function(-1000.0, 0.1) > 0
    g = double_layer_function(psi, 0.1)
    assert np.all(g[psi < -1] < f[psi < -1])
    with pytest.raises(ConfigError, match="filling"):
        double_layer_function(1.0, 1.0)


def test_voltage_split_is_symmetric_in_sign_and_zero_at_zero():
    a, b = voltage_split(0.7, 100, 300, 3e24), voltage_split(-0.7, 100, 300, 3e24)
    assert a == b
    zero = voltage_split(0.0, 100, 300, 3e24)
    assert zero.accumulation_drop_V == 0.0 and zero.contact_enrichment == 1.0


def test_rc_charging_time_is_recovered_for_thin_layers():
    """Small voltage, ions reaching the walls: the charging time tends to lambda_D L / (2 D)."""
    ratios = []
    for nz in (199, 399):
        base = semi_infinite(0.1 * KT, 3e18, 100.0).replace(nz=nz)
        lam = debye_length_m(100.0, 300.0, base.bulk_concentration_m3)
        diff = base.hop_rate_Hz() * base.spacing_m**2
        tau = rc_time_s(lam, base.gap_m, diff)
        times = charging_times_s(lam, base.gap_m, diff)
        assert times["debye"] < times["rc"] < times["diffusion"]
        ds = solve_mpnp(base.replace(output_times_s=list(np.linspace(0, 12 * tau, 1201))), contact="continuum")
        q = ds["electrode_charge"].values
        remaining = 1 - (q - q[0]) / (q[-1] - q[0])
        ratios.append(np.trapezoid(remaining, ds["time"].values) / tau)
    # finite-width correction ~ lambda_D / L: 7 % at L = 14 lambda_D, 4 % at 29 lambda_D
    assert 0.9 < ratios[0] < ratios[1] < 1.0
    assert ratios[1] == pytest.approx(1.0, abs=0.05)
