"""Seed case: the kMC ensemble against its continuum twin, at the steady state and during charging.

Runs the built-in seed case (``surrodyn.kmc.seed_case_config``: εr = 100, 3e18 cm⁻³, 0.5 V,
300 K, 100 nm, records from 10 ns to 100 µs) as an ensemble of replicas, integrates the lattice
modified PNP twin on the same layers and output times, and prints, for the last record and for
the average over the last decade of records (the stationary window), the accumulation excess,
the depletion widths (charge-equivalent and half-depletion) and the electrode charge of both,
with standard errors across replicas (jackknife for quantities of the mean profile). It also
checks that the kMC is stationary over the last decade and draws
``docs/img/seed_case_vs_continuum.png``.

Usage (about 2-4 minutes on 2 cores)::

    python examples/compare_seed_case.py --replicas 8 --workers 2
    python examples/compare_seed_case.py --kmc seed8.nc     # run once, save, reuse afterwards
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from surrodyn.continuum import coupling_parameter, solve_mpnp, steady_state
from surrodyn.data import read_dataset, write_dataset
from surrodyn.kmc import KMCConfig, metropolis_layer_profile, run_ensemble, seed_case_config
from surrodyn.kmc.observables import charging_crossing_time_s, space_charge_layers
from surrodyn.plot import plot_comparison

ROOT = Path(__file__).resolve().parents[1]
QUANTITIES = {
    "accumulation_excess_m2": ("accumulation excess", 1e-16, "1e16 m⁻²"),
    "depletion_width_m": ("depletion width (charge-equivalent)", 1e9, "nm"),
    "half_depletion_width_m": ("depletion width (c/c0 = 1/2)", 1e9, "nm"),
    "electrode_charge": ("electrode charge", 1e3, "mC/m²"),
}


def layer_numbers(occupancy: np.ndarray, config: KMCConfig, z_m: np.ndarray) -> dict[str, float]:
    """Space-charge-layer numbers of one mean occupancy profile (shape (nz,))."""
    out = space_charge_layers(occupancy, z_m, config.filling, config.spacing_m, config.gap_m)
    return {k: float(out[k]) for k in ("accumulation_excess_m2", "depletion_width_m", "half_depletion_width_m")}


def jackknife(per_replica: np.ndarray, config: KMCConfig, z_m: np.ndarray) -> dict[str, tuple[float, float]]:
    """Numbers of the replica-mean profile with jackknife standard errors over replicas.

    Parameters
    ----------
    per_replica : ndarray, shape (R, nz)
        One occupancy profile per independent replica.
    config : KMCConfig
        The system.
    z_m : ndarray, shape (nz,)
        Layer positions.

    Returns
    -------
    dict
        ``name -> (value of the mean profile, jackknife SE)``.
    """
    r = per_replica.shape[0]
    full = layer_numbers(per_replica.mean(axis=0), config, z_m)
    leave = [layer_numbers(np.delete(per_replica, i, axis=0).mean(axis=0), config, z_m) for i in range(r)]
    out = {}
    for k, v in full.items():
        loo = np.array([d[k] for d in leave])
        out[k] = (v, float(np.sqrt((r - 1) / r * np.sum((loo - loo.mean()) ** 2))))
    return out


def kmc_numbers(ds, config: KMCConfig, window: slice) -> dict[str, tuple[float, float]]:
    """Return the kMC numbers (value, SE) of the records in ``window``, averaged per replica."""
    occ = ds["occupancy"].isel(time=window).mean("time").transpose("replica", "z").values
    out = jackknife(occ, config, ds["z"].values)
    q = ds["electrode_charge"].isel(time=window).mean("time").values
    out["electrode_charge"] = (float(q.mean()), float(q.std(ddof=1) / np.sqrt(q.size)))
    return out


def continuum_numbers(occupancy: np.ndarray, charge: float, config: KMCConfig, z_m: np.ndarray) -> dict[str, float]:
    """Return the continuum numbers of one profile."""
    out = layer_numbers(occupancy, config, z_m)
    out["electrode_charge"] = float(charge)
    return out


def stationarity(ds, first: slice, second: slice) -> dict[str, float]:
    """Compare the two halves of the stationary window per replica (paired differences, in SE).

    Returns the electrode-charge difference in mC/m² and in SE, and the largest and the root
    mean square per-layer profile difference in SE.
    """
    q = ds["electrode_charge"]
    dq = (q.isel(time=second).mean("time") - q.isel(time=first).mean("time")).values
    occ = ds["occupancy"]
    dn = (occ.isel(time=second).mean("time") - occ.isel(time=first).mean("time")).transpose("replica", "z").values
    se_n = dn.std(axis=0, ddof=1) / np.sqrt(dn.shape[0])
    ok = se_n > 0
    z_dev = dn.mean(axis=0)[ok] / se_n[ok]
    se_q = dq.std(ddof=1) / np.sqrt(dq.size)
    return {
        "charge_diff_mC_m2": float(dq.mean() * 1e3),
        "charge_diff_SE": float(dq.mean() / se_q),
        "profile_max_SE": float(np.abs(z_dev).max()),
        "profile_rms_SE": float(np.sqrt(np.mean(z_dev**2))),
        "profile_within_2SE": float(np.mean(np.abs(z_dev) < 2.0)),
    }


def compare_metropolis(cfg: KMCConfig, kmc_occ: np.ndarray, cont: dict[str, float], sweeps: int) -> None:
    """Separate the self-image term from ion correlations with the canonical Metropolis equilibrium.

    The kMC's energy includes each ion's attraction to its own electrode images; the continuum
    does not. Metropolis chains of the kMC energy with the image term on (the kMC's exact
    equilibrium) and off (the continuum's energy, but with discrete, correlated ions) tell the
    two effects apart.
    """
    t0 = time.perf_counter()
    print(f"\nMetropolis equilibrium (8 chains × {sweeps} sweeps each, image on and off):")
    for image in (True, False):
        c = cfg.replace(self_image=image)
        chains = np.array(
            [
                metropolis_layer_profile(c, sweeps, seed=100 + s, n_equilibrate=2000, sample_every=10).mean_occupancy
                for s in range(8)
            ]
        )
        m, se = chains.mean(axis=0), chains.std(axis=0, ddof=1) / np.sqrt(len(chains))
        nums = jackknife(chains, c, (np.arange(c.nz) + 1) * c.spacing_m)
        text = ", ".join(
            f"{QUANTITIES[k][0]} {v * QUANTITIES[k][1]:.3f} ± {e * QUANTITIES[k][1]:.3f} ({v / cont[k] - 1:+.1%})"
            for k, (v, e) in nums.items()
        )
        print(
            f"  image {'on ' if image else 'off'}: first layer c/c0 {m[0] / c.filling:.2f} ± {se[0] / c.filling:.2f}; "
            f"{text}"
        )
        if image:
            se_k = kmc_occ.std(axis=0, ddof=1) / np.sqrt(kmc_occ.shape[0])
            # a normal SE needs counts: skip the deep-depletion layers (c/c0 < 0.2), where an
            # ensemble sees a handful of ions or none
            ok = m >= 0.2 * c.filling
            dev = (kmc_occ.mean(axis=0) - m)[ok] / np.sqrt(se_k**2 + se**2)[ok]
            print(
                f"    kMC (last decade) vs Metropolis, image on: max |Δ| {np.abs(dev).max():.2f} SE, "
                f"rms {np.sqrt(np.mean(dev**2)):.2f} SE over the {ok.sum()} layers with c/c0 >= 0.2"
            )
    print(f"  ({time.perf_counter() - t0:.0f} s)")


def crossing_time(t: np.ndarray, q: np.ndarray, level: float) -> float:
    """First time at which the charge has covered ``level`` of its change to the last decade's mean."""
    return charging_crossing_time_s(t, q, level, final=q[t >= t[-1] / 10 * (1 - 1e-9)].mean())


def main(argv: list[str] | None = None) -> int:
    """Run (or read) the ensemble, solve the continuum, print the comparison, draw the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kmc", type=Path, help="NetCDF of the ensemble: read if it exists, else written")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "seed_case_vs_continuum.png")
    parser.add_argument(
        "--metropolis-sweeps", type=int, default=10_000, help="sweeps per Metropolis chain (0: skip; default 10000)"
    )
    args = parser.parse_args(argv)
    metropolis_sweeps = args.metropolis_sweeps

    cfg = seed_case_config()
    t0 = time.perf_counter()
    if args.kmc is not None and args.kmc.exists():
        ds = read_dataset(args.kmc)
        print(f"read {args.kmc} ({ds.sizes['replica']} replicas)")
    else:
        ds = run_ensemble(cfg, replicas=args.replicas, seed=args.seed, workers=args.workers, progress=True)
        print(f"kMC: {ds.sizes['replica']} replicas in {time.perf_counter() - t0:.0f} s wall ({args.workers} workers)")
        if args.kmc is not None:
            write_dataset(ds, args.kmc)
    t1 = time.perf_counter()
    cont = solve_mpnp(cfg)
    ss = steady_state(cfg)
    print(f"continuum: solve_mpnp + steady_state in {time.perf_counter() - t1:.1f} s")

    times = ds["time"].values
    last = slice(times.size - 1, times.size)
    window = np.nonzero(times >= times[-1] / 10 * (1 - 1e-9))[0]
    win = slice(int(window[0]), times.size)
    mid = int(window[0]) + window.size // 2
    z = ds["z"].values
    events = ds["events"].isel(time=-1).values
    print(
        f"{cfg.n_ions_resolved} ions, {ds.sizes['replica']} replicas, {events.mean():.3g} events per replica; "
        f"Γ_p = {coupling_parameter(cfg.permittivity, 300.0, cfg.bulk_concentration_m3):.3f}"
    )

    # stationarity of the kMC over the last decade, and of the continuum
    st = stationarity(ds, slice(win.start, mid), slice(mid, times.size))
    print(
        f"stationarity, records {times[win.start]:.3g}-{times[mid - 1]:.3g} s vs {times[mid]:.3g}-{times[-1]:.3g} s "
        f"(paired over replicas): Δσ = {st['charge_diff_mC_m2']:+.3f} mC/m² ({st['charge_diff_SE']:+.2f} SE); "
        f"profile: max |Δ| {st['profile_max_SE']:.2f} SE, rms {st['profile_rms_SE']:.2f} SE, "
        f"{st['profile_within_2SE']:.0%} of layers within 2 SE"
    )
    qc = cont["electrode_charge"].values
    nc = cont["occupancy"].values
    print(
        f"continuum: σ(t = {times[win.start]:.3g} s) vs σ(last) rel. diff {abs(qc[win.start] / qc[-1] - 1):.1e}; "
        f"last record vs steady_state: max |Δn|/θ0 = {np.abs(nc[-1] - ss.occupancy).max() / cfg.filling:.1e}"
    )

    cont_last = continuum_numbers(nc[-1], qc[-1], cfg, z)
    cont_ss = continuum_numbers(ss.occupancy, ss.electrode_charge_C_m2, cfg, z)
    rows = [("last record", kmc_numbers(ds, cfg, last)), ("last decade", kmc_numbers(ds, cfg, win))]
    print(f"\n{'quantity':40s} {'kMC, last record':>18s} {'kMC, last decade':>18s} {'continuum':>10s} {'Δ':>14s}")
    for key, (label, scale, unit) in QUANTITIES.items():
        ref = cont_last[key]
        cells = [f"{v * scale:7.3f} ± {se * scale:5.3f}" for v, se in (r[1][key] for r in rows)]
        diffs = "/".join(f"{r[1][key][0] / ref - 1:+.1%}" for r in rows)
        print(f"{label + ' (' + unit + ')':40s} {cells[0]:>18s} {cells[1]:>18s} {ref * scale:10.3f} {diffs:>14s}")
        if abs(cont_ss[key] / ref - 1) > 1e-3:
            print(f"  note: steady_state() gives {cont_ss[key] * scale:.3f} {unit}")

    # layer by layer over the stationary window: |n_kMC - n_MF| <= 0.05 max(n_MF, theta0) + 3 SE
    occ = ds["occupancy"].isel(time=win).mean("time").transpose("replica", "z").values
    n_k, se_k = occ.mean(axis=0), occ.std(axis=0, ddof=1) / np.sqrt(occ.shape[0])
    allowed = 0.05 * np.maximum(nc[-1], cfg.filling) + 3 * se_k
    inside = np.abs(n_k - nc[-1]) <= allowed
    print(
        f"per layer (last decade): {inside.sum()}/{inside.size} layers within 0.05·max(n_MF, θ0) + 3 SE; "
        f"first layer c/c0 kMC {n_k[0] / cfg.filling:.2f} ± {se_k[0] / cfg.filling:.2f}, "
        f"continuum {nc[-1, 0] / cfg.filling:.2f}"
    )
    q_k = ds["electrode_charge"].mean("replica").values
    for level in (0.5, 0.9):
        a, b = crossing_time(times, q_k, level), crossing_time(times, qc, level)
        print(f"charging: time to {level:.0%} of Δσ: kMC {a:.3g} s, continuum {b:.3g} s ({a / b - 1:+.1%})")
    if metropolis_sweeps > 0:
        compare_metropolis(cfg, occ, cont_last, metropolis_sweeps)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_comparison(ds, cont, times_s=[1e-7, 1e-6, 3e-6, 1e-5], path=args.out, steady_from_s=float(times[win.start]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
