"""The kMC-vs-continuum figure: runs on every dataset shape it accepts and refuses mismatched grids."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from surrodyn.continuum import solve_mpnp
from surrodyn.errors import ConfigError
from surrodyn.kmc import KMCConfig, run_ensemble
from surrodyn.plot import plot_comparison

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny():
    """A 4x4x12 lattice with 10 ions, 3 replicas to 2 µs, and its continuum twin (about 2 s)."""
    cfg = KMCConfig(
        nx=4,
        ny=4,
        nz=12,
        n_ions=10,
        permittivity=30.0,
        voltage_V=0.2,
        self_image=False,
        output_times_s={"kind": "log", "start": 1e-8, "stop": 2e-6, "num": 8},
    )
    return cfg, run_ensemble(cfg, replicas=3, seed=3), solve_mpnp(cfg)


def test_returns_figure_and_writes_png(tiny, tmp_path):
    _, kmc, cont = tiny
    path = tmp_path / "cmp.png"
    fig = plot_comparison(kmc, cont, path=path)
    try:
        assert len([ax for ax in fig.axes if ax.get_visible()]) == 3
        assert path.read_bytes()[:8] == PNG_MAGIC
        # kMC mean and continuum of the last record are on the steady-state panel
        lines = fig.axes[1].get_lines()
        ydata = [np.asarray(line.get_ydata()) for line in lines]
        assert any(np.allclose(y, cont["density"].values[-1]) for y in ydata)
        assert any(np.allclose(y, kmc["density"].mean("replica").values[-1]) for y in ydata)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("shape", ["replica-only", "statistics-only", "one-replica"])
def test_accepts_every_dataset_shape(tiny, shape):
    _, kmc, cont = tiny
    if shape == "replica-only":
        ds = kmc[["density", "occupancy", "electrode_charge"]]
    elif shape == "statistics-only":
        ds = kmc.drop_vars(["density", "occupancy", "electrode_charge", "occupancy_xz"], errors="ignore")
        ds = ds.drop_dims("replica")
    else:
        ds = kmc[["density", "occupancy", "electrode_charge"]].isel(replica=0)
    fig = plot_comparison(ds, cont, times_s=[1e-7, 1e-6])
    try:
        expected = kmc["density"].mean("replica") if shape != "one-replica" else kmc["density"].isel(replica=0)
        ydata = [np.asarray(line.get_ydata()) for line in fig.axes[1].get_lines()]
        assert any(np.allclose(y, expected.values[-1]) for y in ydata)
        bands = len(fig.axes[1].collections)
        if shape == "one-replica":
            assert bands == 0 and "1 replica" in fig.axes[0].get_title()
        else:
            assert bands == 2 and "3 replicas" in fig.axes[0].get_title()  # ±1 s.d. and 5-95 %
    finally:
        plt.close(fig)


def test_mismatched_z_grids_are_refused(tiny):
    cfg, kmc, _ = tiny
    finer = solve_mpnp(cfg, refine=2)
    with pytest.raises(ConfigError, match="z grids differ"):
        plot_comparison(kmc, finer)
    with pytest.raises(ValueError, match="z grids differ"):
        plot_comparison(kmc, solve_mpnp(cfg.replace(nz=11)))


def test_time_without_common_record_is_refused(tiny):
    cfg, kmc, _ = tiny
    other = solve_mpnp(cfg.replace(output_times_s=[1e-8, 5e-7, 2e-6]))
    with pytest.raises(ConfigError, match="no common record"):
        plot_comparison(kmc, other, times_s=[1e-7])


def test_not_a_field_dataset(tiny):
    _, kmc, cont = tiny
    with pytest.raises(ConfigError, match="continuum_ds"):
        plot_comparison(kmc, cont.drop_vars(["density"]))
    with pytest.raises(ConfigError, match=r"kmc_ds must be an xarray\.Dataset"):
        plot_comparison(kmc["density"], cont)
