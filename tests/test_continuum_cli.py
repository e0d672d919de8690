"""The ``surrodyn continuum`` command line."""

from __future__ import annotations

import numpy as np
import pytest

from surrodyn.cli.main import main
from surrodyn.continuum import solve_mpnp
from surrodyn.data import read_dataset
from surrodyn.kmc import seed_case_config


def test_run_writes_the_seed_case_twin_and_its_figure(tmp_path, capsys):
    out = tmp_path / "twin.nc"
    assert main(["continuum", "run", "--out", str(out), "--plot"]) == 0
    ds = read_dataset(out)
    direct = solve_mpnp(seed_case_config())
    np.testing.assert_allclose(ds["density"].values, direct["density"].values, rtol=1e-12)
    assert (tmp_path / "twin.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().err


def test_run_with_overrides_and_refinement(tmp_path):
    out = tmp_path / "fine.nc"
    args = ["continuum", "run", "--out", str(out), "--refine", "2", "--contact", "continuum", "--set", "voltage_V=1.0"]
    assert main(args) == 0
    ds = read_dataset(out)
    assert ds.sizes["z"] == 2 * 100 and ds.attrs["contact"] == "continuum" and ds.attrs["refine"] == 2
    assert ds["voltage"].values[-1] == 1.0


def test_info_prints_scales_and_layers(capsys):
    assert main(["continuum", "info"]) == 0
    text = capsys.readouterr().out
    for word in ("Debye length", "Bjerrum length", "coupling", "accumulation drop", "depletion width", "RC"):
        assert word in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["continuum", "run", "--refine", "0"], "refine"),
        (["continuum", "info", "--set", "permittivity=-1"], "permittivity"),
        (["continuum", "run", "missing.yaml"], "missing.yaml"),
    ],
)
def test_errors_exit_2_with_a_message(tmp_path, monkeypatch, args, message, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
