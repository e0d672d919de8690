"""Figure of the split-and-merge step on saved basin analyses (``basins.nc`` of ``basins_cu.py``).

One row per run (:func:`surrodyn.plot.basins.plot_split_and_merge`, the ``split_and_merge.png``
every basin analysis writes): the t-SNE map by temperature, by the fragments after splitting,
by the final basins, and the density of the frames of every two fragments consecutive in time,
projected on the line joining their centroids, with its valley ratio.

    python benchmarks/basins_valley_figure.py runs/basins20_a/cu55_ih/s4 runs/basins20_a/cu147_ih/s13 \\
        --out docs/img/basins/split_and_merge.png
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import xarray as xr
from sklearn.preprocessing import StandardScaler

from surrodyn.data.io import atomic_write_bytes
from surrodyn.plot.basins import plot_split_and_merge


def draw(runs: list[Path], out: Path) -> None:
    """Draw one row per run into ``out`` (PNG, written atomically)."""
    fig, axes = plt.subplots(len(runs), 4, figsize=(17, 3.9 * len(runs)), squeeze=False, constrained_layout=True)
    for row, run in zip(axes, runs, strict=True):
        with xr.open_dataset(run / "basins.nc") as ds:
            report = json.loads(ds.attrs["report"])
            plot_split_and_merge(
                ds.embedding.values,
                ds.target_temperature.values,
                ds.fragment.values,
                ds.basin.values,
                StandardScaler().fit_transform(ds.descriptors.values),  # BasinFinder's scaling
                title=f"{report['system']} ({run.name})",
                axes=row,
            )
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
