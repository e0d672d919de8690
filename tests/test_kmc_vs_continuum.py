"""kMC against its continuum twin where mean field is exact (weak coupling).

Regime of shared/reference/kmc-physics.md: coupling Gamma_p <= 0.1, lambda_D >= 3a, L >= 10 lambda_D,
qV <= 10 kT, self-image off. Criteria: steady profile per layer within 0.05·max(n_MF, theta0) + 3 SE,
electrode charge within 5 %, charging transient within 5 % of the lattice MPNP solution.

Standard errors come from the spread of independent replicas (each replica's time average over
the steady window is one sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from surrodyn.continuum import coupling_parameter, debye_length_m, rc_time_s, solve_mpnp, steady_state
from surrodyn.kmc import KMCConfig, run_ensemble
from surrodyn.units import bjerrum_length_m, thermal_energy_eV

KT = thermal_energy_eV(300.0)
GAMMA = KMCConfig().hop_rate_Hz()  # 1/s at 300 K, nu0 = 1e13 Hz, Ea = 0.3 eV


def weak_config(lateral: int, n_out: int = 121, t_end_hops: float = 1200.0) -> KMCConfig:
    """The reference's worked example: l_B/a = 0.2, theta0 = 0.025, lambda_D = 4a, L = 51a, qV = 5 kT."""
    eps = bjerrum_length_m(1.0, 300.0) / 0.2e-9
    return KMCConfig(
        nx=lateral,
        ny=lateral,
        nz=50,
        spacing_nm=1.0,
        n_ions=lateral * lateral * 50 // 40,
        permittivity=eps,
        voltage_V=5 * KT,
        self_image=False,
        output_times_s=list(np.linspace(0.0, t_end_hops / GAMMA, n_out)),
    )


@dataclass
class Comparison:
    profile_margin: float  # max over layers of |dn| / (0.05 max(n_MF, theta0) + 3 SE); <= 1 passes
    profile_dev_se: np.ndarray  # |dn| / SE per layer
    charge_ratio: float  # kMC / MF steady electrode charge
    charge_se: float  # SE of that ratio
    transient_margin: float  # max over t of |dQ(t)| / (0.05 Q_inf + 3 SE(t))
    tau_ratio: float  # kMC / MF charging time
    tau_se: float  # SE of that ratio
    tau_mf_hops: float
    tau_rc_hops: float


def charging_time(t: np.ndarray, q: np.ndarray, q0: float, q_inf: float) -> float:
    """``int_0^T (q_inf - q(t)) / (q_inf - q0) dt``: the relaxation time of a charging curve."""
    return float(np.trapezoid((q_inf - q) / (q_inf - q0), t))


def compare(cfg: KMCConfig, replicas: int, seed: int, steady_from_hops: float = 600.0) -> Comparison:
    c0 = cfg.bulk_concentration_m3
    lam = debye_length_m(cfg.permittivity, 300.0, c0)
    a = cfg.spacing_m
    # the regime where mean field is exact
    assert coupling_parameter(cfg.permittivity, 300.0, c0) <= 0.1
    assert lam >= 3 * a and cfg.gap_m >= 10 * lam and cfg.voltage_V.values[0] <= 10 * KT and not cfg.self_image

    mf = solve_mpnp(cfg)
    ss = steady_state(cfg)
    kmc = run_ensemble(cfg, replicas=replicas, seed=seed, workers=2)
    t = kmc["time"].values
    steady = t * GAMMA >= steady_from_hops
    # the continuum has reached its steady state in the window
    assert np.abs(mf["occupancy"].values[steady] - ss.occupancy).max() < 1e-3 * ss.occupancy.max()

    occ = kmc["occupancy"].values[:, steady].mean(axis=1)  # (replica, z)
    mean, se = occ.mean(axis=0), occ.std(axis=0, ddof=1) / np.sqrt(replicas)
    dev = np.abs(mean - ss.occupancy)
    margin = float(np.max(dev / (0.05 * np.maximum(ss.occupancy, cfg.filling) + 3 * se)))

    q = kmc["electrode_charge"].values  # (replica, time)
    q_inf = ss.electrode_charge_C_m2
    q_rep = q[:, steady].mean(axis=1)
    charge_ratio = float(q_rep.mean() / q_inf)
    charge_se = float(q_rep.std(ddof=1) / np.sqrt(replicas) / q_inf)

    qm, qse = q.mean(axis=0), q.std(axis=0, ddof=1) / np.sqrt(replicas)
    q_mf = mf["electrode_charge"].values
    transient_margin = float(np.max(np.abs(qm - q_mf) / (0.05 * q_inf + 3 * qse)))

    # charging time of the ensemble-mean curve, from the exactly known initial charge (the bare
    # capacitor: a uniform random start induces none on average) to the curve's own plateau;
    # its standard error by jackknife over replicas
    window = t * GAMMA <= steady_from_hops
    q0 = q_mf[0]
    tau_mf = charging_time(t[window], q_mf[window], q0, q_inf)

    def tau_of(rows: np.ndarray) -> float:
        return charging_time(t[window], q[rows][:, window].mean(axis=0), q0, q[rows][:, steady].mean())

    everyone = np.arange(replicas)
    tau_kmc = tau_of(everyone)
    jack = np.array([tau_of(np.delete(everyone, r)) for r in range(replicas)])
    tau_se = float(np.sqrt((replicas - 1) / replicas * np.sum((jack - jack.mean()) ** 2)))
    return Comparison(
        profile_margin=margin,
        profile_dev_se=dev / se,
        charge_ratio=charge_ratio,
        charge_se=charge_se,
        transient_margin=transient_margin,
        tau_ratio=tau_kmc / tau_mf,
        tau_se=tau_se / tau_mf,
        tau_mf_hops=tau_mf * GAMMA,
        tau_rc_hops=rc_time_s(lam, cfg.gap_m, GAMMA * a**2) * GAMMA,
    )


def check(cmp: Comparison) -> None:
    assert cmp.profile_margin <= 1.0, cmp
    assert abs(cmp.charge_ratio - 1) <= 0.05, cmp
    assert cmp.transient_margin <= 1.0, cmp
    assert abs(cmp.tau_ratio - 1) <= 0.05 + 3 * cmp.tau_se, cmp


def test_weak_coupling_kmc_equals_mean_field():
    """10 x 10 x 50 lattice, 125 ions, 8 replicas to 900 hop times (about 15 s on 2 cores).

    At this size the charging time is only known to about 10 %; the slow test resolves it.
    """
    cmp = compare(weak_config(10, n_out=91, t_end_hops=900.0), replicas=8, seed=11, steady_from_hops=450.0)
    check(cmp)
    # the check has power: the charge is known to better than 2 %
    assert cmp.charge_se < 0.02


@pytest.mark.slow
def test_weak_coupling_worked_example():
    """The reference's worked example: 20 x 20 x 50 lattice, N = 500, 16 replicas."""
    cmp = compare(weak_config(20, n_out=91, t_end_hops=900.0), replicas=16, seed=5, steady_from_hops=450.0)
    check(cmp)
    # precise enough to see a 5 % error in the charge
    assert cmp.charge_se < 0.01
    # the charging time is set by the circuit: 0.67 of the bare thin-layer RC time here (the
    # lattice's one-spacing closest approach, lambda_D/L = 0.08 and the 5 kT nonlinearity shorten
    # it; see docs/continuum.md)
    assert 0.6 < cmp.tau_mf_hops / cmp.tau_rc_hops < 1.0


@pytest.mark.slow
def test_charging_time_within_5_percent():
    """The charging time to 5 %, resolved: 512 replicas of 10 x 10 x 50 over 300 hop times (5 min).

    The electrode charge of one replica fluctuates by about 13 % of its final value with a
    correlation time near the Debye time, so one replica knows the charging time only to about
    35 %; 512 bring the standard error to 1.5 %, and the criterion is then applied as it stands.
    Each replica's ``int_0^T (Q_inf - Q(t)) / (Q_inf - Q_0) dt`` (with the mean field's ``Q_0`` and
    ``Q_inf``, whose equality with the kMC is tested above) is linear in its charge curve, so the
    mean over replicas is the charging time of the ensemble-mean curve and its spread gives the SE.
    """
    cfg = weak_config(10, n_out=61, t_end_hops=300.0)
    replicas = 512
    kmc = run_ensemble(cfg, replicas=replicas, seed=3, workers=2)
    mf = solve_mpnp(cfg)
    q_inf = steady_state(cfg).electrode_charge_C_m2
    q_mf = mf["electrode_charge"].values
    t = kmc["time"].values
    span = q_inf - q_mf[0]
    tau_rep = np.trapezoid((q_inf - kmc["electrode_charge"].values) / span, t, axis=1)
    tau_mf = np.trapezoid((q_inf - q_mf) / span, t)
    ratio = tau_rep.mean() / tau_mf
    se = tau_rep.std(ddof=1) / np.sqrt(replicas) / tau_mf
    assert se <= 0.02, se  # resolved well enough for the 5 % criterion to mean something
    assert abs(ratio - 1) <= 0.05, (ratio, se)
