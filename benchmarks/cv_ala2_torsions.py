"""How strongly the data tie ψ to φ: the interpretation criterion applied to the torsions themselves.

    python benchmarks/cv_ala2_torsions.py /work/data/ala2_vacuum /work/data/ala2_obc

The issue's interpretation criterion asks for two latents whose top variables are φ and ψ and whose
correlation is at most 0.2. Take the torsions themselves as the two latents: each is unwrapped at
the angle where the data are thinnest (fewest frames within ±5°), which is the most faithful 2-D
chart of the sampled part of the (φ, ψ) torus. Their top variables are then φ and ψ exactly
(Spearman 1), so the criterion reduces to the correlation between them. Printed per dataset: the
cuts, the fraction of frames within ±5° of each cut, and the Pearson, Spearman and normal-scores
(Pearson after a Gaussian rank transform, what a latent with a standard normal marginal would show)
correlations. Where they exceed 0.2 in magnitude, a latent can only meet the criterion by folding
or by cutting through populated regions, that is, by being a less faithful chart than (φ, ψ).

``--rank`` also names the principal directions of the standardised, unwrapped (φ, ψ): the
direction along which both change and the one across it, each ranked against the automatic
geometric library by the benchmark's own criterion (reads the trajectory; a few seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.stats import norm, rankdata, spearmanr


def thinnest_cut(angle: np.ndarray, half_width_deg: float = 5.0, steps: int = 360) -> tuple[float, float]:
    """The angle (rad) with the fewest frames within ±``half_width_deg``, and that fraction of frames."""
    grid = np.linspace(-np.pi, np.pi, steps, endpoint=False)
    near = np.abs(np.angle(np.exp(1j * (angle[None, :] - grid[:, None])))) < np.radians(half_width_deg)
    density = near.mean(axis=1)
    i = int(np.argmin(density))
    return float(grid[i]), float(density[i])


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Gaussian rank transform: the standard normal quantiles of the ranks."""
    return norm.ppf((rankdata(values) - 0.5) / values.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, nargs="+", help="directories with colvar.nc (cv_ala2_data.py)")
    parser.add_argument("--rank", action="store_true", help="rank the library against the principal directions")
    args = parser.parse_args()
    print("data | biased | cut φ (frames ±5°) | cut ψ (frames ±5°) | Pearson | Spearman | normal scores")
    for path in args.data:
        ds = xr.open_dataset(path / "colvar.nc")
        phi, psi = ds["phi"].values, ds["psi"].values
        (c1, d1), (c2, d2) = thinnest_cut(phi), thinnest_cut(psi)
        a, b = np.mod(phi - c1, 2 * np.pi), np.mod(psi - c2, 2 * np.pi)
        pearson = np.corrcoef(a, b)[0, 1]
        rank = spearmanr(a, b).statistic
        gauss = np.corrcoef(normal_scores(a), normal_scores(b))[0, 1]
        print(f"{path.name} | {ds.attrs.get('biased', '?')} | {c1:+.2f} ({d1:.4f}) | {c2:+.2f} ({d2:.4f}) | "
              f"{pearson:+.3f} | {rank:+.3f} | {gauss:+.3f}")  # fmt: skip
        if args.rank:
            principal_directions(path, a, b)


def principal_directions(path: Path, a: np.ndarray, b: np.ndarray) -> None:
    """Print the top variables of the principal directions of the standardised, unwrapped torsions."""
    from cv_ala2 import load

    from surrodyn.cv import rank_variables, top_variables

    x = np.column_stack([a, b])
    x = (x - x.mean(0)) / x.std(0)
    w, v = np.linalg.eigh(np.cov(x.T))
    z = x @ v[:, ::-1]  # largest variance first
    _, _, variables, periodic = load(path)
    table = rank_variables(z, variables, periodic=periodic, mutual_information=False)
    for d, items in top_variables(table, by="spearman", n=3).items():
        share = w[::-1][d] / w.sum()
        print(f"  {'along' if d == 0 else 'across'} ({share:.0%} of the variance): "
              + ", ".join(f"{n} {r:+.3f}" for n, r in items))  # fmt: skip


if __name__ == "__main__":
    main()
