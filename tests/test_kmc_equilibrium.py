"""Acceptance check 7: with Coulomb on and constant V, the long-time kMC layer profile equals a
canonical Metropolis MC of the same total energy (each layer within 3 combined SE).

Time is measured in units of the bare hop time (attempt_frequency 1 Hz, no barrier), so one
output per unit time samples the kMC about once per correlation time of a layer occupancy.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from _profiles import kmc_profiles, mc_profiles
from surrodyn.kmc import KMCConfig
from surrodyn.kmc.metropolis import (
    _delta_energy,
    metropolis_layer_profile,
    single_site_energies,
)
from surrodyn.kmc.reference import total_energy_eV
from surrodyn.kmc.simulation import green_table
from surrodyn.units import thermal_energy_eV

KT = thermal_energy_eV(300.0)

# 4x4x10 lattice, 20 ions (theta0 = 1/8); eps_r = 10 at a = 1 nm: e/(eps a) = 70 kT, l_B/a = 5.6;
# V = 0.1 V = 3.9 kT
STRONG = {
    "nx": 4,
    "ny": 4,
    "nz": 10,
    "n_ions": 20,
    "permittivity": 10.0,
    "voltage_V": 0.1,
    "attempt_frequency_Hz": 1.0,
    "activation_energy_eV": 0.0,
    "disorder_eV": 0.0,
}
VARIANTS = {
    "symmetric-image": {"rate_rule": "symmetric", "self_image": True},
    "symmetric-noimage": {"rate_rule": "symmetric", "self_image": False},
    "metropolis-image": {"rate_rule": "metropolis", "self_image": True},
}


def deviation_in_se(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-layer (mean a - mean b) / combined SE, the SEs from the spread across independent runs."""
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    return (a.mean(axis=0) - b.mean(axis=0)) / se


# ---------------------------------------------------------------------------- the sampler itself
@pytest.mark.parametrize(
    ("coulomb", "self_image", "disorder"),
    [
        (True, True, 0.03),
        (True, False, 0.0),
        (False, True, 0.03),
        (True, True, 0.0),
    ],
)
def test_delta_energy_equals_total_energy_difference(coulomb, self_image, disorder):
    cfg = KMCConfig(
        nx=4,
        ny=5,
        nz=7,
        n_ions=17,
        permittivity=10.0,
        voltage_V=0.2,
        disorder_eV=disorder,
        coulomb=coulomb,
        self_image=self_image,
    )
    table = green_table(cfg.nx, cfg.ny, cfg.nz)
    rng = np.random.default_rng(7)
    dis = disorder * rng.standard_normal(cfg.n_sites) if disorder else None
    e1 = single_site_energies(cfg, table, 0.2, dis)
    worst = 0.0
    for _ in range(40):
        sites = rng.choice(cfg.n_sites, cfg.n_ions, replace=False)
        pos = np.stack(np.unravel_index(sites, (cfg.nx, cfg.ny, cfg.nz)), axis=1)
        i = int(rng.integers(cfg.n_ions))
        b = int(rng.choice(np.setdiff1d(np.arange(cfg.n_sites), sites)))
        xs, ys, zs = (np.ascontiguousarray(c, dtype=np.int64) for c in pos.T)
        de = _delta_energy(i, b, xs, ys, zs, e1, table.flat, cfg.nx, cfg.ny, cfg.nz, cfg.coulomb_scale_V, coulomb)
        moved = pos.copy()
        moved[i] = np.unravel_index(b, (cfg.nx, cfg.ny, cfg.nz))
        ref = total_energy_eV(cfg, table, moved, 0.2, dis) - total_energy_eV(cfg, table, pos, 0.2, dis)
        worst = max(worst, abs(de - ref))
    assert worst <= 1e-10 * KT


def test_sampler_matches_exact_enumeration():
    # 2x2x5 lattice, 3 ions: 1140 configurations, Boltzmann weights of total_energy_eV
    cfg = KMCConfig(nx=2, ny=2, nz=5, n_ions=3, permittivity=10.0, voltage_V=0.3)
    table = green_table(cfg.nx, cfg.ny, cfg.nz)
    energies, counts = [], []
    for sites in itertools.combinations(range(cfg.n_sites), cfg.n_ions):
        pos = np.stack(np.unravel_index(np.array(sites), (cfg.nx, cfg.ny, cfg.nz)), axis=1)
        energies.append(total_energy_eV(cfg, table, pos, 0.3))
        counts.append(np.bincount(pos[:, 2], minlength=cfg.nz))
    w = np.exp(-(np.array(energies) - min(energies)) / KT)
    exact = (w / w.sum()) @ np.array(counts) / (cfg.nx * cfg.ny)
    runs = mc_profiles(cfg, range(8), n_sweeps=20_000, n_equilibrate=200)
    se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.ptp(exact) > 20 * se.max()  # a non-trivial profile
    assert np.all(np.abs(runs.mean(axis=0) - exact) < 3 * se)


def test_bad_input_raises():
    cfg = KMCConfig(nx=3, ny=3, nz=4, n_ions=5)
    good = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [0, 2, 3]])
    bad = [
        {"n_sweeps": 0},
        {"n_sweeps": 2.5},
        {"n_equilibrate": -1},
        {"sample_every": 20},
        {"positions": good[:4]},
        {"positions": good + np.array([0, 0, 1])},
        {"positions": np.vstack([good[:4], good[:1]])},
        {"positions": good.astype(float)},
        {"disorder_eV": np.zeros(5)},
        {"temperature_K": -1.0},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            metropolis_layer_profile(cfg, **{"n_sweeps": 10, **kwargs})
    with pytest.raises(ValueError, match="disorder"):
        metropolis_layer_profile(cfg.replace(disorder_eV=0.01), 10)
    res = metropolis_layer_profile(cfg, 10, positions=good, sample_every=5, n_equilibrate=0)
    assert res.occupancy.shape == (2, 4)
    assert np.allclose(res.occupancy.sum(axis=1), 5 / 9)


# ---------------------------------------------------------------------------- kMC vs Metropolis
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _fast_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(kMC replicas, MC chains) of a variant at the fast test's statistics (cached)."""
    if name not in _CACHE:
        cfg = KMCConfig(**STRONG, **VARIANTS[name])
        _CACHE[name] = (
            kmc_profiles(cfg, range(10), t_equilibrate=200.0, n_out=2500),
            mc_profiles(cfg, range(100, 110), n_sweeps=12_500),
        )
    return _CACHE[name]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_kmc_profile_equals_metropolis(name):
    kmc, mc = _fast_pair(name)
    dev = deviation_in_se(kmc, mc)
    assert np.all(np.abs(dev) < 3.0), f"{name}: deviation per layer in SE {np.round(dev, 2)}"


def test_comparison_has_power():
    kmc, mc = _fast_pair("symmetric-image")
    base = KMCConfig(**STRONG, **VARIANTS["symmetric-image"])
    seeds = range(100, 110)
    # a 1.5x weaker coupling, no Coulomb at all, and the kMC with images against MC without
    weaker = mc_profiles(base.replace(permittivity=15.0), seeds, n_sweeps=12_500)
    no_coulomb = mc_profiles(base.replace(coulomb=False), seeds, n_sweeps=5000)
    no_image = _fast_pair("symmetric-noimage")[1]
    for other in (weaker, no_coulomb, no_image):
        assert np.abs(deviation_in_se(kmc, other)).max() > 10.0
    assert np.abs(deviation_in_se(kmc, mc)).max() < 3.0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_kmc_profile_equals_metropolis_long(name):
    t0 = time.perf_counter()
    cfg = KMCConfig(**STRONG, **VARIANTS[name])
    kmc = kmc_profiles(cfg, range(1000, 1032), t_equilibrate=500.0, n_out=10_000)
    mc = mc_profiles(cfg, range(2000, 2032), n_sweeps=60_000, n_equilibrate=2000)
    dev = deviation_in_se(kmc, mc)
    se = np.sqrt(kmc.var(axis=0, ddof=1) / len(kmc) + mc.var(axis=0, ddof=1) / len(mc))
    print(f"{name}: max |dev| {np.abs(dev).max():.2f} SE, SE <= {se.max():.1e}, {time.perf_counter() - t0:.0f} s")
    assert np.all(np.abs(dev) < 3.0), f"{name}: deviation per layer in SE {np.round(dev, 2)}"
    assert se.max() < 2e-4
