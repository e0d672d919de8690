"""Speed of our HDNNP against TorchANI's model of the same size, in one run (issue: HDNNP + AL).

Same network (36 → 32 → 32 → 1, tanh, one per element) on three descriptors of 36 features:

- ``ours, G2+G4``: the default Behler–Parrinello set (12 G2, 24 G4), numba, pair Jacobians;
- ``ours, ANI``: 12 G2 and 24 ANI angular functions (3 radial shifts × 8 sections);
- ``TorchANI``: its ``AEVComputer`` with exactly those ANI constants and its ``ANINetworks``,
  forces by autograd, in float64 (like ours) and in float32 (its default).

Before timing, the ANI model of ours and TorchANI's are given the same constants (rounded to
float32, as TorchANI stores them) and the same weights (TorchANI's first layer takes 4× the radial
weights, for NeuroChem's 1/4), and their Cu147 energies and forces are compared in float64: the two
are the same function.

Measured: Cu147 energy + forces per call (CPU time, one thread), and training throughput (forward,
energy + force loss, backward, Adam step; batches of 8 structures from the Cu13/Cu55 pool). Ours
trains on fingerprints and Jacobians computed once (their cost is reported apart); TorchANI
recomputes its AEV at every step, which is how it trains.

Usage::

    pip install -e ".[ani]"          # TorchANI 2.9, the optional extra
    OMP_NUM_THREADS=1 python benchmarks/hdnnp_vs_torchani.py [--data /work/runs/hdnnp_data] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase.cluster import Icosahedron
from ase.io import read

from surrodyn.potentials import HDNNP, AtomicNetworks, FingerprintSet, SymmetryFunctions
from surrodyn.potentials.model import predict_batch
from surrodyn.potentials.train import energy_force_loss

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

ANI = {  # 12 radial + 3 x 8 angular = 36 features, the size of the default G2 + G4 set
    "radial_eta_per_A2": 2.0,
    "n_radial": 12,
    "radial_start_A": 1.5,
    "radial_cutoff_A": 6.0,
    "angular_eta_per_A2": 2.0,
    "zeta": 8.0,
    "n_angular_shifts": 3,
    "angular_start_A": 2.0,
    "angular_cutoff_A": 4.5,
    "n_sections": 8,
}


def _torchani(sf: SymmetryFunctions, net: AtomicNetworks, dtype: torch.dtype):
    """TorchANI's AEV computer and networks with the constants of ``sf`` and the weights of ``net``."""
    from torchani.aev import AEVComputer, ANIAngular, ANIRadial
    from torchani.nn import ANINetworks, AtomicNetwork

    rad, ang = sf.radial, sf.angular
    aev = AEVComputer(
        ANIRadial(rad.eta_per_A2[0], list(rad.rs_A), rad.cutoff_A),
        ANIAngular(ang.eta_per_A2[0], ang.zeta[0], sorted(set(ang.rs_A)), sorted(set(ang.theta_s)), ang.cutoff_A),
        num_species=1,
        strategy="pyaev",
    )
    mlp = AtomicNetwork([sf.n_features, *net.hidden, 1], activation=torch.nn.Tanh(), bias=True)
    ours = [m for m in net.nets[0] if isinstance(m, torch.nn.Linear)]
    theirs = [*mlp.layers, mlp.final_layer]
    with torch.no_grad():
        for a, b in zip(ours, theirs, strict=True):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        theirs[0].weight[:, : len(rad)] *= 4.0  # TorchANI's radial terms are 1/4 of G2
    return aev.to(dtype), ANINetworks({sf.elements[0]: mlp}).to(dtype)


def _torchani_energy_forces(aev, nets, species, coords, create_graph=False):
    coords = coords.detach().requires_grad_(True)
    energy = nets(species, aev(species, coords))
    (grad,) = torch.autograd.grad(energy.sum(), coords, create_graph=create_graph)
    return energy, -grad


def _cpu_per_call(fn, n: int) -> float:
    fn()  # warm-up (numba compilation, caches)
    c0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c0) / n


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/runs/hdnnp_data")
    p.add_argument("--out", default="/work/runs/hdnnp_vs_torchani.json")
    p.add_argument("--calls", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    import torchani

    torch.manual_seed(0)
    descriptors = {
        "ours, G2+G4": SymmetryFunctions.standard(["Cu"]),
        "ours, ANI": SymmetryFunctions.ani(["Cu"], **ANI).rounded_to_float32(),
    }
    nets = {k: AtomicNetworks(1, sf.n_features) for k, sf in descriptors.items()}
    atoms = Icosahedron("Cu", 4)
    atoms.rattle(0.05, seed=0)
    species = torch.zeros((1, len(atoms)), dtype=torch.long)
    results: dict = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torchani": torchani.__version__,
        "threads": torch.get_num_threads(),
        "n_features": {k: sf.n_features for k, sf in descriptors.items()},
        "cu147": {},
        "train": {},
    }

    # --- the same function: our ANI model and TorchANI's with the same weights
    pot = HDNNP(descriptors["ours, ANI"], nets["ours, ANI"])
    ours = pot.predict(atoms)
    aev64, ani64 = _torchani(descriptors["ours, ANI"], nets["ours, ANI"], torch.float64)
    coords64 = torch.as_tensor(atoms.positions[None], dtype=torch.float64)
    e_t, f_t = _torchani_energy_forces(aev64, ani64, species, coords64)
    results["parity"] = {
        "energy_abs_diff_eV": abs(float(e_t.detach()) - ours["energy"]),
        "force_max_abs_diff_eV_per_A": float(np.abs(f_t[0].numpy() - ours["forces"]).max()),
        "force_max_abs_eV_per_A": float(np.abs(ours["forces"]).max()),
    }
    print("parity", results["parity"], flush=True)

    # --- Cu147 energy + forces
    for name, sf in descriptors.items():
        pot = HDNNP(sf, nets[name])
        results["cu147"][name] = {
            "ms_per_call": 1e3 * _cpu_per_call(lambda pot=pot: pot.predict(atoms), args.calls),
            "descriptor_ms": 1e3 * _cpu_per_call(lambda sf=sf: sf.compute(atoms), args.calls),
            "descriptor_no_jacobian_ms": 1e3
            * _cpu_per_call(lambda sf=sf: sf.compute(atoms, derivatives=False), args.calls),
        }
    aev32, ani32 = _torchani(descriptors["ours, ANI"], nets["ours, ANI"], torch.float32)
    for name, (aev, ani, dtype) in {
        "TorchANI, float64": (aev64, ani64, torch.float64),
        "TorchANI, float32": (aev32, ani32, torch.float32),
    }.items():
        coords = torch.as_tensor(atoms.positions[None], dtype=dtype)

        def call(aev=aev, ani=ani, coords=coords):
            return _torchani_energy_forces(aev, ani, species, coords)

        def aev_only(aev=aev, coords=coords):
            with torch.no_grad():
                return aev(species, coords)

        results["cu147"][name] = {
            "ms_per_call": 1e3 * _cpu_per_call(call, args.calls),
            "descriptor_ms": 1e3 * _cpu_per_call(aev_only, args.calls),
        }
    for name, r in results["cu147"].items():
        print(
            f"Cu147 {name:18s} {r['ms_per_call']:7.2f} ms per energy+forces, descriptor {r['descriptor_ms']:6.2f} ms"
            f" ({r.get('descriptor_no_jacobian_ms', r['descriptor_ms']):.2f} without the Jacobian)"
        )

    # --- training throughput on 64 pool structures (Cu13 and Cu55), batches of 8
    pool = read(Path(args.data) / "pool_balanced.extxyz", ":")
    sample = [pool[k] for k in np.random.default_rng(0).choice(len(pool), 64, replace=False)]
    chunks = np.array_split(np.arange(len(sample)), len(sample) // 8)
    mean_atoms = float(np.mean([len(a) for a in sample]))
    epochs = 3
    for name, sf in descriptors.items():
        c0 = time.process_time()
        data = FingerprintSet(sample, sf)
        featurise = time.process_time() - c0
        net = AtomicNetworks(1, sf.n_features).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        batches = [data.batch(list(c)) for c in chunks]
        c0 = time.process_time()
        for b, energy, forces in batches * epochs:
            n = torch.bincount(b.structure, minlength=b.n_structures).to(energy.dtype)
            loss = energy_force_loss(predict_batch(net, b, create_graph=True), energy, forces, n)
            opt.zero_grad()
            loss.backward()
            opt.step()
        rate = epochs * len(sample) / (time.process_time() - c0)
        results["train"][name] = {"structures_per_cpu_s": rate, "featurise_once_cpu_s": featurise}
    aev, ani = _torchani(descriptors["ours, ANI"], nets["ours, ANI"], torch.float32)
    opt = torch.optim.Adam(ani.parameters(), lr=1e-4)
    padded = []
    for c in chunks:  # TorchANI batches pad the smaller structures with species -1
        n_max = max(len(sample[k]) for k in c)
        sp = torch.full((len(c), n_max), -1, dtype=torch.long)
        xyz = torch.zeros((len(c), n_max, 3))
        frc = torch.zeros((len(c), n_max, 3))
        for row, k in enumerate(c):
            a = sample[k]
            sp[row, : len(a)] = 0
            xyz[row, : len(a)] = torch.as_tensor(a.positions)
            frc[row, : len(a)] = torch.as_tensor(a.get_forces())
        ener = torch.as_tensor([sample[k].get_potential_energy() for k in c], dtype=torch.float32)
        padded.append((sp, xyz, frc, ener, (sp >= 0).sum(1).float()))
    c0 = time.process_time()
    for sp, xyz, frc, ener, n in padded * epochs:
        e, f = _torchani_energy_forces(aev, ani, sp, xyz, create_graph=True)
        mask = (sp >= 0)[..., None]
        loss = ((e - ener) / n).pow(2).mean() + ((f - frc) * mask).pow(2).sum() / (3 * mask.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    rate = epochs * len(sample) / (time.process_time() - c0)
    results["train"]["TorchANI, float32"] = {"structures_per_cpu_s": rate, "featurise_once_cpu_s": 0.0}
    results["train_mean_atoms"] = mean_atoms
    for name, r in results["train"].items():
        print(
            f"train {name:18s} {r['structures_per_cpu_s']:8.1f} structures per CPU-s"
            f" (featurise once {r['featurise_once_cpu_s']:.2f} s)"
        )
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
