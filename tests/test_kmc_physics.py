"""Statistical validation of the kMC engine against exact results (Coulomb off).

Each check compares seeded, independent replicas with a reference that has no free parameter:

* free relaxation of the symmetric exclusion process: the mean layer occupancy obeys the discrete
  diffusion equation with reflecting walls exactly (its one-point function is linear);
* equilibrium with field and disorder: Fermi–Dirac occupancy of the site energies (grand-canonical,
  and the exact canonical one of N ions, which differs by O(1/N));
* a single ion in a uniform field: exact drift and diffusion of the biased continuous-time random
  walk for both rate rules, and the Arrhenius law of the lateral diffusion coefficient.

Every test has a fast default version and a more precise ``slow`` one (``pytest -m slow``).
Standard errors (SE) come from the spread of independent replicas or of independent time blocks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import brentq

from surrodyn.kmc import KMCConfig, Simulation
from surrodyn.units import thermal_energy_eV

# Boltzmann constant in eV/K from the exact SI values of k_B and e, independent of surrodyn.units: a
# wrong unit conversion in the engine then shows up as a wrong field F, a wrong Γ(T) or a wrong Ea.
K_B_EV = 1.380649e-23 / 1.602176634e-19
T_K = 300.0
KT = K_B_EV * T_K


def _hop_rate(temp_k: float, ea: float = 0.3, nu0: float = 1e13) -> float:
    """Bare hop rate Γ = ν0 exp(-Ea/kT), computed here rather than by the engine."""
    return nu0 * math.exp(-ea / (K_B_EV * temp_k))


SIZES = ["fast", pytest.param("slow", marks=pytest.mark.slow)]


def _config(**kw) -> KMCConfig:
    base = dict(spacing_nm=1.0, coulomb=False, self_image=False, temperature_K=T_K, output_times_s=[1e-6])
    base.update(kw)
    return KMCConfig(**base)


def test_kt_and_bare_rate_match_the_engine():
    for temp in (250.0, 300.0, 450.0):
        assert math.isclose(thermal_energy_eV(temp), K_B_EV * temp, rel_tol=1e-9)
        cfg = _config(nx=3, ny=3, nz=4, n_ions=1, temperature_K=temp, activation_energy_eV=0.3)
        assert math.isclose(cfg.hop_rate_Hz(), _hop_rate(temp), rel_tol=1e-9)


# ---------------------------------------------------------------------------------------------
# 3. free relaxation: mean layer occupancy follows the discrete diffusion equation exactly
# ---------------------------------------------------------------------------------------------
RELAX_NX, RELAX_NZ, RELAX_FULL = 6, 20, 6  # 6×6×20 lattice, first 6 layers full: θ = 0.3
RELAX_TIMES_G = {"fast": (1.0, 4.0, 16.0, 64.0), "slow": (0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)}
RELAX_REPLICAS = {"fast": 40, "slow": 400}


def _relaxation_config(rule: str) -> KMCConfig:
    n = RELAX_NX * RELAX_NX * RELAX_FULL
    return _config(nx=RELAX_NX, ny=RELAX_NX, nz=RELAX_NZ, n_ions=n, voltage_V=0.0, rate_rule=rule)


def _packed_positions() -> np.ndarray:
    """Ions fill layers 0, 1, ... completely, in order."""
    return np.array(
        [(x, y, z) for z in range(RELAX_FULL) for x in range(RELAX_NX) for y in range(RELAX_NX)], dtype=np.int64
    )


def _relaxation_runs(rule: str, seeds, times_s) -> tuple[np.ndarray, list[np.ndarray]]:
    """Layer occupancy per site, shape (replicas, times, nz), and the final positions."""
    cfg = _relaxation_config(rule)
    area = cfg.nx * cfg.ny
    occ = np.empty((len(seeds), len(times_s), cfg.nz))
    final = []
    for r, seed in enumerate(seeds):
        sim = Simulation(cfg, seed=int(seed), positions=_packed_positions())
        for k, frame in enumerate(sim.irun([float(t) for t in times_s])):
            assert frame.layer_counts.sum() == cfg.n_ions_resolved
            occ[r, k] = frame.layer_counts / area
        final.append(sim.pos.copy())
    return occ, final


def _neumann_diffusion(n0: np.ndarray, rate: float, times_s) -> np.ndarray:
    """exp(Γ t L) n0 with L the 1D lattice Laplacian with zero-flux walls."""
    nz = n0.size
    lap = np.diag(np.full(nz - 1, 1.0), 1) + np.diag(np.full(nz - 1, 1.0), -1) - 2.0 * np.eye(nz)
    lap[0, 0] = lap[-1, -1] = -1.0
    return np.array([expm(rate * t * lap) @ n0 for t in times_s])


def _zscores(occ: np.ndarray, ref: np.ndarray, area: int) -> np.ndarray:
    """(mean - ref) / SE per (time, layer).

    The count quantum 1/(A·R) of the pooled mean is added in quadrature to the SE, so that a layer
    that no replica has changed yet (zero sample variance, early times, deep layers) is not divided
    by zero; elsewhere it changes the SE by < 0.5 %.
    """
    reps = occ.shape[0]
    se = np.hypot(occ.std(axis=0, ddof=1) / math.sqrt(reps), 1.0 / (area * reps))
    return (occ.mean(axis=0) - ref) / se


@pytest.mark.parametrize("size", SIZES)
def test_free_relaxation_follows_discrete_diffusion(size):
    reps = RELAX_REPLICAS[size]
    cfg = _relaxation_config("symmetric")
    gamma = _hop_rate(T_K)
    assert math.isclose(cfg.hop_rate_Hz(), gamma, rel_tol=1e-12)
    times = np.asarray(RELAX_TIMES_G[size]) / gamma
    n0 = np.zeros(cfg.nz)
    n0[:RELAX_FULL] = 1.0
    ref = _neumann_diffusion(n0, gamma, times)

    results = {}
    for rule, seed0 in (("symmetric", 10_000), ("metropolis", 20_000)):
        occ, _ = _relaxation_runs(rule, np.arange(seed0, seed0 + reps), times)
        z = _zscores(occ, ref, cfg.nx * cfg.ny)
        results[rule] = occ
        print(f"{rule}: max |dev| = {np.abs(z).max():.2f} SE over {z.size} (time, layer) values")
        assert np.abs(z).max() <= 4.0, f"{rule}: layer occupancy off the diffusion equation, z = {z.round(1)}"

    # the two independent ensembles agree with each other
    a, b = results["symmetric"], results["metropolis"]
    se = np.sqrt(a.var(axis=0, ddof=1) / reps + b.var(axis=0, ddof=1) / reps + 2.0 / (cfg.nx * cfg.ny * reps) ** 2)
    dz = (a.mean(axis=0) - b.mean(axis=0)) / se
    print(f"symmetric vs metropolis: max |dev| = {np.abs(dz).max():.2f} SE")
    assert np.abs(dz).max() <= 4.0

    # the test has power: a hop rate off by a factor 2 either way is rejected by far
    for wrong in (0.5, 2.0):
        zw = _zscores(a, _neumann_diffusion(n0, wrong * gamma, times), cfg.nx * cfg.ny)
        assert np.abs(zw).max() > 8.0, f"rate {wrong}·Γ not rejected (max z {np.abs(zw).max():.1f})"


def test_rate_rules_identical_without_energy_change():
    """With ΔE = 0 both rules give every hop the rate Γ: the same seed gives the same trajectory."""
    times = np.array([2.0, 20.0]) / _hop_rate(T_K)
    seeds = [31, 32, 33]
    occ_s, pos_s = _relaxation_runs("symmetric", seeds, times)
    occ_m, pos_m = _relaxation_runs("metropolis", seeds, times)
    np.testing.assert_array_equal(occ_s, occ_m)
    for p, q in zip(pos_s, pos_m, strict=True):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------------------------------
# 4. equilibrium with field and disorder: Fermi–Dirac occupancy
# ---------------------------------------------------------------------------------------------
EQ_NX, EQ_NZ, EQ_N = 5, 8, 100  # 200 sites, θ = 0.5
EQ_SIGMA = KT  # σ = 1 kT
EQ_VOLTAGE = 2.5 * KT * (EQ_NZ + 1) / (EQ_NZ - 1)  # field drop from layer 0 to layer nz-1 = 2.5 kT
EQ_RUN = {  # replicas, equilibration, averaging time and sampling interval (units of 1/Γ)
    "fast": dict(replicas=32, t_eq=200.0, t_run=850.0, dt=2.0),
    "slow": dict(replicas=96, t_eq=200.0, t_run=5000.0, dt=2.0),
}


def _fermi_dirac(energy: np.ndarray, n: int, kt: float) -> np.ndarray:
    """Grand-canonical occupancy with μ fixed by Σ p_s = N."""

    def excess(mu):
        return np.sum(1.0 / (1.0 + np.exp((energy - mu) / kt))) - n

    mu = brentq(excess, energy.min() - 60 * kt, energy.max() + 60 * kt, xtol=1e-15, rtol=1e-15)
    return 1.0 / (1.0 + np.exp((energy - mu) / kt))


def _canonical_occupancy(energy: np.ndarray, n: int, kt: float) -> np.ndarray:
    """Exact occupancy of non-interacting fermions at fixed N: x_s e_{N-1}(x∖s) / e_N(x), x = e^{-E/kT}.

    The elementary symmetric polynomials of all sites but s are built for every s at once; each
    row is rescaled as it grows (only ratios matter).
    """
    x = np.exp(-(energy - energy.mean()) / kt)
    m = x.size
    poly = np.zeros((m, n + 1))
    poly[:, 0] = 1.0
    for j in range(m):
        grown = poly.copy()
        grown[:, 1:] += x[j] * poly[:, :-1]
        grown[j] = poly[j]
        poly = grown / grown.max(axis=1, keepdims=True)
    num = x * poly[:, n - 1]
    return num / (poly[:, n] + num)


def _layer_mean(per_site: np.ndarray, nz: int) -> np.ndarray:
    return per_site.reshape(-1, nz).mean(axis=0)


@pytest.mark.parametrize("size", SIZES)
def test_equilibrium_is_fermi_dirac(size):
    run = EQ_RUN[size]
    cfg = _config(nx=EQ_NX, ny=EQ_NX, nz=EQ_NZ, n_ions=EQ_N, voltage_V=EQ_VOLTAGE, disorder_eV=EQ_SIGMA)
    nz, area = cfg.nz, cfg.nx * cfg.ny
    gamma = _hop_rate(T_K)
    field = EQ_VOLTAGE * (np.tile(np.arange(nz), cfg.nx * cfg.ny) + 1) / (nz + 1)
    n_samples = round(run["t_run"] / run["dt"])
    reps = run["replicas"]
    kmc, gc, can, flipped, disorder = (np.empty((reps, nz)) for _ in range(5))
    all_disorder = []
    for r in range(reps):
        sim = Simulation(cfg, seed=40_000 + r)
        assert sim.disorder is not None
        np.testing.assert_array_equal(sim.site_energy, sim.disorder)  # Coulomb off: static part = disorder
        all_disorder.append(sim.disorder)
        t0 = run["t_eq"] / gamma
        sim.advance_to(t0)
        acc = np.zeros(nz)
        for k in range(1, n_samples + 1):
            sim.advance_to(t0 + k * run["dt"] / gamma)
            acc += sim.layer_counts()
        kmc[r] = acc / (n_samples * area)
        energy = sim.disorder + field
        gc[r] = _layer_mean(_fermi_dirac(energy, EQ_N, KT), nz)
        can[r] = _layer_mean(_canonical_occupancy(energy, EQ_N, KT), nz)
        flipped[r] = _layer_mean(_fermi_dirac(sim.disorder - field, EQ_N, KT), nz)
        disorder[r] = _layer_mean(sim.disorder, nz)

    # the disorder has the requested standard deviation (4 SE of a sample std of n normals)
    pooled = np.concatenate(all_disorder)
    assert abs(pooled.std() / EQ_SIGMA - 1.0) <= 4.0 / math.sqrt(2 * pooled.size)

    def compare(ref):
        d = kmc - ref  # per replica: the disorder (and so the reference) differs between replicas
        mean = d.mean(axis=0)
        se = d.std(axis=0, ddof=1) / math.sqrt(reps)
        return mean, se

    mean_c, se_c = compare(can)
    mean_g, se_g = compare(gc)
    bias = np.abs((can - gc).mean(axis=0))  # the O(1/N) canonical correction
    print("kMC layer occupancy  ", kmc.mean(axis=0).round(4))
    print("grand-canonical FD   ", gc.mean(axis=0).round(4))
    print(f"canonical - GC (max)  {bias.max():.5f}")
    print(
        f"vs canonical: max |diff| {np.abs(mean_c).max():.5f}, max {np.abs(mean_c / se_c).max():.2f} SE, "
        f"SE {se_c.max():.5f}"
    )
    print(f"vs GC FD:     max |diff| {np.abs(mean_g).max():.5f}, max {np.abs(mean_g / se_g).max():.2f} SE")
    # exact finite-N reference: strict
    assert np.all(np.abs(mean_c) <= 3.0 * se_c), (mean_c / se_c).round(2)
    assert np.all(np.abs(mean_c) <= 0.005)
    # grand-canonical FD: the same, allowing for its known O(1/N) offset from the canonical value
    assert np.all(np.abs(mean_g) <= 3.0 * se_g + bias), (mean_g / se_g).round(2)
    assert np.all(np.abs(mean_g) <= 0.005)
    # the profile is far from flat and the wrong field sign is rejected by far
    assert np.ptp(gc.mean(axis=0)) > 0.3
    assert np.abs((kmc - flipped).mean(axis=0) / se_g).max() > 20.0


# ---------------------------------------------------------------------------------------------
# 5. a single ion: drift and diffusion in a uniform field, Arrhenius law
# ---------------------------------------------------------------------------------------------
ION_NX = 3
DRIFT_F = 2.0  # F = qEa/kT
DRIFT_NZ = 4001
DRIFT_TAU_G = 10.0  # block length in 1/Γ
DRIFT_BLOCKS = {"symmetric": 150, "metropolis": 400}  # per replica, so that the ion never nears z = 0
DRIFT_REPLICAS = {
    "fast": {"symmetric": 80, "metropolis": 30},
    "slow": {"symmetric": 800, "metropolis": 300},
}
WALL_MARGIN = 40  # block ends must stay this many layers away from both walls


def _single_ion_increments(cfg: KMCConfig, z0: int, tau_s: float, blocks: int, seeds) -> np.ndarray:
    """sim.disp increments over consecutive blocks of length tau, shape (replicas * blocks, 3)."""
    inc = np.empty((len(seeds), blocks, 3), dtype=np.int64)
    for r, seed in enumerate(seeds):
        sim = Simulation(cfg, seed=int(seed), positions=[[0, 0, z0]])
        prev = sim.disp[0].copy()
        zmin = zmax = z0
        for b in range(blocks):
            sim.advance_to((b + 1) * tau_s)
            now = sim.disp[0].copy()
            inc[r, b] = now - prev
            prev = now
            zmin, zmax = min(zmin, sim.pos[0, 2]), max(zmax, sim.pos[0, 2])
        assert zmin >= WALL_MARGIN and zmax <= cfg.nz - 1 - WALL_MARGIN, "the ion came near a wall"
        assert np.array_equal(sim.disp[0, 2], sim.pos[0, 2] - z0)
    return inc.reshape(-1, 3).astype(float)


def _mean_and_var(x: np.ndarray) -> tuple[float, float, float, float]:
    """Sample mean, its SE, sample variance and its SE (from the fourth central moment)."""
    n = x.size
    m = x.mean()
    d = x - m
    s2 = float(d @ d) / (n - 1)
    m4 = float(np.mean(d**4))
    return m, math.sqrt(s2 / n), s2, math.sqrt(max(m4 - s2 * s2, 0.0) / n)


def _transport(inc: np.ndarray, tau_g: float) -> dict[str, tuple[float, float]]:
    """Velocities (a Γ) and diffusion coefficients (a² Γ) with SEs from iid block increments."""
    out = {}
    for k, ax in enumerate("xyz"):
        m, se_m, s2, se_s2 = _mean_and_var(inc[:, k])
        out[f"v{ax}"] = (m / tau_g, se_m / tau_g)
        out[f"D{ax}{ax}"] = (s2 / (2 * tau_g), se_s2 / (2 * tau_g))
    return out


def _drift_theory(rule: str, f: float) -> dict[str, float]:
    """Exact single-ion transport in units of a, Γ; V > 0 drives the cation towards z = 0 (-z)."""
    if rule == "symmetric":
        vz, dzz = -2.0 * math.sinh(f / 2), math.cosh(f / 2)
    else:
        vz, dzz = -(1.0 - math.exp(-f)), (1.0 + math.exp(-f)) / 2
    return {"vx": 0.0, "vy": 0.0, "vz": vz, "Dxx": 1.0, "Dyy": 1.0, "Dzz": dzz}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("rule", ["symmetric", "metropolis"])
def test_single_ion_drift_and_diffusion(rule, size):
    nz = DRIFT_NZ
    voltage = DRIFT_F * KT * (nz + 1)  # F = V / ((nz+1) kT)
    cfg = _config(nx=ION_NX, ny=ION_NX, nz=nz, n_ions=1, voltage_V=voltage, rate_rule=rule)
    gamma = _hop_rate(T_K)
    seed0 = 50_000 if rule == "symmetric" else 60_000
    seeds = np.arange(seed0, seed0 + DRIFT_REPLICAS[size][rule])
    inc = _single_ion_increments(cfg, nz - 1 - WALL_MARGIN, DRIFT_TAU_G / gamma, DRIFT_BLOCKS[rule], seeds)
    got = _transport(inc, DRIFT_TAU_G)
    want = _drift_theory(rule, DRIFT_F)
    print(f"{rule}, F = {DRIFT_F}, {inc.shape[0]} blocks of {DRIFT_TAU_G}/Γ")
    for key, (val, se) in got.items():
        ratio = f"ratio {val / want[key]:.4f}" if want[key] else ""
        print(f"  {key}: {val:+.5f} ± {se:.5f} (theory {want[key]:+.5f}) {(val - want[key]) / se:+.2f} SE {ratio}")
    for key, (val, se) in got.items():
        assert abs(val - want[key]) <= 4.0 * se, f"{key} = {val} ± {se}, expected {want[key]}"
    # power: the other rule's law and the linear response v = aΓF are rejected
    other = _drift_theory("metropolis" if rule == "symmetric" else "symmetric", DRIFT_F)
    for key in ("vz", "Dzz"):
        val, se = got[key]
        assert abs(val - other[key]) > 8.0 * se
    val, se = got["vz"]
    assert abs(val + DRIFT_F) > 8.0 * se  # linear response v = -aΓF (both rules)


ARRH_TEMPS_K = (250.0, 300.0, 350.0, 400.0, 450.0)
ARRH_NZ = 2001
ARRH_BLOCKS = 1000  # of 10/Γ per replica: the lateral spread along z stays ~140 layers ≪ 1000
ARRH_REPLICAS = {"fast": 10, "slow": 100}


@pytest.mark.parametrize("size", SIZES)
def test_lateral_diffusion_arrhenius(size):
    """D_xx = D_yy = a² ν0 e^{-Ea/kT}: fit ln D against 1/kT and recover Ea (and ν0)."""
    ea = 0.3
    betas, ln_d, se_ln_d = [], [], []
    for i, temp in enumerate(ARRH_TEMPS_K):
        cfg = _config(
            nx=ION_NX,
            ny=ION_NX,
            nz=ARRH_NZ,
            n_ions=1,
            voltage_V=0.0,
            temperature_K=temp,
            activation_energy_eV=ea,
            rate_rule="symmetric",
        )
        gamma = _hop_rate(temp, ea)
        tau_s = DRIFT_TAU_G / gamma
        seeds = 70_000 + 1000 * i + np.arange(ARRH_REPLICAS[size])
        inc = _single_ion_increments(cfg, ARRH_NZ // 2, tau_s, ARRH_BLOCKS, seeds)
        # x and y increments are independent (Poisson thinning): average the two estimates
        _, _, sx, se_sx = _mean_and_var(inc[:, 0])
        _, _, sy, se_sy = _mean_and_var(inc[:, 1])
        d = (sx + sy) / (4 * tau_s)  # a²/s with a = 1
        se_d = math.hypot(se_sx, se_sy) / (4 * tau_s)
        print(
            f"T = {temp:5.1f} K: D_xx/(a²Γ) = {sx / (2 * tau_s * gamma):.5f}, "
            f"D_yy/(a²Γ) = {sy / (2 * tau_s * gamma):.5f}, mean {d / gamma:.5f} ± {se_d / gamma:.5f}"
        )
        assert abs(sx / (2 * tau_s * gamma) - 1.0) <= 4.0 * se_sx / (2 * tau_s * gamma)
        assert abs(sy / (2 * tau_s * gamma) - 1.0) <= 4.0 * se_sy / (2 * tau_s * gamma)
        betas.append(1.0 / (K_B_EV * temp))
        ln_d.append(math.log(d))
        se_ln_d.append(se_d / d)

    # weighted least squares ln D = ln ν0 - Ea β
    x, y, w = np.array(betas), np.array(ln_d), 1.0 / np.array(se_ln_d) ** 2
    design = np.stack([np.ones_like(x), -x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    ln_nu0, ea_fit = cov @ design.T @ (w * y)
    se_ea, se_ln_nu0 = math.sqrt(cov[1, 1]), math.sqrt(cov[0, 0])
    chi2 = float(np.sum(w * (y - design @ np.array([ln_nu0, ea_fit])) ** 2))
    nu0 = cfg.attempt_frequency_Hz
    print(
        f"Ea = {ea_fit:.5f} ± {se_ea:.5f} eV (rel. error {ea_fit / ea - 1:+.4%}), "
        f"ν0 = {math.exp(ln_nu0):.4e} Hz (ln ratio {ln_nu0 - math.log(nu0):+.4f} ± {se_ln_nu0:.4f}), "
        f"chi2 = {chi2:.2f} / {len(x) - 2} dof"
    )
    assert abs(ea_fit - ea) <= 4.0 * se_ea
    assert abs(ea_fit - ea) <= 0.01 * ea
    assert abs(ln_nu0 - math.log(nu0)) <= 4.0 * se_ln_nu0
