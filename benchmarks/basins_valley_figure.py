"""Figure of the split-and-merge step on saved basin analyses (``basins.nc`` of ``basins_cu.py``).

One row per run: the t-SNE map by temperature, by the fragments after splitting, by the final
basins, and the density of the frames of every pair of neighbouring fragments projected on the
line joining their centroids (the valley ratio of :func:`surrodyn.analysis.valley_ratio`).

    python benchmarks/basins_valley_figure.py runs/basins20_a/cu55_ih/s4 runs/basins20_a/cu147_ih/s13 \\
        --out docs/img/basins/split_and_merge.png
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy.stats import gaussian_kde
from sklearn.preprocessing import StandardScaler

from surrodyn.analysis import valley_ratio
from surrodyn.data.io import atomic_write_bytes


def _projection(xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    ca, cb = xa.mean(axis=0), xb.mean(axis=0)
    u = (cb - ca) / np.linalg.norm(cb - ca)
    p = np.concatenate([xa @ u, xb @ u])
    grid = np.linspace(p.min(), p.max(), 400)
    return grid, gaussian_kde(p)(grid), float(ca @ u), float(cb @ u)


def draw(runs: list[Path], out: Path) -> None:
    """Draw one row per run into ``out`` (PNG, written atomically)."""
    fig, axes = plt.subplots(len(runs), 4, figsize=(17, 3.9 * len(runs)), squeeze=False)
    for row, run in zip(axes, runs, strict=True):
        with xr.open_dataset(run / "basins.nc") as ds:
            emb, t = ds.embedding.values, ds.target_temperature.values
            frag, basin = ds.fragment.values, ds.basin.values
            xs = StandardScaler().fit_transform(ds.descriptors.values)
            report = json.loads(ds.attrs["report"])
        name = f"{report['system']} ({run.name})"
        sc = row[0].scatter(*emb.T, c=t, s=3, cmap="coolwarm")
        fig.colorbar(sc, ax=row[0], label="T (K)")
        row[0].set_title(f"{name}: t-SNE map")
        for ax, lab, title in ((row[1], frag, "after splitting"), (row[2], basin, "basins after merging")):
            for c in np.unique(lab):
                m = lab == c
                ax.scatter(*emb[m].T, s=3, color="0.7" if c < 0 else None, label="noise" if c < 0 else str(c))
            ax.set_title(f"{title} ({len(set(lab.tolist()) - {-1})})")
            ax.legend(markerscale=4, fontsize=7, loc="best")
        # neighbouring fragments in time order: consecutive by median frame
        ids = sorted((c for c in np.unique(frag) if c >= 0), key=lambda c: np.median(np.flatnonzero(frag == c)))
        for a, b in itertools.pairwise(ids):
            grid, f, pa, pb = _projection(xs[frag == a], xs[frag == b])
            r = valley_ratio(xs[frag == a], xs[frag == b])
            x0 = (grid - pa) / (pb - pa)
            row[3].plot(x0, f / f.max(), label=f"{a}|{b}: valley ratio {r:.2f}")
        row[3].axvline(0, color="k", lw=0.5)
        row[3].axvline(1, color="k", lw=0.5)
        row[3].set_xlabel("position on the centroid line (0, 1: the two centroids)")
        row[3].set_ylabel("density (scaled)")
        row[3].set_title("neighbouring fragments: merge at ratio ≥ 0.6")
        row[3].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories holding basins.nc")
    ap.add_argument("--out", required=True, help="PNG to write")
    args = ap.parse_args()
    draw([Path(r) for r in args.runs], Path(args.out))


if __name__ == "__main__":
    main()
