"""Strong coupling: where mean field fails. kMC against Metropolis and the continuum at l_B/a = 18.6.

εr = 10 at a = 0.3 nm and 300 K (l_B = 5.57 nm, l_B/a = 18.6, the regime of real solid
electrolytes): 108 ions on 12 × 12 × 30 sites (θ0 = 0.025, c0 = 9.3e20 cm⁻³, Γ_p = 8.8,
λ_D = 0.41 a), blocking electrodes 9.3 nm apart, self-image interaction **off**, so that the kMC
and the continuum share the same energy except for the ion–ion correlations the mean field
leaves out. The script runs

* the kMC ensemble at 1 V (38.7 kT) from a random start to 30 µs and checks that it is
  stationary after 1 µs (about 90 hop times);
* the canonical Metropolis equilibrium of the same energy (swap moves), layer by layer, with the
  self-image term off (the kMC's energy) and on (for comparison), and the Metropolis electrode
  charge and first layer on 8² to 20² lateral cells (finite-size check);
* the continuum twin (``solve_mpnp`` and ``steady_state``) on the same layers;
* a voltage scan (0–2 V) of the kMC electrode charge and of its differential capacitance from
  the charge fluctuations, ``C = ε/L + A var(σ)/kT``, against the mean-field ``dσ/dV``;

prints the numbers and draws ``docs/img/strong_coupling.png``.

Usage (about 4-5 minutes on 2 cores)::

    python examples/strong_coupling.py --workers 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from surrodyn.continuum import coupling_parameter, debye_length_m, solve_mpnp, steady_state
from surrodyn.kmc import KMCConfig, metropolis_layer_profile, run_ensemble
from surrodyn.kmc.observables import charging_crossing_time_s, electrode_charge_C_m2, space_charge_layers
from surrodyn.units import BOLTZMANN_J_K, ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_M, bjerrum_length_m

ROOT = Path(__file__).resolve().parents[1]
T_STEADY = 1e-6  # s; records from here on form the stationary window
TIMES = tuple(np.union1d(np.geomspace(1e-9, T_STEADY, 31), np.linspace(T_STEADY, 3e-5, 59)))
SCAN_TIMES = tuple(np.linspace(T_STEADY, 1.5e-5, 57))
VOLTAGES = (0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0)


def strong_config(voltage_V: float = 1.0, self_image: bool = False, lateral: int = 12) -> KMCConfig:
    """Return the strong-coupling system: εr = 10, a = 0.3 nm, θ0 = 0.025 on ``lateral² × 30`` sites."""
    return KMCConfig(
        nx=lateral,
        ny=lateral,
        nz=30,
        spacing_nm=0.3,
        n_ions=round(0.025 * lateral * lateral * 30),
        permittivity=10.0,
        voltage_V=voltage_V,
        temperature_K=300.0,
        attempt_frequency_Hz=1e13,
        activation_energy_eV=0.3,
        self_image=self_image,
        output_times_s=TIMES,
    )


@dataclass(frozen=True)
class Window:
    """kMC statistics over the stationary window (records at ``t >= T_STEADY``).

    Attributes
    ----------
    occ : ndarray, shape (R, nz)
        Time-averaged layer occupancy of each replica.
    sigma, sigma_se : float
        Electrode charge (C/m²) and its SE across replicas.
    cap, cap_se : float
        Differential capacitance ``eps/L + A var(sigma)/kT`` (F/m²) and its jackknife SE.
    drift_se : float
        Mean change of sigma between the halves of the window, in SE.
    """

    occ: np.ndarray
    sigma: float
    sigma_se: float
    cap: float
    cap_se: float
    drift_se: float

    @property
    def mean(self) -> np.ndarray:
        """Replica-mean occupancy."""
        return self.occ.mean(axis=0)

    @property
    def se(self) -> np.ndarray:
        """SE of the replica-mean occupancy."""
        return self.occ.std(axis=0, ddof=1) / np.sqrt(self.occ.shape[0])


def window_stats(ds: xr.Dataset, config: KMCConfig) -> Window:
    """Per-replica time averages over the stationary window and the fluctuation capacitance."""
    t = ds["time"].values
    win = t >= T_STEADY * (1 - 1e-9)
    occ = ds["occupancy"].isel(time=win).mean("time").transpose("replica", "z").values
    sig = ds["electrode_charge"].isel(time=win).transpose("replica", "time").values
    r = sig.shape[0]
    kt = BOLTZMANN_J_K * float(config.temperature_K.values[0])
    base = VACUUM_PERMITTIVITY_F_M * config.permittivity / config.gap_m

    def cap(s: np.ndarray) -> float:
        return base + config.area_m2 * float(np.var(s, ddof=1)) / kt

    loo = np.array([cap(np.delete(sig, i, axis=0).ravel()) for i in range(r)])
    half = sig.shape[1] // 2
    dq = sig[:, half:].mean(axis=1) - sig[:, :half].mean(axis=1)
    return Window(
        occ=occ,
        sigma=float(sig.mean()),
        sigma_se=float(sig.mean(axis=1).std(ddof=1) / np.sqrt(r)),
        cap=cap(sig.ravel()),
        cap_se=float(np.sqrt((r - 1) / r * np.sum((loo - loo.mean()) ** 2))),
        drift_se=float(dq.mean() / (dq.std(ddof=1) / np.sqrt(r))),
    )


def metropolis(config: KMCConfig, chains: int, sweeps: int) -> np.ndarray:
    """Chain-averaged layer occupancy of independent Metropolis chains, shape (chains, nz)."""
    return np.array(
        [
            metropolis_layer_profile(config, sweeps, seed=500 + s, n_equilibrate=1000, sample_every=10).mean_occupancy
            for s in range(chains)
        ]
    )


def screening_fraction(occupancy: np.ndarray, sigma_C_m2: float, config: KMCConfig) -> np.ndarray:
    """Ionic charge between the cathode and each layer over the cathode's charge magnitude.

    ``f(k) = e sum_{j<=k} (n_j - theta0) / (a² sigma)``; mean field rises monotonically to 1;
    ``f > 1`` is over-screening (the field reverses beyond that layer).
    """
    cum = np.cumsum(np.asarray(occupancy) - config.filling)
    return ELEMENTARY_CHARGE_C * cum / (config.spacing_m**2 * sigma_C_m2)


def crossing_time(t: np.ndarray, q: np.ndarray, level: float) -> float:
    """First time at which the charge has covered ``level`` of its change to the last record."""
    return charging_crossing_time_s(t, q, level)


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the measured differences, draw the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=8, help="kMC replicas at 1 V (default 8)")
    parser.add_argument("--scan-replicas", type=int, default=4, help="kMC replicas per scan voltage (default 4)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "strong_coupling.png")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()

    cfg = strong_config(1.0)
    th = cfg.filling
    c0 = cfg.bulk_concentration_m3
    lb_a = bjerrum_length_m(cfg.permittivity, 300.0) / cfg.spacing_m
    gamma_p = coupling_parameter(cfg.permittivity, 300.0, c0)
    lam_a = debye_length_m(cfg.permittivity, 300.0, c0) / cfg.spacing_m
    print(
        f"{cfg.n_ions_resolved} ions on {cfg.nx}×{cfg.ny}×{cfg.nz}, εr = {cfg.permittivity}, a = {cfg.spacing_nm} nm: "
        f"l_B/a = {lb_a:.1f}, θ0 = {th:.3f} (c0 = {c0 * 1e-6:.2g} cm⁻³), Γ_p = {gamma_p:.1f}, λ_D = {lam_a:.2f} a, "
        f"L = {cfg.gap_m * 1e9:.1f} nm, self-image off"
    )

    # ---------------------------------------------------------------- kMC, Metropolis, continuum at 1 V
    t0 = time.perf_counter()
    ds = run_ensemble(cfg, replicas=args.replicas, seed=0, workers=args.workers)
    st = window_stats(ds, cfg)
    print(
        f"kMC: {args.replicas} replicas to {TIMES[-1]:.0e} s ({ds['events'].isel(time=-1).mean().item():.3g} events "
        f"each) in {time.perf_counter() - t0:.0f} s; σ change between the halves of the window "
        f"t ≥ {T_STEADY:.0e} s: {st.drift_se:+.2f} SE"
    )
    cont = solve_mpnp(cfg)
    ss = steady_state(cfg)
    gap = np.abs(cont["occupancy"].values[-1] - ss.occupancy).max() / th
    print(f"continuum: last MPNP record vs steady_state: max |Δn|/θ0 = {gap:.1e}")
    t0 = time.perf_counter()
    chains = metropolis(cfg, 8, 10_000)
    chains_img = metropolis(strong_config(1.0, self_image=True), 8, 10_000)
    mc, mc_se = chains.mean(axis=0), chains.std(axis=0, ddof=1) / np.sqrt(len(chains))
    mc_img = chains_img.mean(axis=0)
    print(f"Metropolis: 8 chains × 10000 sweeps, image off and on, {time.perf_counter() - t0:.0f} s")

    n_k, se_k = st.mean, st.se
    comb = np.sqrt(se_k**2 + mc_se**2)
    ok = mc >= 0.2 * th  # a normal SE needs counts; skip the empty layers at the anode
    dev = (n_k - mc)[ok] / comb[ok]
    print(
        f"\nkMC vs Metropolis (image off), layer by layer: max |Δ| {np.abs(dev).max():.2f} combined SE, "
        f"rms {np.sqrt(np.mean(dev**2)):.2f}, over the {ok.sum()} layers with c/c0 ≥ 0.2"
    )
    print(f"{'layer':>5s} {'kMC c/c0':>14s} {'Metropolis':>14s} {'continuum':>9s} {'MC, image on':>12s}")
    for k in (*range(6), *range(cfg.nz - 5, cfg.nz)):
        print(
            f"{k:5d} {n_k[k] / th:7.3f} ± {se_k[k] / th:4.3f} {mc[k] / th:7.3f} ± {mc_se[k] / th:4.3f} "
            f"{ss.density[k]:9.3f} {mc_img[k] / th:12.3f}"
        )
    interior = slice(6, cfg.nz - 6)
    print(
        f"interior (layers 6-{cfg.nz - 7}): kMC c/c0 {n_k[interior].mean() / th:.3f} "
        f"(layer-to-layer s.d. {n_k[interior].std() / th:.3f}), continuum {ss.density[interior].mean():.3f}"
    )
    z = ds["z"].values
    lay_k = space_charge_layers(n_k, z, th, cfg.spacing_m, cfg.gap_m)
    lay_c = space_charge_layers(ss.occupancy, z, th, cfg.spacing_m, cfg.gap_m)
    for label, key, scale, unit in (
        ("accumulation excess", "accumulation_excess_m2", 1e-16, "1e16 m⁻²"),
        ("depletion width (charge-equivalent)", "depletion_width_m", 1e9, "nm"),
        ("depletion width (c/c0 = 1/2)", "half_depletion_width_m", 1e9, "nm"),
    ):
        a, b = float(lay_k[key]) * scale, float(lay_c[key]) * scale
        print(f"{label + ' (' + unit + ')':44s} kMC {a:8.3f}   continuum {b:8.3f}   ({a / b - 1:+.1%})")
    s_k, s_c = st.sigma, ss.electrode_charge_C_m2
    f_k = screening_fraction(n_k, s_k, cfg)
    f_c = screening_fraction(ss.occupancy, s_c, cfg)
    print(
        f"{'screening fraction after layers 0, 1, 2':44s} kMC {f_k[0]:.3f} {f_k[1]:.3f} {f_k[2]:.3f}   "
        f"continuum {f_c[0]:.3f} {f_c[1]:.3f} {f_c[2]:.3f}"
    )
    print(
        f"{'electrode charge (mC/m²)':44s} kMC {s_k * 1e3:8.2f} ± {st.sigma_se * 1e3:.2f}   "
        f"continuum {s_c * 1e3:8.2f}   ({s_k / s_c - 1:+.1%})"
    )
    tt = ds["time"].values
    q_k = ds["electrode_charge"].mean("replica").values
    q_c = cont["electrode_charge"].values
    for level in (0.5, 0.9):
        a, b = crossing_time(tt, q_k, level), crossing_time(tt, q_c, level)
        print(f"{f'charging: time to {level:.0%} of Δσ (s)':44s} kMC {a:8.2e}   continuum {b:8.2e}   (×{a / b:.2f})")

    # ---------------------------------------------------------------- lateral size (Metropolis only)
    t0 = time.perf_counter()
    print("\nfinite-size check (Metropolis, 4 chains; σ in mC/m², first layer c/c0):")
    for lateral in (8, 12, 16, 20):
        c = strong_config(1.0, lateral=lateral)
        runs = metropolis(c, 4, max(1000, 480_000 // c.n_ions_resolved))
        sig = electrode_charge_C_m2(runs * lateral**2, c, 1.0)
        print(
            f"  {lateral:2d}² × 30 ({c.n_ions_resolved:3d} ions): σ {sig.mean() * 1e3:7.2f} ± "
            f"{sig.std(ddof=1) / 2 * 1e3:.2f}, first layer {runs.mean(axis=0)[0] / th:.3f}, "
            f"layers 1-2 {runs.mean(axis=0)[1:3].mean() / th:.3f}"
        )
    print(f"  ({time.perf_counter() - t0:.0f} s)")

    # ---------------------------------------------------------------- voltage scan
    t0 = time.perf_counter()
    scan: dict[float, Window] = {1.0: st}
    for v in VOLTAGES:
        if v not in scan:
            c = strong_config(v).replace(output_times_s=SCAN_TIMES)
            scan[v] = window_stats(run_ensemble(c, replicas=args.scan_replicas, seed=1, workers=args.workers), c)
    dv = 0.005
    took = time.perf_counter() - t0
    print(f"\nvoltage scan ({args.scan_replicas} replicas per voltage to {SCAN_TIMES[-1]:.1e} s, {took:.0f} s):")
    print(
        f"{'V':>5s} {'σ kMC (mC/m²)':>15s} {'σ MF':>7s} {'C kMC, fluct. (µF/cm²)':>22s} {'C MF':>6s} "
        f"{'layer 0 c/c0 kMC':>16s} {'MF':>5s} {'f(0) kMC':>8s} {'MF':>5s}"
    )
    rows = [scan[v] for v in VOLTAGES]
    mf_sigma, mf_cap = [], []
    for v, w in zip(VOLTAGES, rows, strict=True):
        mf = steady_state(cfg, voltage_V=v)
        up = steady_state(cfg, voltage_V=v + dv).electrode_charge_C_m2
        down = steady_state(cfg, voltage_V=v - dv).electrode_charge_C_m2
        mf_sigma.append(mf.electrode_charge_C_m2)
        mf_cap.append((up - down) / (2 * dv))
        f0 = screening_fraction(w.mean, w.sigma, cfg)[0] if v > 0 else float("nan")
        f0_mf = screening_fraction(mf.occupancy, mf.electrode_charge_C_m2, cfg)[0] if v > 0 else float("nan")
        print(
            f"{v:5.2f} {w.sigma * 1e3:8.2f} ± {w.sigma_se * 1e3:4.2f} {mf_sigma[-1] * 1e3:7.2f} "
            f"{w.cap * 100:14.2f} ± {w.cap_se * 100:5.2f} {mf_cap[-1] * 100:6.2f} "
            f"{w.mean[0] / th:16.3f} {mf.density[0]:5.3f} {f0:8.3f} {f0_mf:5.3f}"
        )
    sig_v = np.array([w.sigma for w in rows])

    # ---------------------------------------------------------------- figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    zn = z * 1e9
    ax = axes[0, 0]
    ax.errorbar(zn, n_k / th, yerr=se_k / th, fmt="o", ms=4, color="C0", label=f"kMC ({args.replicas} replicas)")
    ax.plot(zn, mc / th, "-", color="C1", lw=1.2, label="Metropolis, same energy")
    ax.plot(zn, ss.density, "--", color="k", lw=1.4, label="continuum (mean field)")
    ax.plot(zn, mc_img / th, ":", color="C2", lw=1.4, label="Metropolis, self-image on")
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("z (nm) — cathode at 0")
    ax.set_ylabel("c / c0")
    ax.set_title(f"steady state at 1 V (mean over t ≥ {T_STEADY:.0e} s)")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    ax.plot(tt, q_k * 1e3, color="C0", lw=1.4, label="kMC mean")
    q_all = ds["electrode_charge"].values
    sd = q_all.std(axis=0, ddof=1) * 1e3
    ax.fill_between(tt, q_k * 1e3 - sd, q_k * 1e3 + sd, color="C0", alpha=0.25, lw=0, label="±1 s.d.")
    ax.plot(cont["time"].values, q_c * 1e3, "--", color="k", lw=1.4, label="continuum (MPNP)")
    ax.set_xscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("electrode charge at z = L (mC/m²)")
    ax.set_title("charging at 1 V")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    v_fine = np.linspace(0.0, 2.05, 83)
    s_fine = np.array([steady_state(cfg, voltage_V=v).electrode_charge_C_m2 for v in v_fine])
    ax.errorbar(VOLTAGES, sig_v * 1e3, yerr=[w.sigma_se * 1e3 for w in rows], fmt="o", color="C0", label="kMC")
    ax.plot(v_fine, s_fine * 1e3, "--", color="k", label="continuum")
    ax.set_xlabel("V (V)")
    ax.set_ylabel("electrode charge (mC/m²)")
    ax.set_title("charge against voltage")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    caps = np.array([w.cap for w in rows]) * 100
    caps_se = np.array([w.cap_se for w in rows]) * 100
    ax.errorbar(VOLTAGES, caps, yerr=caps_se, fmt="o", color="C0", label="kMC, from charge fluctuations")
    ax.plot(VOLTAGES, np.gradient(sig_v, np.array(VOLTAGES)) * 100, "s", mfc="none", color="C0", label="kMC, Δσ/ΔV")
    ax.plot(v_fine, np.gradient(s_fine, v_fine) * 100, "--", color="k", label="continuum dσ/dV")
    ax.set_xlabel("V (V)")
    ax.set_ylabel("differential capacitance (µF/cm²)")
    ax.set_title("differential capacitance")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Strong coupling, l_B/a = {lb_a:.1f} (εr = 10, a = 0.3 nm, θ0 = {th:.3f}, {cfg.nx}×{cfg.ny}×{cfg.nz}, "
        "self-image off): kMC vs mean field"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out} ({time.perf_counter() - t_start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
