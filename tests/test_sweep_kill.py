"""A sweep killed with SIGKILL and run again equals an uninterrupted sweep, point for point."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import xarray as xr
import yaml

from surrodyn.sweep import SweepStore, export_sweep, open_sweep, run_sweep

# 6 points of about half a second each (3 replicas of ~5e4 events) on a 6×6×10 lattice
SPEC = {
    "name": "kill-me",
    "seed": 11,
    "sampling": {"method": "grid"},
    "parameters": {"voltage_V": [0.1, 0.3, 0.5], "permittivity": [10.0, 20.0]},
    "kmc": {
        "base": {
            "nx": 6,
            "ny": 6,
            "nz": 10,
            "concentration_cm3": 1e20,
            "record_xz": False,
            "output_times_s": {"kind": "log", "start": 1e-8, "stop": 3e-6, "num": 8},
        },
        "replicas": 3,
    },
}


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as c:
        yield c


def _sweep_command(spec_path, store) -> list[str]:
    cli = [sys.executable, "-m", "surrodyn.cli.main", "sweep", "run", str(spec_path)]
    return [*cli, "--store", str(store), "--workers", "2", "--no-progress"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_group_exit(pgid: int, timeout_s: float) -> bool:
    """Wait until no process of the group ``pgid`` (the killed sweep's session) is left."""
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path, cluster):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    store = tmp_path / "killed"

    proc = subprocess.Popen(
        _sweep_command(spec_path, store),
        start_new_session=True,  # its own process group: its workers can be waited for (and cleaned up)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    points = store / "points"
    try:
        deadline = time.monotonic() + 120
        while not (points.is_dir() and any(points.glob("p*.nc"))):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no point finished in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the client only: its worker processes must go with it
        proc.wait()
        gone = _wait_for_group_exit(proc.pid, 30)
    finally:  # clean up whatever this test started, should an assertion have fired
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    assert gone, "worker processes outlived the killed sweep"
    status = SweepStore(store).status()
    assert 1 <= len(status.done) < 6, status.summary()

    rerun = subprocess.run(_sweep_command(spec_path, store), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"(this run attempted {6 - len(status.done)})" in rerun.stderr
    assert not any((store / "partial").iterdir())

    reference = tmp_path / "uninterrupted"
    assert run_sweep(spec_path, reference, scheduler=cluster, progress=False).complete
    export_sweep(store, tmp_path / "k.nc")
    with xr.open_dataset(tmp_path / "k.nc") as exported:
        xr.testing.assert_identical(exported.load(), open_sweep(reference))


def test_a_killed_point_resumes_from_its_finished_replicas(tmp_path, cluster):
    """The replicas a killed point had finished are reused, and the result is the same."""
    import shutil

    from surrodyn.kmc import run_ensemble
    from surrodyn.sweep import SweepSpec, point_config

    spec = SweepSpec.from_dict({**SPEC, "parameters": {"voltage_V": [0.5]}})
    reference = tmp_path / "ref"
    assert run_sweep(spec, reference, scheduler=cluster, progress=False).complete

    def killed_store(name):
        store = SweepStore.create(tmp_path / name, spec)
        cfg = point_config(spec, store.params(0))
        run_ensemble(cfg, replicas=3, seed=store.point_seed(0), checkpoint_dir=store.partial_dir(0))
        for r in (1, 2):
            (store.partial_dir(0) / f"replica_{r:05d}.npz").unlink()  # as if killed after the first replica
        return store, cfg

    store, _ = killed_store("resumed")
    assert run_sweep(spec, store.path, scheduler=cluster, progress=False).complete
    assert not store.partial_dir(0).exists()  # removed once the point was written
    xr.testing.assert_identical(open_sweep(store.path), open_sweep(reference))

    # proof that the kept replica is used rather than recomputed: swap in another seed's replica
    tampered, cfg = killed_store("tampered")
    other = tmp_path / "other"
    run_ensemble(cfg, replicas=1, seed=999, checkpoint_dir=other)
    shutil.copy(other / "replica_00000.npz", tampered.partial_dir(0) / "replica_00000.npz")
    assert run_sweep(spec, tampered.path, scheduler=cluster, progress=False).complete
    a, b = open_sweep(tampered.path), open_sweep(reference)
    assert not a["density_mean"].equals(b["density_mean"])
