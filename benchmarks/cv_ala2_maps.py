"""Draw the latents of the alanine dipeptide benchmark on the (φ, ψ) plane of the data.

    python benchmarks/cv_ala2.py --data /work/data/ala2_vacuum --methods ours,ours-disentangled \\
        --latents runs/latents_vacuum
    python benchmarks/cv_ala2_maps.py --data /work/data/ala2_vacuum --latents runs/latents_vacuum \\
        --methods ours,ours-disentangled --out docs/img/cv/maps_vacuum.png

The first column is the density of the frames over (φ, ψ). Each further row shows one fitted model,
one panel per latent dimension coloured by its value, titled with the top variable of the
correlation analysis (the criterion of ``cv_ala2.py``) and, for the model, whether the
interpretation criterion holds and the correlation between the latents that carry φ and ψ. A
latent that folds (one colour at both ends of a basin path) is what the criterion rewards when
the data tie ψ to φ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from cv_ala2 import interpretation, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--latents", type=Path, required=True, help="directory written by cv_ala2.py --latents")
    parser.add_argument("--methods", default="ours,ours-disentangled")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--title", default=None, help="figure title (default: the data directory)")
    parser.add_argument("--every", type=int, default=2, help="draw every n-th frame in the coloured panels")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    _, colvar, variables, periodic = load(args.data)
    phi, psi = colvar["phi"].values, colvar["psi"].values
    models = [(m, s) for m in args.methods.split(",") for s in args.seeds]
    missing = [f"{m}_seed{s}.npy" for m, s in models if not (args.latents / f"{m}_seed{s}.npy").exists()]
    if missing:
        raise SystemExit(f"not in {args.latents}: {', '.join(missing)} (run cv_ala2.py with --latents first)")
    n = len(models)
    fig, axes = plt.subplots(n, 3, figsize=(10.5, 3.1 * n), squeeze=False)
    for row, (method, seed) in enumerate(models):
        z = np.load(args.latents / f"{method}_seed{seed}.npy")
        verdict = interpretation(z, variables, periodic)
        ax = axes[row, 0]
        ax.hist2d(phi, psi, bins=60, range=[[-np.pi, np.pi]] * 2, cmap="Greys", norm=matplotlib.colors.LogNorm())
        ok = "holds" if verdict["interpretation_ok"] else "fails"
        between = verdict["corr_between_them"]
        ax.set_title(f"{method}, seed {seed}: {ok}" + (f" (r = {between:.2f})" if between is not None else ""),
                     fontsize=9)  # fmt: skip
        for d in range(2):
            ax = axes[row, d + 1]
            lo, hi = np.percentile(z[:, d], [1, 99])
            k = slice(None, None, args.every)
            sc = ax.scatter(phi[k], psi[k], c=z[k, d], s=0.5, cmap="coolwarm", vmin=lo, vmax=hi, rasterized=True)
            name, value = verdict["top"][str(d)][0]
            ax.set_title(f"latent {d}: top {name} ({value:+.2f})", fontsize=9)
            fig.colorbar(sc, ax=ax, fraction=0.046)
        for ax in axes[row]:
            ax.set(xlim=(-np.pi, np.pi), ylim=(-np.pi, np.pi), xlabel="φ (rad)", ylabel="ψ (rad)")
    fig.suptitle(args.title or str(args.data), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=60)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
