"""Shared fixtures: small toy systems with explicit seeds."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture
def small_config():
    """A small strongly interacting system with every term of the energy switched on."""
    from surrodyn.kmc import KMCConfig

    return KMCConfig(
        nx=5,
        ny=4,
        nz=8,
        n_ions=25,
        permittivity=5.0,
        disorder_eV=0.05,
        voltage_V=0.3,
        self_image=True,
        output_times_s=[1e-9, 1e-8],
    )
