"""Atomic I/O, resumable ensembles and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surrodyn.cli.main import main
from surrodyn.data import read_dataset, write_dataset
from surrodyn.data.io import atomic_write_json, strict_json
from surrodyn.errors import OutputError
from surrodyn.kmc import KMCConfig, run_ensemble
from surrodyn.kmc import ensemble as ensemble_mod

SMOKE = ["--set", "nx=6", "--set", "ny=6", "--set", "output_times_s={kind: log, start: 1e-9, stop: 1e-6, num: 6}"]


def test_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, small_config, monkeypatch):
    ds = run_ensemble(small_config, replicas=2, seed=0)
    out = tmp_path / "a.nc"
    write_dataset(ds, out)
    before = out.read_bytes()
    import xarray as xr

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(ds, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]  # no temporary left behind


def test_round_trip(tmp_path, small_config):
    ds = run_ensemble(small_config, replicas=2, seed=0)
    back = read_dataset(write_dataset(ds, tmp_path / "r.nc"))
    np.testing.assert_array_equal(back["density"].values, ds["density"].values)
    assert KMCConfig.from_dict(__import__("yaml").safe_load(back.attrs["config_yaml"])) == small_config


@pytest.mark.parametrize("bad", ["nodir/x.nc", "x.txt", "."])
def test_unwritable_outputs_are_refused_before_work(tmp_path, bad):
    from surrodyn.data import check_writable

    with pytest.raises(OutputError):
        check_writable(tmp_path / bad)


def test_interrupted_ensemble_resumes_from_finished_replicas(tmp_path, small_config, monkeypatch):
    ckpt = tmp_path / "parts"
    full = run_ensemble(small_config, replicas=4, seed=3)
    calls = []
    real = ensemble_mod.Simulation

    class Crashing(real):
        def __init__(self, *a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            super().__init__(*a, **k)

    monkeypatch.setattr(ensemble_mod, "Simulation", Crashing)
    with pytest.raises(KeyboardInterrupt):
        run_ensemble(small_config, replicas=4, seed=3, checkpoint_dir=ckpt)
    assert len(list(ckpt.glob("replica_*.npz"))) == 2
    monkeypatch.setattr(ensemble_mod, "Simulation", real)
    calls.clear()
    resumed = run_ensemble(small_config, replicas=4, seed=3, checkpoint_dir=ckpt)
    np.testing.assert_array_equal(resumed["occupancy"].values, full["occupancy"].values)
    with pytest.raises(ValueError, match="another run"):
        run_ensemble(small_config, replicas=4, seed=4, checkpoint_dir=ckpt)


def test_cli_run_and_plot(tmp_path, capsys):
    out = tmp_path / "seed.nc"
    assert main(["kmc", "run", *SMOKE, "--out", str(out), "--replicas", "2", "--plot", "--no-progress"]) == 0
    assert out.exists() and out.with_suffix(".png").stat().st_size > 10_000
    assert not (tmp_path / "seed.nc.parts").exists()
    ds = read_dataset(out)
    assert ds.sizes["replica"] == 2 and ds.attrs["seed"] == 0
    fig = tmp_path / "fig.png"
    assert main(["kmc", "plot", str(out), "--times", "1e-7", "1e-6", "--out", str(fig)]) == 0
    assert fig.stat().st_size > 10_000


def test_cli_example_config_smoke(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "kmc_seed_case.yaml"
    out = tmp_path / "ex.nc"
    assert main(["kmc", "run", str(example), *SMOKE, "--out", str(out), "--replicas", "1", "--no-progress"]) == 0
    ds = read_dataset(out)
    assert ds.attrs["permittivity"] == 100.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kmc", "run", "--set", "voltage=1"], "did you mean 'voltage_V'"),
        (["kmc", "run", "--set", "nx"], "KEY=VALUE"),
        (["kmc", "run", "--out", "/nonexistent-dir/x.nc"], "does not exist"),
        (["kmc", "run", "missing.yaml"], "cannot read"),
        (["kmc", "plot", "missing.nc"], "no dataset"),
    ],
)
def test_cli_errors_exit_2_with_a_message(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_template_is_the_seed_case(capsys):
    import yaml

    from surrodyn.kmc import seed_case_config

    assert main(["kmc", "template"]) == 0
    assert KMCConfig.from_dict(yaml.safe_load(capsys.readouterr().out)) == seed_case_config()


def test_strict_json_writes_null_for_nan_and_infinities(tmp_path):
    obj = {"a": float("nan"), "b": [1.5, float("inf"), (-float("inf"), np.float64("nan"))], "c": "x", "d": None}
    text = strict_json(obj)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None, [None, None]], "c": "x", "d": None}
    path = atomic_write_json(tmp_path / "r.json", obj)
    assert path.read_text() == text + "\n"
    assert json.loads(strict_json({"finite": 0.1})) == {"finite": 0.1}
