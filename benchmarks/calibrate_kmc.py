"""Calibration benchmark: recover permittivity and concentration from synthetic charging transients.

Stages (each resumable; run them in order)::

    python benchmarks/calibrate_kmc.py merge --stores demo_store calibration_store --out calib_train.nc
    python benchmarks/calibrate_kmc.py train --data calib_train.nc --out runs/calib --seeds 0 1 2
    python benchmarks/calibrate_kmc.py cases --models runs/calib/m0 runs/calib/m1 runs/calib/m2 \\
        --train-data calib_train.nc --heldout demo_heldout_store --out runs/calib/cases
    python benchmarks/calibrate_kmc.py verify --models runs/calib/m0 runs/calib/m1 runs/calib/m2 \\
        --train-data calib_train.nc --heldout demo_heldout_store --out runs/calib/cases --cases 0 1 2 3 4 5
    python benchmarks/calibrate_kmc.py bo --heldout demo_heldout_store --models runs/calib/m0 \\
        --out runs/calib/bo --cases 0 1 2 --evals 20
    python benchmarks/calibrate_kmc.py bound --models runs/calib/m0 --heldout demo_heldout_store \\
        --out runs/calib/bound --replicas 4 16 64
    python benchmarks/calibrate_kmc.py summarize --out runs/calib

The joint design (docs/calibration.md, "Joint calibration over a voltage ladder"): ``ladder`` runs
each case's sample (and the validation and test points) again at 1 and 2 V; ``cases``, ``verify``,
``continuum`` and ``bound`` take ``--ladder``; ``realisation`` re-runs chosen cases from fresh kMC.

Synthetic experiments: the kMC ensemble mean (4 replicas) of a held-out point (demo held-out sweep,
never trained on) plus white noise of 1 % of the largest charge; the applied voltage is known,
permittivity and concentration are inferred. Truth: the permittivity, and the concentration the
kMC actually simulated (its whole number of ions over the volume).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _merge(args: argparse.Namespace) -> None:
    import xarray as xr

    from surrodyn.data.io import write_dataset
    from surrodyn.sweep.dataset import open_sweep

    parts = [open_sweep(s, missing="drop") for s in args.stores]
    for p in parts[1:]:
        for name in ("permittivity", "concentration_cm3", "voltage_V"):
            if name not in p.coords:
                raise SystemExit(f"store lacks {name}")
    merged = xr.concat(parts, dim="point", combine_attrs="override", coords="different", compat="equals")
    merged = merged.assign_coords(point=np.arange(merged.sizes["point"]))
    merged.attrs["n_points"] = merged.sizes["point"]
    merged.attrs["merged_from"] = ", ".join(str(s) for s in args.stores)
    write_dataset(merged, args.out)
    print(f"{merged.sizes['point']} points -> {args.out}")


def _subset(args: argparse.Namespace) -> None:
    from surrodyn.data.io import write_dataset
    from surrodyn.sweep.dataset import open_sweep

    ds = open_sweep(args.store).isel(point=list(args.points))
    ds.attrs["n_points"] = ds.sizes["point"]
    ds.attrs["subset_of"] = f"{args.store} points {list(args.points)}"
    write_dataset(ds, args.out)
    print(f"{ds.sizes['point']} points -> {args.out}")


def _forward(args: argparse.Namespace) -> None:
    """Forward-model error of the electrode charge at the true parameters (model selection, never the cases).

    The rms error of Q(t) against the kMC mean, over the largest charge the kMC's ions induce
    (``max |Q − ε0 εr V / L|``), so every forward model is judged on the same scale.
    """
    import torch

    from surrodyn.calibration import validation_experiments
    from surrodyn.surrogate import Surrogate
    from surrodyn.surrogate.calibrate import Discrepancy, SurrogateLikelihood
    from surrodyn.sweep.dataset import open_sweep
    from surrodyn.units import VACUUM_PERMITTIVITY_F_M

    pairs = (e.split("=") for e in args.ensembles)
    ensembles = {name: [Surrogate.load(m) for m in ms.split(",")] for name, ms in pairs}
    first = next(iter(ensembles.values()))
    exps = validation_experiments(first, observable="charge", validation=[args.data])
    gap = float(first[0].spec.base.gap_m)
    twin = open_sweep(args.data, missing="drop").get("continuum_electrode_charge")
    rows: dict[str, list[float]] = {name: [] for name in ensembles}
    rows["continuum twin"] = []
    for i, exp in enumerate(exps):
        c = exp.conditions
        amp = float(np.max(np.abs(exp.value - VACUUM_PERMITTIVITY_F_M * c["permittivity"] * c["voltage_V"] / gap)))
        for name, models in ensembles.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                like = SurrogateLikelihood(models, exp, ["voltage_offset_V"], Discrepancy())
            with torch.no_grad():
                pred = like.predict(torch.zeros(1, 1, dtype=torch.float64))[0][0].numpy()
            rows[name].append(float(np.sqrt(np.mean((pred - exp.value) ** 2))) / amp)
        if twin is not None:
            rows["continuum twin"].append(float(np.sqrt(np.mean((twin.values[i] - exp.value) ** 2))) / amp)
    print(f"rms error of Q(t) over the largest induced charge, {len(exps)} points of {args.data}")
    for name, r in rows.items():
        if r:
            r = np.array(r)
            print(f"{name:>24}: median {np.median(r):.3f}  mean {r.mean():.3f}  max {r.max():.3f}")


def _train(args: argparse.Namespace) -> None:
    from surrodyn.surrogate import TrainConfig, train

    for s in args.seeds:
        out = Path(args.out) / f"m{s}"
        if (out / "weights.pt").exists():
            print(f"{out} exists; skipped")
            continue
        t0 = time.perf_counter()
        cfg = TrainConfig(sweep=args.data, out=str(out), continuum=False, seed=s, budget_s=args.budget,
                          threads=args.threads, progress=False, charge_weight=args.charge_weight,
                          test_fraction=args.test_fraction, val_fraction=args.val_fraction)  # fmt: skip
        model = train(cfg)
        print(f"{out}: {model.info['epochs']} epochs, {time.perf_counter() - t0:.0f} s", flush=True)


def _truth(ds, i: int) -> dict[str, float]:
    p = ds.isel(point=i)
    return {"permittivity": float(p["permittivity"]), "concentration_cm3": float(p["bulk_concentration_m3"]) * 1e-6}


def _ladder_files(directory: str, i: int) -> list[Path]:
    """The ladder stage's files of point ``i``, in voltage order."""
    files = sorted(Path(directory).glob(f"ladder_{i:02d}_*V.nc"), key=lambda f: float(f.name.split("_")[2][:-5]))
    if not files:
        raise SystemExit(f"no ladder runs of point {i} in {directory}: run the ladder stage first")
    return files


def _verify_seed(args: argparse.Namespace, i: int) -> int:
    """Seed of case ``i``'s verification kMC (a joint case's experiments take it, +1, +2, ...)."""
    return 20000 + 10 * i if args.ladder else 2000 + i


def _case_experiments(args: argparse.Namespace, held, i: int) -> list:
    """The synthetic experiments of case ``i``: its own transient, then (with ``--ladder``) the same sample's ladder."""
    import xarray as xr

    from surrodyn.calibration import experiment_from_kmc

    exps = [experiment_from_kmc(held.isel(point=i), args.observable, noise=args.noise, seed=1000 + i,
                                correlated=args.correlated)]  # fmt: skip
    for k, f in enumerate(_ladder_files(args.ladder, i) if args.ladder else [], start=1):
        with xr.open_dataset(f) as ds:
            exps.append(experiment_from_kmc(ds.load(), args.observable, noise=args.noise, seed=1000 + i + 100 * k,
                                            correlated=args.correlated))  # fmt: skip
    return exps


def _ladder_groups(args: argparse.Namespace, models: list) -> list[list]:
    """Validation points as groups: each point's own kMC mean and its ladder runs, all at the point's parameters.

    The models' test points in ``--train-data`` (ladder ``--ladder-test``) and the held-out points
    ``--validation-points`` (ladder ``--ladder-validation``); the same parameters as
    :func:`surrodyn.calibration.validation_experiments` gives them, the voltage of each run its own.
    """
    import xarray as xr

    from surrodyn.calibration import validation_point
    from surrodyn.sweep.dataset import open_sweep

    if not (args.ladder_test and args.ladder_validation):
        raise SystemExit("--ladder needs --ladder-test and --ladder-validation (the error model of the joint design)")
    sources = [(args.train_data, list(models[0].info["split"]["test"]), args.ladder_test),
               (args.heldout, list(args.validation_points), args.ladder_validation)]  # fmt: skip
    groups = []
    for store, idx, ladder in sources:
        ds = open_sweep(store)
        for i in idx:
            p = ds.isel(point=i)
            cond = {k: float(p[k].values) for k in models[0].parameters}
            group = [validation_point(p, cond, args.observable, correlated=args.correlated, source=f"{store}#{i}")]
            for f in _ladder_files(ladder, i):
                with xr.open_dataset(f) as run:
                    c = {**cond, "voltage_V": float(run["voltage_V"].values)}
                    group.append(validation_point(run.load(), c, args.observable, correlated=args.correlated,
                                                  source=str(f)))  # fmt: skip
            groups.append(group)
    return groups


def _cases(args: argparse.Namespace) -> None:
    import torch

    from surrodyn.calibration import validation_experiments, verify
    from surrodyn.surrogate import Surrogate
    from surrodyn.surrogate.calibrate import calibrate, fit_discrepancy, fit_parameter_error
    from surrodyn.sweep.dataset import open_sweep

    torch.set_num_threads(args.threads)
    models = [Surrogate.load(m) for m in args.models]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.ladder:  # the error model of the joint design: groups of one sample at several voltages
        groups = _ladder_groups(args, models)
        points = [e for g in groups for e in g]
    else:
        points = validation_experiments(models, args.train_data, args.observable, validation=args.validation,
                                        correlated=args.correlated)  # fmt: skip
        groups = points
    disc = fit_discrepancy(models, points)
    unknowns = ["permittivity", "concentration_cm3"]
    perr = None if args.no_parameter_error else fit_parameter_error(models, groups, unknowns, disc)
    (out / "discrepancy.json").write_text(json.dumps(disc.to_dict(), indent=1))
    if perr is not None:
        (out / "parameter_error.json").write_text(json.dumps(perr.to_dict(), indent=1))
    print(f"discrepancy {disc.to_dict()}, parameter error {perr and perr.to_dict()['sd']} "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
    held = open_sweep(args.heldout)
    for i in range(args.n):
        f = out / f"case_{i:02d}.json"
        if f.exists():
            continue
        point = held.isel(point=i)
        exps = _case_experiments(args, held, i)
        truth = _truth(held, i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = calibrate(models, exps if len(exps) > 1 else exps[0], unknowns, discrepancy=disc,
                            parameter_error=perr, seed=i)  # fmt: skip
        row = {
            "case": i,
            "voltage_V": exps[0].conditions["voltage_V"],
            "voltages_V": [e.conditions["voltage_V"] for e in exps],
            "truth": truth,
            "nominal_concentration_cm3": float(point["concentration_cm3"]),
            **res.to_dict(),
        }
        row["rel_error"] = {k: res.estimate[k] / v - 1 for k, v in truth.items()}
        row["covered"] = {k: bool(res.intervals[k][0] <= v <= res.intervals[k][1]) for k, v in truth.items()}
        if args.verify:
            ver = verify(res, res.likelihood, replicas=4, seed=_verify_seed(args, i), workers=args.workers)
            row["verification"] = ver.to_dict()
        f.write_text(json.dumps(row, indent=1))
        err = row["rel_error"]
        msg = f"case {i:2d} V={row['voltage_V']:.2f}: eps {err['permittivity']:+.3f} c {err['concentration_cm3']:+.3f} "
        msg += f"covered {row['covered']} {res.timings['total']:.1f} s"
        if args.verify:
            msg += f" | kMC chi2/N {row['verification']['chi2_data']:.2f} trusted {row['verification']['trusted']}"
        print(msg, flush=True)


def _continuum_fit(model, exps: list) -> dict[str, float]:
    """Weighted least squares of ε and c0 with the continuum twin as the forward model, all experiments jointly."""
    from scipy.optimize import least_squares

    from surrodyn.continuum import solve_mpnp

    spec = {p.name: p for p in model.spec.parameters}
    lo = np.log10([spec["permittivity"].min, spec["concentration_cm3"].min])
    hi = np.log10([spec["permittivity"].max, spec["concentration_cm3"].max])

    def resid(x: np.ndarray) -> np.ndarray:
        out = []
        for exp in exps:
            params = {"permittivity": 10 ** x[0], "concentration_cm3": 10 ** x[1],
                      "voltage_V": exp.conditions["voltage_V"]}  # fmt: skip
            cfg = model.configs(params)[0].replace(output_times_s=tuple(float(t) for t in exp.time_s))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = solve_mpnp(cfg)["electrode_charge"].values
            out.append((q - exp.value) / exp.sigma)
        return np.concatenate(out)

    fit = least_squares(resid, (lo + hi) / 2, bounds=(lo, hi), diff_step=1e-3)
    return {"permittivity": 10 ** fit.x[0], "concentration_cm3": 10 ** fit.x[1],
            "chi2_per_point": float(2 * fit.cost / fit.fun.size), "evaluations": int(fit.nfev)}  # fmt: skip


def _continuum(args: argparse.Namespace) -> None:
    """Reference: the same cases fitted with the continuum twin itself as the forward model.

    Weighted least squares on log ε and log c0 (scipy, finite differences), every evaluation a
    full mean-field solve (about 0.1 s). It shows how much of the error is the data's: the twin
    is an independent, near-exact mean-field model of the kMC mean.
    """
    from surrodyn.surrogate import Surrogate
    from surrodyn.sweep.dataset import open_sweep

    model = Surrogate.load(args.models[0])  # only for the sweep's base configuration
    held = open_sweep(args.heldout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        f = out / f"continuum_{i:02d}.json"
        if f.exists():
            continue
        exps = _case_experiments(args, held, i)  # correlated=False: white residuals, each with its sigma
        truth = _truth(held, i)
        t0 = time.perf_counter()
        fit = _continuum_fit(model, exps)
        est = {k: fit.pop(k) for k in truth}
        row = {"case": i, "truth": truth, "estimate": est, "seconds": time.perf_counter() - t0, **fit,
               "rel_error": {k: est[k] / v - 1 for k, v in truth.items()}}  # fmt: skip
        f.write_text(json.dumps(row, indent=1))
        print(f"continuum case {i:2d}: eps {row['rel_error']['permittivity']:+.3f} "
              f"c {row['rel_error']['concentration_cm3']:+.3f} ({row['seconds']:.1f} s)", flush=True)  # fmt: skip


def _realisation(args: argparse.Namespace) -> None:
    """Diagnostic: cases again from a second, independent kMC realisation of the same samples.

    When the surrogate and the continuum twin, two independent forward models, miss a case in the
    same direction, either the data's realisation or physics both lack is to blame. Fresh kMC
    ensembles of the same samples at the same voltages (new seeds, same replica count), with new
    noise, calibrated as the cases were (the discrepancy and parameter error saved in ``--out``)
    and by the continuum twin, tell the two apart.
    """
    from surrodyn.calibration import experiment_from_kmc, run_kmc_at
    from surrodyn.surrogate import Surrogate
    from surrodyn.surrogate.calibrate import Discrepancy, ParameterError, calibrate
    from surrodyn.sweep.dataset import open_sweep

    models = [Surrogate.load(m) for m in args.models]
    held = open_sweep(args.heldout)
    out = Path(args.out)
    d = json.loads((out / "discrepancy.json").read_text())
    disc = Discrepancy(d["relative"], d["floor"], d["corr_decades"], d.get("n_points", 0))
    pe = json.loads((out / "parameter_error.json").read_text())
    perr = ParameterError(tuple(pe["names"]), np.array(pe["cov"]), pe["n_points"])
    for i in args.cases:
        f = out / f"realisation_{i:02d}.json"
        if f.exists():
            continue
        p = held.isel(point=i)
        truth = _truth(held, i)
        volts = [float(p["voltage_V"].values)] + [
            float(x.name.split("_")[2][:-5]) for x in _ladder_files(args.ladder, i)
        ]
        exps, white = [], []
        for k, volt in enumerate(volts):
            ds = run_kmc_at(models[0], {**truth, "voltage_V": volt}, p["time"].values, replicas=held.sizes["replica"],
                            seed=70000 + 10 * i + k, workers=args.workers).assign(voltage_V=volt)  # fmt: skip
            exps.append(
                experiment_from_kmc(ds, args.observable, args.noise, 9000 + 10 * i + k, correlated=args.correlated)
            )
            white.append(experiment_from_kmc(ds, args.observable, args.noise, 9000 + 10 * i + k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = calibrate(models, exps, ["permittivity", "concentration_cm3"], discrepancy=disc,
                            parameter_error=perr, seed=i, threads=args.threads)  # fmt: skip
        cont = _continuum_fit(models[0], white)
        row = {"case": i, "voltages_V": volts, "truth": truth,
               "surrogate": {k: res.estimate[k] / v - 1 for k, v in truth.items()},
               "continuum": {k: cont[k] / v - 1 for k, v in truth.items()}}  # fmt: skip
        f.write_text(json.dumps(row, indent=1))
        print(f"case {i} second realisation: surrogate eps {row['surrogate']['permittivity']:+.3f} c0 "
              f"{row['surrogate']['concentration_cm3']:+.3f}; continuum eps {row['continuum']['permittivity']:+.3f} "
              f"c0 {row['continuum']['concentration_cm3']:+.3f}", flush=True)  # fmt: skip


def _verify(args: argparse.Namespace) -> None:
    """Verify finished cases with a kMC ensemble at their estimates (adds "verification" to the case file)."""
    from surrodyn.calibration import discrepancy_from_store, verify
    from surrodyn.surrogate import Surrogate
    from surrodyn.surrogate.calibrate import CalibrationResult, Discrepancy, JointLikelihood, SurrogateLikelihood
    from surrodyn.sweep.dataset import open_sweep

    models = [Surrogate.load(m) for m in args.models]
    disc_file = Path(args.out) / "discrepancy.json"
    if disc_file.exists():  # the one the cases were calibrated with
        d = json.loads(disc_file.read_text())
        disc = Discrepancy(d["relative"], d["floor"], d["corr_decades"], d.get("n_points", 0))
    else:
        disc = discrepancy_from_store(models, args.train_data, args.observable, validation=args.validation,
                                      correlated=args.correlated)  # fmt: skip
    held = open_sweep(args.heldout)
    for i in args.cases:
        f = Path(args.out) / f"case_{i:02d}.json"
        row = json.loads(f.read_text())
        if "verification" in row:
            continue
        parts = [SurrogateLikelihood(models, e, row["unknowns"], disc) for e in _case_experiments(args, held, i)]
        like = parts[0] if len(parts) == 1 else JointLikelihood(parts)
        res = CalibrationResult(tuple(row["unknowns"]), row["estimate"], np.empty((0, 2)), {}, 0.9, {})
        ver = verify(res, like, replicas=4, seed=_verify_seed(args, i), workers=args.workers)
        row["verification"] = ver.to_dict()
        f.write_text(json.dumps(row, indent=1))
        print(f"case {i}: kMC chi2/N {ver.chi2_data:.2f}, surrogate p {ver.p_surrogate:.3g}, trusted {ver.trusted}",
              flush=True)  # fmt: skip


def _bo(args: argparse.Namespace) -> None:
    from surrodyn.calibration import bayes_opt_kmc, experiment_from_kmc, kmc_chi2_objective
    from surrodyn.surrogate import Surrogate
    from surrodyn.surrogate.calibrate import Unknown
    from surrodyn.sweep.dataset import open_sweep

    model = Surrogate.load(args.models[0])
    held = open_sweep(args.heldout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = {p.name: p for p in model.spec.parameters}
    unknowns = [Unknown(n, spec[n].min, spec[n].max, True) for n in ("permittivity", "concentration_cm3")]
    for i in args.cases:
        f = out / f"bo_{i:02d}.json"
        if f.exists():
            continue
        point = held.isel(point=i)
        exp = experiment_from_kmc(point, args.observable, noise=args.noise, seed=1000 + i)
        truth = _truth(held, i)
        objective = kmc_chi2_objective(model, exp, {"voltage_V": exp.conditions["voltage_V"]}, replicas=args.replicas,
                                       seed=3000 + i, workers=args.workers)  # fmt: skip

        def show(k: int, p: dict, y: float, i: int = i) -> None:
            print(f"case {i} eval {k}: eps {p['permittivity']:.1f} c {p['concentration_cm3']:.3g} chi2/N {y:.2f}",
                  flush=True)  # fmt: skip

        res = bayes_opt_kmc(objective, unknowns, n_init=args.init, n_iter=args.evals - args.init, seed=i, callback=show)
        errs = np.abs(res.best / np.array([truth["permittivity"], truth["concentration_cm3"]]) - 1)
        row = {"case": i, "truth": truth, "replicas_per_eval": args.replicas, **res.to_dict(),
               "best_rel_error": errs.tolist()}  # fmt: skip
        f.write_text(json.dumps(row, indent=1))


def _bound(args: argparse.Namespace) -> None:
    """How well could any estimator do? The Cramér–Rao bound of every case, with the kMC noise's own time correlation.

    The continuum twin (which fits the kMC data to chi2/N <= 1.4 in 19 of 20 cases) stands in for
    the exact model of the kMC mean: its sensitivities to ln eps and ln c0 at the truth give the
    Fisher information of the data. Permittivity by central differences; concentration by a
    least-squares slope over whole ion counts around the truth, because the kMC and the twin both
    hold an integer number of ions. The noise is the added white noise plus the replica noise of
    the ensemble mean, whose correlation over time is measured from the held-out replicas (pooled
    over all cases). Reported: the bound's standard deviation of ln eps and ln c0 for independent
    and for correlated replica noise, at the replica counts asked for, and the expected number of
    cases an unbiased, efficient estimator brings within the tolerances.
    """
    from scipy.stats import norm

    from surrodyn.calibration import kmc_observable
    from surrodyn.continuum import solve_mpnp
    from surrodyn.surrogate import Surrogate
    from surrodyn.sweep.dataset import open_sweep

    if args.observable != "charge":
        raise SystemExit("bound: only --observable charge (the continuum twin's electrode charge)")
    model = Surrogate.load(args.models[0])  # only for the sweep's base configuration
    held = open_sweep(args.heldout)
    cases = range(args.n)
    # correlation of the replica noise over time, pooled: sum_r d_r(t) d_r(t') / ((R - 1) s(t) s(t'))
    num, count = 0.0, 0
    for i in cases:
        x = held.isel(point=i)["electrode_charge"].transpose("replica", "time").values
        d = x - x.mean(0)
        s = x.std(0, ddof=1)
        ok = s > 0
        z = np.where(ok, d / np.where(ok, s, 1.0), 0.0)
        num = num + z.T @ z / (x.shape[0] - 1)
        count += 1
    corr = num / count
    corr = (corr + corr.T) / 2
    np.fill_diagonal(corr, 1.0)
    w, v = np.linalg.eigh(corr)
    corr = (v * np.clip(w, 1e-6, None)) @ v.T  # nearest positive-definite
    at_lag = {k: float(np.mean(np.diagonal(corr, k))) for k in (1, 2, 5, 10, 20)}
    print("replica-noise correlation at lag (output times):", {k: round(v, 2) for k, v in at_lag.items()})

    def fisher(ds, truth: dict, reps: int, kind: str) -> np.ndarray:
        """Fisher information of one transient of the continuum twin at the truth, with this kMC run's noise."""
        mean, sem = kmc_observable(ds, args.observable)
        r0 = ds.sizes["replica"]
        sd_add = args.noise * float(np.abs(mean).max())
        volt = float(ds["voltage_V"].values)
        base = model.configs({**truth, "voltage_V": volt})[0]
        base = base.replace(output_times_s=tuple(float(t) for t in ds["time"].values))
        n0 = base.n_ions_resolved
        key = (round(volt, 6), n0, truth["permittivity"])
        if key not in jac_cache:

            def q(eps: float, n: int, base=base) -> np.ndarray:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return solve_mpnp(base.replace(permittivity=eps, n_ions=n))["electrode_charge"].values

            h = 0.05
            j_eps = (q(truth["permittivity"] * np.exp(h), n0) - q(truth["permittivity"] * np.exp(-h), n0)) / (2 * h)
            k = max(2, round(0.08 * n0))
            ns = np.arange(n0 - k, n0 + k + 1)
            qs = np.stack([q(truth["permittivity"], int(n)) for n in ns])
            lx = np.log(ns) - np.log(ns).mean()
            j_c = lx @ (qs - qs.mean(0)) / (lx @ lx)
            jac_cache[key] = np.stack([j_eps, j_c], 1)
        jac = jac_cache[key]
        var_rep = sem**2 * r0 / reps
        rep = np.diag(var_rep) if kind == "independent" else np.sqrt(var_rep)[:, None] * corr * np.sqrt(var_rep)
        return jac.T @ np.linalg.solve(np.diag(np.full(len(sem), sd_add**2)) + rep, jac)

    import xarray as xr

    jac_cache: dict = {}
    rows = []
    for i in cases:
        runs = [held.isel(point=i)]
        if args.ladder:  # the same sample at the ladder's voltages: the informations add
            runs += [xr.open_dataset(f).load() for f in _ladder_files(args.ladder, i)]
        truth = _truth(held, i)
        n0 = model.configs({**truth, "voltage_V": float(runs[0]["voltage_V"].values)})[0].n_ions_resolved
        row = {"case": i, "voltage_V": float(runs[0]["voltage_V"].values), "n_ions": int(n0), "sd": {},
               "voltages_V": [float(r["voltage_V"].values) for r in runs]}  # fmt: skip
        for reps in args.replicas:
            for kind in ("independent", "correlated"):
                cov = np.linalg.inv(sum(fisher(r, truth, reps, kind) for r in runs))
                row["sd"][f"{kind}_{reps}"] = [float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))]
        rows.append(row)
        print(f"case {i:2d} V {row['voltages_V']} ({n0} ions): sd(ln c0) " + "  ".join(
            f"{key} {100 * v[1]:.1f}%" for key, v in row["sd"].items()), flush=True)  # fmt: skip
    summary = {}
    for key in rows[0]["sd"]:
        sd = np.array([r["sd"][key] for r in rows])
        summary[key] = {
            "expected_eps_within_10pct": float((2 * norm.cdf(0.10 / sd[:, 0]) - 1).sum()),
            "expected_c0_within_5pct": float((2 * norm.cdf(0.05 / sd[:, 1]) - 1).sum()),
            "median_sd_ln_c0": float(np.median(sd[:, 1])),
        }
        print(f"{key}: expected eps within 10 %: {summary[key]['expected_eps_within_10pct']:.1f}/{len(rows)}, "
              f"c0 within 5 %: {summary[key]['expected_c0_within_5pct']:.1f}/{len(rows)}")  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"correlation_at_lag": at_lag, "cases": rows, "summary": summary}
    (out / "bound.json").write_text(json.dumps(result, indent=1))


def _ladder(args: argparse.Namespace) -> None:
    """The same samples measured again at other voltages: a kMC ensemble per case and voltage (resumable).

    A material's permittivity and concentration do not depend on the voltage, so an experimenter
    who wants them charges the same sample at several voltages. Each case's held-out point (its
    permittivity and exact ion count) is run again at every ``--voltages`` value, with the held-out
    sweep's record times and replica count and fresh seeds; one NetCDF file per case and voltage.
    """
    from surrodyn.calibration import run_kmc_at
    from surrodyn.data.io import write_dataset
    from surrodyn.surrogate import Surrogate
    from surrodyn.sweep.dataset import open_sweep

    model = Surrogate.load(args.models[0])  # only for the sweep's base configuration
    held = open_sweep(args.heldout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in args.points:
        point = held.isel(point=i)
        truth = _truth(held, i)
        for k, volt in enumerate(args.voltages):
            f = out / f"ladder_{i:02d}_{volt:.2f}V.nc"
            if f.exists():
                continue
            params = {**truth, "voltage_V": volt}
            n_ions = model.configs(params)[0].n_ions_resolved
            if n_ions != int(point["n_ions"]):
                raise SystemExit(f"case {i}: {n_ions} ions at the truth, the held-out point has {int(point['n_ions'])}")
            t0 = time.perf_counter()
            ds = run_kmc_at(model, params, point["time"].values, replicas=held.sizes["replica"],
                            seed=5000 + 100 * i + k, workers=args.workers)  # fmt: skip
            ds = ds.assign({name: value for name, value in params.items()})
            write_dataset(ds, f)
            print(f"case {i:2d} at {volt:.2f} V ({n_ions} ions): {time.perf_counter() - t0:.0f} s", flush=True)


def _summarize(args: argparse.Namespace) -> None:
    root = Path(args.out)
    rows = [json.loads(f.read_text()) for f in sorted((root / args.cases_dir).glob("case_*.json"))]
    if not rows:
        raise SystemExit("no cases yet")
    names = ("permittivity", "concentration_cm3")
    err = np.array([[r["rel_error"][n] for n in names] for r in rows])
    cov = np.array([[r["covered"][n] for n in names] for r in rows])
    t = np.array([r["timings_s"]["total"] for r in rows])
    lines = [
        "| case | V (V) | εr true | εr est. (90 % CI) | err εr | c0 true (cm⁻³) | c0 est. (90 % CI) | err c0 | s |"
        + (" kMC χ²/N | trusted |" if any("verification" in r for r in rows) else ""),
        "|---" * (9 + (2 if any("verification" in r for r in rows) else 0)) + "|",
    ]
    for r in rows:
        e, ci, tr = r["estimate"], r["intervals"], r["truth"]
        line = (
            f"| {r['case']} | {' + '.join(f'{v:.2f}' for v in r.get('voltages_V', [r['voltage_V']]))} | "
            f"{tr['permittivity']:.0f} | {e['permittivity']:.0f} "
            f"({ci['permittivity'][0]:.0f}–{ci['permittivity'][1]:.0f}) | {r['rel_error']['permittivity']:+.1%} | "
            f"{tr['concentration_cm3']:.3g} | {e['concentration_cm3']:.3g} ({ci['concentration_cm3'][0]:.3g}–"
            f"{ci['concentration_cm3'][1]:.3g}) | {r['rel_error']['concentration_cm3']:+.1%} | "
            f"{r['timings_s']['total']:.0f} |"
        )
        if "verification" in r:
            v = r["verification"]
            line += f" {v['chi2_data']:.2f} | {'yes' if v['trusted'] else 'no'} |"
        elif any("verification" in x for x in rows):
            line += " – | – |"
        lines.append(line)
    lines += [
        "",
        f"cases: {len(rows)}; |err| εr ≤ 10 %: {np.sum(np.abs(err[:, 0]) <= 0.10)}, c0 ≤ 5 %: "
        f"{np.sum(np.abs(err[:, 1]) <= 0.05)}; median |err| εr {np.median(np.abs(err[:, 0])):.1%}, "
        f"c0 {np.median(np.abs(err[:, 1])):.1%}",
        f"90 % intervals containing the truth: εr {cov[:, 0].mean():.0%}, c0 {cov[:, 1].mean():.0%}, "
        f"both {np.mean(cov.all(1)):.0%}",
        f"time per case: median {np.median(t):.1f} s, max {t.max():.1f} s",
    ]
    if any("verification" in r for r in rows):
        ver = [r["verification"] for r in rows if "verification" in r]
        lines.append(
            f"verification: kMC reproduces the data (χ²/N ≤ 1 + 3√(2/N)) in {sum(v['reproduces_data'] for v in ver)}"
            f"/{len(ver)}; trusted {sum(v['trusted'] for v in ver)}/{len(ver)}; median χ²/N "
            f"{np.median([v['chi2_data'] for v in ver]):.2f}"
        )
        both = [r for r in rows if r.get("verification", {}).get("trusted")]
        if both:
            e2 = np.array([[r["rel_error"][n] for n in names] for r in both])
            lines.append(
                f"trusted cases only ({len(both)}): εr ≤ 10 %: {np.sum(np.abs(e2[:, 0]) <= 0.10)}, "
                f"c0 ≤ 5 %: {np.sum(np.abs(e2[:, 1]) <= 0.05)}"
            )
    cont = [json.loads(f.read_text()) for f in sorted((root / args.continuum_dir).glob("continuum_*.json"))]
    if cont:
        ec = np.array([[r["rel_error"][n] for n in names] for r in cont])
        lines.append(
            f"reference, the continuum twin itself as the forward model ({len(cont)} cases): εr ≤ 10 %: "
            f"{np.sum(np.abs(ec[:, 0]) <= 0.10)}, c0 ≤ 5 %: {np.sum(np.abs(ec[:, 1]) <= 0.05)}; median |err| εr "
            f"{np.median(np.abs(ec[:, 0])):.1%}, c0 {np.median(np.abs(ec[:, 1])):.1%}; median "
            f"{np.median([r['seconds'] for r in cont]):.0f} s per case"
        )
    bound_file = root / args.bound_dir / "bound.json"
    if bound_file.exists():
        bound = json.loads(bound_file.read_text())
        for key, v in bound["summary"].items():
            lines.append(
                f"bound ({key.replace('_', ' noise, ')} replicas): an efficient estimator expects εr ≤ 10 % in "
                f"{v['expected_eps_within_10pct']:.1f}, c0 ≤ 5 % in {v['expected_c0_within_5pct']:.1f} of "
                f"{len(bound['cases'])}"
            )
        sd = {c["case"]: c["sd"]["correlated_4"][1] for c in bound["cases"] if "correlated_4" in c["sd"]}
        c0_error = {
            "surrogate": {r["case"]: r["rel_error"]["concentration_cm3"] for r in rows},
            "continuum twin": {r["case"]: r["rel_error"]["concentration_cm3"] for r in cont},
        }
        for label, rel in c0_error.items():
            common = sorted(set(sd) & set(rel))
            if common:
                z = np.array([np.log1p(rel[i]) / sd[i] for i in common])
                lines.append(
                    f"c0 error / bound sd (4 replicas, correlated), {label}: rms {np.sqrt(np.mean(z**2)):.2f}, "
                    f"median |z| {np.median(np.abs(z)):.2f}, within 2 sd {np.sum(np.abs(z) <= 2)}/{len(z)}"
                )
    bo_rows = [json.loads(f.read_text()) for f in sorted((root / "bo").glob("bo_*.json"))]
    if bo_rows:
        lines += ["", "| case | surrogate: max rel. err, s | BO on kMC: evals to reach it | BO s | BO best after all |",
                  "|---|---|---|---|---|"]  # fmt: skip
        by_case = {r["case"]: r for r in rows}
        for b in bo_rows:
            r = by_case.get(b["case"])
            if r is None:
                continue
            target = max(abs(r["rel_error"][n]) for n in names)
            errs = np.max(np.array(b["best_rel_error"]), axis=1)
            hit = np.flatnonzero(errs <= target)
            k = int(hit[0]) if hit.size else None
            secs = b["seconds"][k] if k is not None else None
            reach = f"{k + 1}" if k is not None else f"not in {len(errs)}"
            lines.append(
                f"| {b['case']} | {target:.1%}, {r['timings_s']['total']:.0f} s | {reach} | "
                f"{'' if secs is None else f'{secs:.0f}'} | "
                f"{errs[-1]:.1%} after {len(errs)} ({b['seconds'][-1]:.0f} s) |"
            )
    text = "\n".join(lines)
    (root / f"summary_{args.cases_dir}.md").write_text(text + "\n")
    print(text)


def main() -> None:
    """Command line of the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="stage", required=True)
    m = sub.add_parser("merge")
    m.add_argument("--stores", nargs="+", required=True)
    m.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--budget", type=float, default=300.0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--charge-weight", type=float, default=0.0)
    t.add_argument("--test-fraction", type=float, default=0.25)
    t.add_argument("--val-fraction", type=float, default=0.15)
    u = sub.add_parser("subset")
    u.add_argument("--store", required=True)
    u.add_argument("--points", type=int, nargs="+", required=True)
    u.add_argument("--out", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--data", required=True)
    f.add_argument("--ensembles", nargs="+", required=True, help="NAME=model_dir,model_dir,...")
    for name in ("cases", "bo", "verify", "continuum", "bound", "ladder", "realisation"):
        c = sub.add_parser(name)
        c.add_argument("--models", nargs="+", required=True)
        c.add_argument("--heldout", required=True)
        c.add_argument("--out", required=True)
        c.add_argument("--observable", default="charge")
        c.add_argument("--noise", type=float, default=0.01)
        c.add_argument("--workers", type=int, default=2)
        c.add_argument("--threads", type=int, default=2)
    sub.choices["continuum"].add_argument("--n", type=int, default=20)
    sub.choices["continuum"].add_argument("--ladder", help="ladder stage directory: fit each case jointly")
    sub.choices["continuum"].add_argument("--correlated", action="store_true", help=argparse.SUPPRESS)
    sub.choices["bound"].add_argument("--n", type=int, default=20)
    sub.choices["realisation"].add_argument("--cases", type=int, nargs="+", required=True)
    sub.choices["realisation"].add_argument("--ladder", required=True, help="ladder stage directory (its voltages)")
    sub.choices["realisation"].add_argument("--correlated", action="store_true")
    sub.choices["ladder"].add_argument("--points", type=int, nargs="+", default=list(range(20)),
                                       help="held-out points (default: the 20 cases)")  # fmt: skip
    sub.choices["ladder"].add_argument("--voltages", type=float, nargs="+", default=[1.0, 2.0])
    sub.choices["bound"].add_argument("--replicas", type=int, nargs="+", default=[4, 16, 64])
    sub.choices["bound"].add_argument("--ladder", help="ladder stage directory: the bound of the joint design")
    c = sub.choices["cases"]
    c.add_argument("--train-data", required=True)
    c.add_argument("--n", type=int, default=20)
    c.add_argument("--verify", action="store_true")
    c.add_argument("--no-parameter-error", action="store_true", help="intervals from the discrepancy alone")
    for name in ("cases", "verify"):
        sub.choices[name].add_argument("--ladder", help="ladder stage directory: calibrate each case jointly from "
                                       "its own transient and the same sample at the ladder's voltages")  # fmt: skip
        sub.choices[name].add_argument("--ladder-validation", help="ladder of the held-out validation points")
        sub.choices[name].add_argument("--ladder-test", help="ladder of the models' test points in --train-data")
        sub.choices[name].add_argument("--validation-points", type=int, nargs="*", default=list(range(20, 32)),
                                       help="held-out points that validate (default: 20-31)")  # fmt: skip
        sub.choices[name].add_argument("--validation", nargs="*", default=[], help="independent validation sweeps")
        sub.choices[name].add_argument(
            "--correlated",
            action="store_true",
            help="kMC replica noise as a covariance in time (cases and validation points)",
        )
    v = sub.choices["verify"]
    v.add_argument("--train-data", required=True)
    v.add_argument("--cases", type=int, nargs="+", required=True)
    b = sub.choices["bo"]
    b.add_argument("--cases", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--evals", type=int, default=20)
    b.add_argument("--init", type=int, default=6)
    b.add_argument("--replicas", type=int, default=2)
    s = sub.add_parser("summarize")
    s.add_argument("--out", required=True)
    s.add_argument("--cases-dir", default="cases", help="sub-directory of the cases (default: %(default)s)")
    s.add_argument("--continuum-dir", default="continuum", help="sub-directory of the continuum reference")
    s.add_argument("--bound-dir", default="bound", help="sub-directory of the bound")
    args = ap.parse_args()
    stages = {"merge": _merge, "subset": _subset, "train": _train, "forward": _forward, "cases": _cases,
              "continuum": _continuum, "verify": _verify, "bo": _bo, "bound": _bound, "ladder": _ladder,
              "realisation": _realisation,
              "summarize": _summarize}  # fmt: skip
    stages[args.stage](args)


if __name__ == "__main__":
    main()
