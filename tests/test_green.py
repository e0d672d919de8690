"""Validation 1: the Dirichlet-slab Green's table."""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.kmc import GreenTable, parallel_plate_green


@pytest.mark.parametrize("shape", [(4, 5, 6), (6, 6, 11), (3, 7, 2)])
def test_zero_on_both_electrode_planes(shape):
    nx, ny, nz = shape
    t = GreenTable(nx, ny, nz)
    dx, dy, zp = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    assert np.abs(t.dirichlet(dx, dy, -1, zp)).max() <= 1e-14
    assert np.abs(t.dirichlet(dx, dy, nz, zp)).max() <= 1e-14


@pytest.mark.parametrize("shape", [(4, 5, 6), (6, 6, 11)])
def test_discrete_poisson_residual(shape):
    """sum_nb [G(r) - G(r+e)] = delta_{r, r'} inside the slab, for every source layer."""
    nx, ny, nz = shape
    t = GreenTable(nx, ny, nz)
    x, y, z = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(-1, nz + 1), indexing="ij")
    worst = 0.0
    for zs in range(nz):
        g = t.dirichlet(x, y, z, zs)  # source at (0, 0, zs), field on layers -1..nz
        inner = g[:, :, 1:-1]
        lap = (
            6 * inner
            - np.roll(inner, 1, 0)
            - np.roll(inner, -1, 0)
            - np.roll(inner, 1, 1)
            - np.roll(inner, -1, 1)
            - g[:, :, :-2]
            - g[:, :, 2:]
        )
        delta = np.zeros_like(lap)
        delta[0, 0, zs] = 1.0
        worst = max(worst, np.abs(lap - delta).max())
    assert worst <= 1e-12


def test_symmetric_in_its_arguments():
    t = GreenTable(4, 5, 7)
    g = t.full()
    assert np.abs(g - g.T).max() <= 1e-15
    # and positive definite (a physical Coulomb energy is positive)
    assert np.linalg.eigvalsh(g).min() > 0


@pytest.mark.parametrize("shape", [(4, 5, 6), (8, 8, 20), (1, 1, 5)])
def test_planar_average_is_parallel_plate_capacitor(shape):
    nx, ny, nz = shape
    t = GreenTable(nx, ny, nz)
    dx, dy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    z = np.arange(nz)
    avg = np.array([[t.dirichlet(dx, dy, zi, zj).mean() for zj in z] for zi in z])
    pp = parallel_plate_green(nz) / (nx * ny)
    assert np.abs(avg - pp).max() <= 1e-12
    # closed form (z< + 1)(nz - z>)/(nz + 1), checked on two entries by hand
    assert parallel_plate_green(3)[0, 0] == pytest.approx(1 * 3 / 4)
    assert parallel_plate_green(3)[0, 2] == pytest.approx(1 * 1 / 4)


def test_far_field_is_coulombic():
    """Deep inside a large slab the lattice Green's function tends to 1/(4 pi r)."""
    t = GreenTable(64, 64, 63)
    # images and periodic copies add a nearly constant offset: compare differences
    diff = t.dirichlet(4, 0, 31, 31) - t.dirichlet(8, 0, 31, 31)
    assert diff == pytest.approx((1 / 4 - 1 / 8) / (4 * np.pi), rel=0.05)
