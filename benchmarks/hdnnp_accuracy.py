"""HDNNP accuracy, NVE stability and speed on EMT Cu13/Cu55 (issue protocol in ``../shared/reference/md-mlff.md``).

- 100 random structures (3 seeds, each pool) and the full balanced pool → energy and force RMSE on
  the balanced test set, with fit time.
- NVE (velocity Verlet, 1 fs) of Cu55 at 600 K for 2 ps with the full-pool model: energy drift.
- Speed: energy + forces of Cu147 (calls per second, descriptor share), training throughput
  (structures per second through forward + force loss + backward).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/hdnnp_data.py
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_accuracy.py [--skip-full]

Writes ``results.json``, parity and NVE figures into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.cluster import Icosahedron
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from surrodyn.potentials import HDNNP, FingerprintSet, SymmetryFunctions, TrainConfig, errors, fit
from surrodyn.potentials.model import predict_batch
from surrodyn.potentials.train import energy_force_loss

# 960 structures: bigger batches and a shorter patience keep the fit to minutes on one core
FULL_POOL_TRAIN = {"batch_size": 16, "max_epochs": 600, "patience_epochs": 60}


def _fit_and_score(train, test_fp, seed: int, out: Path | None = None, train_kw: dict | None = None) -> dict:
    sf = test_fp.descriptor
    t0 = time.perf_counter()
    data = FingerprintSet(train, sf)
    feat_s = time.perf_counter() - t0
    res = fit(data, config=TrainConfig(seed=seed, **(train_kw or {})))
    metrics = errors(res.potential, test_fp)
    if out is not None:
        res.potential.save(out)
    return {
        **metrics,
        "n_train": len(train),
        "seed": seed,
        "fit_s": res.seconds,
        "featurise_s": feat_s,
        "epochs": len(res.history["epoch"]),
        "best_epoch": res.best_epoch,
        "potential": res.potential,
    }


def nve_drift(potential: HDNNP, *, temperature_K: float = 600.0, ps: float = 2.0, seed: int = 0) -> dict:
    """Icosahedral Cu55 thermalised at ``temperature_K`` (1 ps Langevin), then 2 ps velocity-Verlet NVE."""
    atoms = Icosahedron("Cu", 3)
    atoms.calc = potential.calculator()
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    Langevin(atoms, 1.0 * units.fs, temperature_K=temperature_K, friction=0.02, fixcm=True, rng=rng).run(1000)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    n_steps = round(ps * 1000)
    etot, temps = [], []

    def record() -> None:
        etot.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())
        temps.append(atoms.get_temperature())

    dyn.attach(record, interval=10)
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(n_steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    e = np.array(etot) / len(atoms)
    t = np.arange(len(e)) * 10 * 1e-3  # ps
    slope = np.polyfit(t, e, 1)[0]
    return {
        "n_atoms": len(atoms),
        "steps": n_steps,
        "timestep_fs": 1.0,
        "mean_temperature_K": float(np.mean(temps[len(temps) // 5 :])),
        "drift_meV_per_atom": 1e3 * float(abs(slope) * ps),
        "max_deviation_meV_per_atom": 1e3 * float(np.max(np.abs(e - e[0]))),
        "steps_per_cpu_s": n_steps / cpu,
        "steps_per_wall_s": n_steps / wall,
        "energy_trace_meV_per_atom": (1e3 * (e - e[0])).tolist(),
        "time_ps": t.tolist(),
    }


def speed(potential: HDNNP, train_fp: FingerprintSet, n_calls: int = 50) -> dict:
    """Cu147 energy + forces per second; training structures per second."""
    atoms = Icosahedron("Cu", 4)
    atoms.rattle(0.05, seed=0)
    potential.predict(atoms)  # warm-up (numba, float64 copy)
    c0 = time.process_time()
    for _ in range(n_calls):
        potential.predict(atoms)
    per_call = (time.process_time() - c0) / n_calls
    c0 = time.process_time()
    for _ in range(n_calls):
        potential.descriptor.compute(atoms)
    per_desc = (time.process_time() - c0) / n_calls
    net = potential.network.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    idx = np.arange(min(len(train_fp), 64))
    batches = [train_fp.batch(list(chunk)) for chunk in np.array_split(idx, len(idx) // 8)]
    c0 = time.process_time()
    for b, energy, forces in batches * 3:
        n = torch.bincount(b.structure, minlength=b.n_structures).to(energy.dtype)
        loss = energy_force_loss(predict_batch(net, b, create_graph=True), energy, forces, n)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_rate = 3 * len(idx) / (time.process_time() - c0)
    net.eval()
    return {
        "cu147_energy_forces_ms": 1e3 * per_call,
        "cu147_calls_per_cpu_s": 1 / per_call,
        "cu147_descriptor_ms": 1e3 * per_desc,
        "train_structures_per_cpu_s": train_rate,
        "train_mean_atoms": float(np.mean(train_fp.n_atoms[idx])),
        "train_atoms_per_cpu_s": train_rate * float(np.mean(train_fp.n_atoms[idx])),
    }


def _md_and_speed(potential: HDNNP, pool: list, sf: SymmetryFunctions, results: dict) -> None:
    results["nve"] = nve_drift(potential)
    print("NVE", {k: v for k, v in results["nve"].items() if not isinstance(v, list)}, flush=True)
    sample = np.random.default_rng(0).choice(len(pool), 64, replace=False)  # Cu13 and Cu55 mixed
    results["speed"] = speed(potential, FingerprintSet([pool[k] for k in sample], sf))
    print("speed", results["speed"], flush=True)


def _rounded(d: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/runs/hdnnp_data")
    p.add_argument("--out", default="/work/runs/hdnnp_accuracy")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--skip-full", action="store_true")
    p.add_argument("--md-only", action="store_true", help="reuse the saved full-pool model; redo NVE and speed")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    sf = SymmetryFunctions.standard(["Cu"])
    test_fp = FingerprintSet(read(data / "test.extxyz", ":"), sf)
    results: dict = {
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "descriptor": sf.to_dict(),
        "train": TrainConfig().to_dict(),
        "random100": [],
    }
    if args.md_only:
        results = json.loads((out / "results.json").read_text())
        _md_and_speed(HDNNP.load(out / "full_pool_model"), read(data / "pool_balanced.extxyz", ":"), sf, results)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        return
    for pool_name in ("imbalanced", "balanced"):
        pool = read(data / f"pool_{pool_name}.extxyz", ":")
        for seed in args.seeds:
            idx = np.random.default_rng(seed).choice(len(pool), 100, replace=False)
            r = _fit_and_score([pool[k] for k in idx], test_fp, seed)
            r.pop("potential")
            results["random100"].append({"pool": pool_name, **r})
            print(pool_name, "100 random", _rounded(r), flush=True)
    if not args.skip_full:
        pool = read(data / "pool_balanced.extxyz", ":")
        full = _fit_and_score(pool, test_fp, 0, out / "full_pool_model", FULL_POOL_TRAIN)
        potential = full.pop("potential")
        results["full_pool"] = {**full, "train": FULL_POOL_TRAIN}
        print("full pool", _rounded(full), flush=True)
        from surrodyn.plot.potentials import plot_parity

        energy, forces = potential.predict_set(test_fp)
        fig = plot_parity(
            test_fp.energy / test_fp.n_atoms,
            energy / test_fp.n_atoms,
            np.concatenate([f.numpy() for f in test_fp.forces]),
            np.concatenate(forces),
            title="full balanced pool (960) → balanced test (285)",
        )
        fig.savefig(out / "parity_full_pool.png", dpi=120, bbox_inches="tight")
        _md_and_speed(potential, pool, sf, results)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
