"""Worker processes of an ensemble do not outlive a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from surrodyn.kmc import KMCConfig, run_ensemble
    if __name__ == "__main__":
        cfg = KMCConfig(nx=10, ny=10, nz=50, n_ions=200, output_times_s=[1.0])  # hours of work
        run_ensemble(cfg, replicas=2, workers=2)
    """
)


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_sigkilled_parent(tmp_path):
    script = tmp_path / "ens.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            # the pool's workers are the children running the spawn entry point
            workers = [p for p in children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) >= 2, "the pool did not start"
        time.sleep(1.0)  # let the workers enter the kernel
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(w) for w in workers):
            time.sleep(0.2)
        left = [w for w in workers if alive(w)]
        for w in left:
            os.kill(w, signal.SIGKILL)
        assert not left, f"workers {left} outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_kernel_releases_the_gil():
    """Heartbeats of a Dask worker (and other threads) keep running while a replica computes."""
    import threading

    from surrodyn.kmc import KMCConfig, Simulation

    cfg = KMCConfig(nx=10, ny=10, nz=50, n_ions=200, output_times_s=[1.0])
    sim = Simulation(cfg, seed=0)
    sim.advance_to(1e-9)  # compile outside the measurement
    ticks = []
    running = threading.Event()
    running.set()

    def beat() -> None:
        while running.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    events_before = sim.events
    thread = threading.Thread(target=beat)
    start = time.perf_counter()
    thread.start()
    sim.advance_to(sim.time_s + 2e5 / (6 * 200 * cfg.hop_rate_Hz()))  # one kernel call of ~2e5 events, ~1 s
    end = time.perf_counter()
    running.clear()
    thread.join()
    assert sim.events - events_before > 1e5
    assert end - start > 0.2
    during = [t for t in ticks if start < t < end]
    # with the GIL held the thread could not tick between entry and exit of the kernel
    assert len(during) > 0.25 * (end - start) / 0.005, (len(during), end - start)
