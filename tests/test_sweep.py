"""Sweeps: spec validation, designs, point seeds and configs, Dask runs, the store, export, CLI."""

from __future__ import annotations

import copy
import logging
import sys
import types

import numpy as np
import pytest
import xarray as xr
import yaml

from surrodyn.cli.main import main
from surrodyn.errors import ConfigError, ConfigTypeError
from surrodyn.protocols import Schedule
from surrodyn.sweep import (
    PointTask,
    SweepSpec,
    SweepStore,
    compute_point,
    open_sweep,
    parameter_table,
    point_config,
    point_seed,
    run_sweep,
    sweep_status,
)

TINY_BASE = {
    "nx": 4,
    "ny": 4,
    "nz": 6,
    "concentration_cm3": 5e20,
    "permittivity": 20.0,
    "voltage_V": 0.3,
    "output_times_s": [1e-9, 1e-8, 1e-7],
    "record_xz": False,
}


def tiny(**changes) -> dict:
    """A 4-point grid on a 4×4×6 lattice; point 3 puts 288 ions in 96 sites and must fail."""
    spec = {
        "name": "tiny",
        "seed": 3,
        "sampling": {"method": "grid"},
        "parameters": {"concentration_cm3": [2e20, 5e20, 8e20, 3e21], "permittivity": 20.0},
        "kmc": {"base": dict(TINY_BASE), "replicas": 2},
    }
    spec.update(copy.deepcopy(changes))
    return spec


def valid_tiny(**changes) -> dict:
    return tiny(parameters={"concentration_cm3": [2e20, 5e20], "voltage_V": [0.1, 0.5]}, **changes)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as c:
        yield c


# ---------------------------------------------------------------------- spec validation
@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"paramters": {}}, ConfigError, "did you mean 'parameters'"),
        ({"parameters": {"permitivity": [10, 20]}}, ConfigError, "did you mean 'permittivity'"),
        ({"parameters": {"nx": [4, 6]}}, ConfigError, "parameters.nx cannot be swept.*same time and z grids"),
        ({"parameters": {"spacing_nm": [1, 2]}}, ConfigError, "spacing_nm cannot be swept"),
        ({"parameters": {"output_times_s": [1e-9]}}, ConfigError, "output_times_s cannot be swept"),
        ({"parameters": {"permittivity": {"min": 0, "max": 10, "scale": "log"}}}, ConfigError, "permittivity.min"),
        ({"parameters": {"voltage_V": {"min": 1, "max": 0.5}}}, ConfigError, "voltage_V.max"),
        ({"parameters": {"voltage_V": {"min": 0, "max": 1, "scale": "cubic"}}}, ConfigError, "voltage_V.scale"),
        ({"parameters": {"voltage_V": {"min": 0, "max": 1, "stop": 2}}}, ConfigError, "parameters.voltage_V"),
        ({"parameters": {"voltage_V": {"min": 0, "max": 1}}}, ConfigError, "Add num"),
        ({"parameters": {"disorder_eV": [0.0, -0.1]}}, ConfigError, "disorder_eV.values"),
        ({"parameters": {"voltage_V": [0.1, 0.1]}}, ConfigError, "distinct"),
        ({"parameters": {"voltage_V": "high"}}, ConfigTypeError, "parameters.voltage_V"),
        ({"parameters": {}}, ConfigError, "at least one parameter"),
        ({"sampling": {"method": "sobol"}}, ConfigError, "sampling.n_points"),
        ({"sampling": {"method": "random", "n_points": 4}}, ConfigError, "sampling.method"),
        ({"sampling": {"method": "grid", "n_points": 4}}, ConfigError, "sampling.n_points"),
        ({"sampling": {"method": "lhs", "n_points": 4, "seed": 1}}, ConfigError, "unknown key.*sampling"),
        (
            {"sampling": {"method": "lhs", "n_points": 4}, "parameters": {"voltage_V": {"min": 0, "max": 1, "num": 3}}},
            ConfigError,
            "voltage_V.num",
        ),
        (
            {"parameters": {"voltage_rise_time_s": [1e-8], "voltage_ramp_rate_V_s": [1e6]}},
            ConfigError,
            "give only one",
        ),
        ({"parameters": {"voltage_ramp_rate_V_s": [0.0, 1e6]}}, ConfigError, "voltage_ramp_rate_V_s.values"),
        ({"kmc": {"base": {**TINY_BASE, "n_ions": 5}}}, ConfigError, "kmc.base.n_ions"),
        (
            {
                "parameters": {"voltage_V": [0.1, 0.2]},
                "kmc": {
                    "base": {
                        **TINY_BASE,
                        "concentration_cm3": 2e20,
                        "voltage_V": {"kind": "step", "before": 0, "after": 1, "at_s": 1e-9},
                    }
                },
            },
            ConfigError,
            "kmc.base.voltage_V",
        ),
        ({"kmc": {"base": {**TINY_BASE, "temperatur_K": 300}}}, ConfigError, "kmc.base.*did you mean 'temperature_K'"),
        ({"kmc": {"base": "no/such/file.yaml"}}, ConfigError, "kmc.base"),
        ({"kmc": {"base": dict(TINY_BASE), "replicas": 0}}, ConfigError, "kmc.replicas"),
        ({"kmc": {"base": dict(TINY_BASE), "quantiles": [0.5, 1.5]}}, ConfigError, "kmc.quantiles"),
        ({"kmc": {"base": dict(TINY_BASE), "replica": 2}}, ConfigError, "did you mean 'replicas'"),
        ({"continuum": "yes"}, ConfigTypeError, "continuum"),
        ({"seed": -1}, ConfigError, "seed"),
    ],
)
def test_bad_specs_are_rejected_by_name(change, error, words):
    with pytest.raises(error, match=words):
        SweepSpec.from_dict(tiny(**change))


def test_canonical_yaml_round_trip_and_base_from_a_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TINY_BASE))
    data = tiny(kmc={"base": "base.yaml", "replicas": 2, "output_times_s": [1e-9, 1e-7]})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    spec = SweepSpec.from_yaml(tmp_path / "spec.yaml")
    assert spec.base.output_times_s == (1e-9, 1e-7)  # the override wins
    assert spec.base.nx == 4 and spec.size == 4
    again = SweepSpec.from_dict(yaml.safe_load(spec.to_yaml()))
    assert again == spec and again.fingerprint() == spec.fingerprint()
    other = SweepSpec.from_dict(yaml.safe_load(spec.to_yaml()) | {"seed": 4})
    assert other.fingerprint() != spec.fingerprint()


def test_swept_values_fill_a_base_that_does_not_set_them():
    # the default concentration (3e18) holds less than one ion on 96 sites; the sweep's first value is used
    base = {k: v for k, v in TINY_BASE.items() if k != "concentration_cm3"}
    spec = SweepSpec.from_dict(tiny(kmc={"base": base}))
    assert spec.base.concentration_cm3 == 2e20
    ranged = tiny(kmc={"base": base}, parameters={"concentration_cm3": {"min": 1e20, "max": 4e20, "num": 2}})
    assert SweepSpec.from_dict(ranged).base.concentration_cm3 == 2.5e20


# ---------------------------------------------------------------------- designs
def test_grid_is_the_product_with_the_first_parameter_slowest():
    spec = SweepSpec.from_dict(
        tiny(parameters={"voltage_V": [0.1, 0.2], "permittivity": {"min": 10, "max": 1000, "num": 3, "scale": "log"}})
    )
    table = parameter_table(spec)
    np.testing.assert_array_equal(table["voltage_V"], [0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(table["permittivity"], [10, 100, 1000] * 2)


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_space_filling_designs_are_reproducible_stratified_and_in_bounds(method):
    n = 16

    def design(seed, **extra):
        params = {
            "permittivity": {"min": 100, "max": 1400, "scale": "log"},
            "voltage_V": {"min": 0.05, "max": 2.0},
            **extra,
        }
        return parameter_table(
            SweepSpec.from_dict(tiny(seed=seed, sampling={"method": method, "n_points": n}, parameters=params))
        )

    a, b, c = design(0), design(0), design(1)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])
    assert np.all((a["permittivity"] >= 100) & (a["permittivity"] <= 1400))
    assert np.all((a["voltage_V"] >= 0.05) & (a["voltage_V"] <= 2.0))
    # one point in each of n equal strata per dimension (log-uniform for a log scale)
    u_eps = (np.log(a["permittivity"]) - np.log(100)) / (np.log(1400) - np.log(100))
    u_v = (a["voltage_V"] - 0.05) / 1.95
    for u in (u_eps, u_v):
        np.testing.assert_array_equal(np.sort(np.floor(u * n)), np.arange(n))
    # a fixed parameter is no dimension of the design: the others do not move
    d = design(0, temperature_K=350.0)
    np.testing.assert_array_equal(d["temperature_K"], 350.0)
    np.testing.assert_array_equal(d["voltage_V"], a["voltage_V"])


def test_listed_values_are_levels_of_a_latin_hypercube():
    spec = SweepSpec.from_dict(
        tiny(sampling={"method": "lhs", "n_points": 6}, parameters={"permittivity": [100, 677, 1400]})
    )
    values, counts = np.unique(parameter_table(spec)["permittivity"], return_counts=True)
    np.testing.assert_array_equal(values, [100, 677, 1400])
    np.testing.assert_array_equal(counts, [2, 2, 2])


def test_point_seeds_are_spawned_children_independent_of_the_number_of_points():
    spawned = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(spawned):
        assert point_seed(7, i) == int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))
    seeds = {point_seed(7, i) for i in range(100)}
    assert len(seeds) == 100 and point_seed(8, 0) != point_seed(7, 0)
    assert all(0 <= s < 2**63 for s in seeds)


# ---------------------------------------------------------------------- protocol descriptors
def test_protocol_descriptors_become_schedules():
    spec = SweepSpec.from_dict(
        tiny(
            parameters={"voltage_V": [0.5], "voltage_rise_time_s": [2e-8], "temperature_rate_K_s": [1e8]},
            protocol_steps=4,
        )
    )
    cfg = point_config(spec, {"voltage_V": 0.5, "voltage_rise_time_s": 2e-8, "temperature_rate_K_s": 1e8})
    assert isinstance(cfg.voltage_V, Schedule)
    np.testing.assert_allclose(cfg.voltage_V.times_s, [0, 5e-9, 1e-8, 1.5e-8, 2e-8])
    np.testing.assert_allclose(cfg.voltage_V.values, [0.0625, 0.1875, 0.3125, 0.4375, 0.5])
    assert cfg.voltage_V(1.0) == 0.5
    assert cfg.temperature_K(0.0) == pytest.approx(300 + 1e8 * 1.25e-8)  # midpoint of the first step
    assert cfg.temperature_K(1.0) == pytest.approx(300 + 1e8 * 1e-7)  # held after the last output time
    step = point_config(spec, {"voltage_V": 0.5, "voltage_on_s": 1e-8})
    assert step.voltage_V.times_s == (0.0, 1e-8) and step.voltage_V.values == (0.0, 0.5)
    rate = point_config(spec, {"voltage_V": -0.5, "voltage_ramp_rate_V_s": 1e7})
    assert rate.voltage_V.times_s[-1] == pytest.approx(5e-8) and rate.voltage_V.values[-1] == -0.5
    assert point_config(spec, {"voltage_V": 0.5}).voltage_V.is_constant
    with pytest.raises(ConfigError, match="temperature_K"):
        point_config(spec, {"temperature_rate_K_s": -1e10})  # cools below 0 K


def test_a_point_computes_its_statistics_and_the_protocol(tmp_path):
    spec = SweepSpec.from_dict(
        tiny(parameters={"concentration_cm3": [5e20], "voltage_rise_time_s": [2e-8]}, protocol_steps=4)
    )
    params = {"concentration_cm3": 5e20, "voltage_rise_time_s": 2e-8}
    task = PointTask(3, params, point_seed(3, 0), point_config(spec, params), 2, spec.quantiles, True, False, "abc")
    ds = compute_point(task, checkpoint_dir=tmp_path / "partial")
    assert ds.attrs["point"] == 3 and ds.attrs["sweep_fingerprint"] == "abc" and ds.attrs["seed"] == task.seed
    np.testing.assert_allclose(ds["voltage"].values, [0.0375, 0.1875, 0.3])  # the rise, then the plateau
    assert ds["density_quantile"].dims == ("quantile", "time", "z")
    assert ds["density"].sizes["replica"] == 2  # store_replicas
    np.testing.assert_allclose(ds["density"].mean("replica"), ds["density_mean"])
    again = compute_point(task, checkpoint_dir=tmp_path / "partial")  # from the checkpoints
    xr.testing.assert_identical(again, ds)


def _fake_continuum(monkeypatch, shift_time=False):
    """A stand-in for surrodyn.continuum: the kMC grids, simple fields."""

    def solve_mpnp(config):
        t = np.asarray(config.output_times_s) * (1.5 if shift_time else 1.0)
        z = (np.arange(config.nz) + 1) * config.spacing_m
        occ = np.full((t.size, z.size), config.filling)
        return xr.Dataset(
            {
                "occupancy": (("time", "z"), occ),
                "density": (("time", "z"), occ / config.filling, {"units": "1"}),
                "potential": (("time", "z"), np.zeros_like(occ), {"units": "V"}),
                "electrode_charge": (("time",), np.zeros(t.size), {"units": "C m-2"}),
                "current": (("time",), np.zeros(t.size), {"units": "A m-2"}),
            },
            coords={"time": t, "z": z},
        )

    module = types.ModuleType("surrodyn.continuum")
    module.solve_mpnp = solve_mpnp
    monkeypatch.setitem(sys.modules, "surrodyn.continuum", module)


def test_the_continuum_twin_is_stored_with_a_prefix(monkeypatch):
    _fake_continuum(monkeypatch)
    spec = SweepSpec.from_dict(valid_tiny(continuum=True))
    params = {"concentration_cm3": 2e20, "voltage_V": 0.1}
    task = PointTask(0, params, 1, point_config(spec, params), 2, spec.quantiles, False, True, "abc")
    ds = compute_point(task)
    for name in ("density", "occupancy", "potential", "electrode_charge", "current"):
        assert f"continuum_{name}" in ds
    assert ds["continuum_density"].dims == ("time", "z")
    np.testing.assert_array_equal(ds["continuum_density"].values, 1.0)
    _fake_continuum(monkeypatch, shift_time=True)
    with pytest.raises(ConfigError, match="time grid"):
        compute_point(task)


# ---------------------------------------------------------------------- runs on Dask
def test_a_tiny_sweep_on_a_local_cluster(tmp_path, cluster, capsys):
    store = tmp_path / "store"
    status = run_sweep(tiny(), store, scheduler=cluster.scheduler_address, progress=True)
    assert capsys.readouterr().err.count("failed 1") >= 1  # the progress bar's postfix
    assert (len(status.done), len(status.failed), len(status.missing)) == (3, 1, 0)
    assert status.computed == (0, 1, 2, 3)
    (fail,) = status.failed
    assert fail.index == 3 and fail.error_type == "ConfigError" and "288 ions do not fit" in fail.message
    assert (store / "failed" / "p00003.json").is_file() and not (store / "points" / "p00003.nc").exists()
    assert sorted(p.name for p in (store / "points").iterdir()) == ["p00000.nc", "p00001.nc", "p00002.nc"]
    assert list((store / "partial").iterdir()) == []  # checkpoints removed once the point is written

    ds = open_sweep(store)
    assert ds.sizes["point"] == 4 and ds.sizes["time"] == 3 and ds.sizes["z"] == 6
    np.testing.assert_array_equal(ds["concentration_cm3"].values, [2e20, 5e20, 8e20, 3e21])
    assert ds["concentration_cm3"].attrs["units"] == "cm-3"
    assert list(ds["point_status"].values) == ["done", "done", "done", "failed"]
    assert "288 ions" in str(ds["point_error"].values[3])
    assert np.all(np.isnan(ds["density_mean"].sel(point=3)))
    assert not np.any(np.isnan(ds["density_mean"].sel(point=[0, 1, 2])))
    np.testing.assert_allclose(ds["density_mean"].isel(point=slice(0, 3)).mean("z"), 1.0)  # c/c0 averages to 1
    np.testing.assert_array_equal(ds["n_ions"].values[:3], [19, 48, 77])
    assert ds.attrs["seed"] == 3 and ds.attrs["n_failed"] == 1 and "sweep_spec_yaml" in ds.attrs
    assert "surrodyn_version" in ds.attrs
    dropped = open_sweep(store, missing="drop")
    assert list(dropped["point"].values) == [0, 1, 2]

    assert main(["sweep", "status", str(store)]) == 0
    out = capsys.readouterr().out
    assert "3 done, 1 failed, 0 missing" in out and "p00003" in out and "288 ions do not fit" in out
    assert main(["sweep", "export", str(store), "--out", str(tmp_path / "all.nc")]) == 0
    with xr.open_dataset(tmp_path / "all.nc") as back:
        xr.testing.assert_identical(back.load(), ds)

    # a rerun retries only the failed point and leaves the finished files alone
    stamps = {p.name: p.stat().st_mtime_ns for p in (store / "points").iterdir()}
    again = run_sweep(tiny(), store, scheduler=cluster.scheduler_address, progress=False)
    assert again.computed == (3,) and len(again.failed) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (store / "points").iterdir()} == stamps


def test_results_do_not_depend_on_the_worker_count(tmp_path, cluster):
    spec = valid_tiny(store_replicas=True)
    one = run_sweep(spec, tmp_path / "one", workers=1, progress=False)
    two = run_sweep(spec, tmp_path / "two", scheduler=cluster.scheduler_address, progress=False)
    assert one.complete and two.complete
    a, b = open_sweep(tmp_path / "one"), open_sweep(tmp_path / "two")
    xr.testing.assert_identical(a, b)
    assert a["density"].dims == ("point", "replica", "time", "z") and a["replica_seed"].dims == ("point", "replica")
    assert a["events"].dtype == np.int64  # no NaN filling needed: integers stay integers
    # a rerun of a complete store computes nothing (and starts no cluster)
    assert run_sweep(spec, tmp_path / "one", progress=False).computed == ()


def test_leftovers_and_corrupt_files_do_not_break_a_rerun(tmp_path, cluster):
    spec = valid_tiny()
    ref = tmp_path / "ref"
    run_sweep(spec, ref, scheduler=cluster.scheduler_address, progress=False)
    store = tmp_path / "store"
    import shutil

    shutil.copytree(ref, store)
    points = store / "points"
    (points / ".p00001.nc.k2j3.tmp").write_bytes(b"half a file")  # a write killed midway
    (points / "p00002.nc").write_bytes(b"\x89HDF\r\n garbage")  # a truncated point file
    (points / "p00000.nc").unlink()
    (store / "partial" / "p00000").mkdir()
    (store / "partial" / "p00000" / ".replica_00000.npz.x.tmp.npz").write_bytes(b"junk")
    status = run_sweep(spec, store, scheduler=cluster.scheduler_address, progress=False)
    assert status.complete and status.computed == (0, 2)
    assert not list(points.glob(".*.tmp")) and (points / "p00002.nc.corrupt").exists()
    xr.testing.assert_identical(open_sweep(store), open_sweep(ref))


def test_another_spec_against_an_existing_store_is_rejected(tmp_path, cluster, capsys):
    store = tmp_path / "store"
    run_sweep(valid_tiny(), store, scheduler=cluster.scheduler_address, progress=False)
    with pytest.raises(ConfigError, match=r"(?s)another spec.*-seed: 3\n\+seed: 4"):
        run_sweep(valid_tiny(seed=4), store, scheduler=cluster.scheduler_address, progress=False)
    spec_file = tmp_path / "other.yaml"
    spec_file.write_text(yaml.safe_dump(valid_tiny(kmc={"base": dict(TINY_BASE), "replicas": 3})))
    assert main(["sweep", "run", str(spec_file), "--store", str(store), "--no-progress"]) == 2
    assert "replicas: 3" in capsys.readouterr().err
    # the store's own spec finishes it: nothing left to do
    assert run_sweep(None, store, progress=False).computed == ()
    assert sweep_status(store).complete


def test_bad_run_arguments(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        run_sweep(valid_tiny(), tmp_path / "s", scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(ConfigError, match="workers"):
        run_sweep(valid_tiny(), tmp_path / "s", workers=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    from surrodyn.errors import OutputError

    with pytest.raises(OutputError, match="not a sweep store"):
        run_sweep(valid_tiny(), tmp_path / "busy", progress=False)
    with pytest.raises(FileNotFoundError, match="no sweep store"):
        SweepStore(tmp_path / "nothing")


def test_continuum_needs_the_twin_to_be_importable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "surrodyn.continuum", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="continuum: false"):
        run_sweep(valid_tiny(continuum=True), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()  # refused before any work


def test_sweep_with_the_continuum_twin(tmp_path, cluster):
    pytest.importorskip("surrodyn.continuum")
    spec = valid_tiny(continuum=True)
    status = run_sweep(spec, tmp_path / "s", scheduler=cluster.scheduler_address, progress=False)
    assert status.complete, [f.message for f in status.failed]
    ds = open_sweep(tmp_path / "s")
    for name in ("density", "occupancy", "potential"):
        assert ds[f"continuum_{name}"].dims == ("point", "time", "z")
    for name in ("electrode_charge", "current"):
        assert ds[f"continuum_{name}"].dims == ("point", "time")
    assert np.all(np.isfinite(ds["continuum_density"]))
    # both models conserve the ions: c/c0 averages to 1 over the layers
    np.testing.assert_allclose(ds["continuum_density"].mean("z"), 1.0, rtol=1e-3)


def test_the_example_specs_parse():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    demo = SweepSpec.from_yaml(examples / "sweep_demo.yaml")
    assert (demo.size, demo.sampling, demo.replicas, demo.continuum) == (32, "sobol", 4, True)
    assert len(demo.base.output_times_s) == 50 and (demo.base.nx, demo.base.nz) == (10, 99)
    paper = SweepSpec.from_yaml(examples / "sweep_paper.yaml")
    assert (paper.size, paper.replicas, len(paper.base.output_times_s)) == (54, 50, 1000)
    table = parameter_table(paper)
    assert sorted(set(table["permittivity"])) == [100, 677, 1400] and len(set(table["voltage_V"])) == 6
