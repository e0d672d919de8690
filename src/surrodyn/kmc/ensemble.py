"""Ensembles of independent replicas, in parallel processes, resumable per replica."""

from __future__ import annotations

import hashlib
import json
import os
import queue as _queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import param_error
from .config import KMCConfig
from .simulation import Frame, Simulation, _seed_repr

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["replica_seeds", "run_ensemble", "run_replica"]

# progress queue of a worker process, set by the pool initializer
_PROGRESS: Any = None


def _init_worker(progress_queue: Any, parent_pid: int | None = None) -> None:
    global _PROGRESS
    _PROGRESS = progress_queue
    if parent_pid is not None:
        _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the process that started it is gone (killed, even by SIGKILL).

    Worker processes of a pool outlive a parent that dies without shutting the pool down and
    would keep computing replicas nobody collects. On Linux the kernel is asked to send SIGKILL
    when the parent dies (``prctl(PR_SET_PDEATHSIG)``: works while a numba kernel holds the GIL);
    elsewhere a daemon thread polls the parent between kernel calls.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
                if os.getppid() != parent_pid:  # the parent died before the request
                    os._exit(1)
                return
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass

    def watch() -> None:  # pragma: no cover - non-Linux fallback
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()  # pragma: no cover


def _run_in_worker(config: KMCConfig, seed_seq: np.random.SeedSequence) -> list[Frame]:
    return run_replica(config, seed_seq, _PROGRESS)


def replica_seeds(seed: int, replicas: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences of ``replicas`` replicas spawned from one root seed."""
    return np.random.SeedSequence(seed).spawn(replicas)


def run_replica(config: KMCConfig, seed_seq: np.random.SeedSequence, progress_queue: Any = None) -> list[Frame]:
    """Run one replica through the config's output times and return its frames."""
    sim = Simulation(config, seed=seed_seq)
    if progress_queue is not None:
        sim.attach(lambda frame: progress_queue.put(1))
    return list(sim.irun())


def _fingerprint(config: KMCConfig, seed: int) -> str:
    text = json.dumps({"config": config.to_yaml(), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_frames(frames: list[Frame], path: Path) -> None:
    arrays = {
        "time_s": np.array([f.time_s for f in frames]),
        "layer_counts": np.array([f.layer_counts for f in frames]),
        "events": np.array([f.events for f in frames]),
        "net_z_hops": np.array([f.net_z_hops for f in frames]),
        "voltage_V": np.array([f.voltage_V for f in frames]),
        "temperature_K": np.array([f.temperature_K for f in frames]),
    }
    if frames[0].xz_counts is not None:
        arrays["xz_counts"] = np.array([f.xz_counts for f in frames])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_frames(path: Path) -> list[Frame]:
    with np.load(path) as d:
        xz = d["xz_counts"] if "xz_counts" in d.files else None
        return [
            Frame(
                time_s=float(d["time_s"][k]),
                layer_counts=d["layer_counts"][k],
                xz_counts=None if xz is None else xz[k],
                events=int(d["events"][k]),
                net_z_hops=int(d["net_z_hops"][k]),
                voltage_V=float(d["voltage_V"][k]),
                temperature_K=float(d["temperature_K"][k]),
            )
            for k in range(len(d["time_s"]))
        ]


def run_ensemble(
    config: KMCConfig,
    replicas: int = 4,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    checkpoint_dir: str | Path | None = None,
    quantiles: Sequence[float] | None = None,
) -> xr.Dataset:
    """Run ``replicas`` independent replicas and return them with ensemble statistics.

    Parameters
    ----------
    config : KMCConfig
        System and protocol.
    replicas : int
        Number of replicas R; replica r uses child r of ``SeedSequence(seed)``.
    seed : int
        Root seed; the result is identical for identical ``(config, replicas, seed)`` whatever
        ``workers`` is.
    workers : int
        Worker processes (1 runs in this process).
    progress : bool
        Show a progress bar over records of all replicas.
    checkpoint_dir : str or Path, optional
        Directory where each finished replica is saved atomically; a rerun with the same
        config and seed reuses them, so an interrupted ensemble loses at most the replicas
        that were running.
    quantiles : sequence of float, optional
        Quantile levels stored in the result (default: 0.05, 0.25, 0.5, 0.75, 0.95).

    Returns
    -------
    xarray.Dataset
        See :func:`surrodyn.data.kmc_dataset` and :func:`surrodyn.data.add_ensemble_statistics`.
    """
    if isinstance(replicas, bool) or not isinstance(replicas, int | np.integer) or replicas < 1:
        raise param_error("replicas", replicas, "an integer >= 1")
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise param_error("workers", workers, "an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise param_error("seed", seed, "a non-negative integer")
    seeds = replica_seeds(int(seed), int(replicas))
    results: dict[int, list[Frame]] = {}
    ckpt: Path | None = None
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir)
        ckpt.mkdir(parents=True, exist_ok=True)
        fp = _fingerprint(config, int(seed))
        stamp = ckpt / "fingerprint.txt"
        if stamp.exists() and stamp.read_text().strip() != fp:
            raise param_error(
                "checkpoint_dir",
                str(ckpt),
                "a directory holding replicas of this very config and seed",
                "It holds another run's replicas: remove it or choose another directory.",
            )
        stamp.write_text(fp)
        for r in range(replicas):
            f = ckpt / f"replica_{r:05d}.npz"
            if f.exists():
                results[r] = _load_frames(f)
    todo = [r for r in range(replicas) if r not in results]
    n_times = len(config.output_times_s)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=replicas * n_times, unit="frame", desc="kMC", initial=len(results) * n_times)

    def finish(r: int, frames: list[Frame]) -> None:
        results[r] = frames
        if ckpt is not None:
            _save_frames(frames, ckpt / f"replica_{r:05d}.npz")

    try:
        if workers == 1 or len(todo) <= 1:
            for r in todo:
                sim = Simulation(config, seed=seeds[r])
                if bar is not None:
                    sim.attach(lambda frame: bar.update(1))
                finish(r, list(sim.irun()))
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            q = ctx.Queue() if bar is not None else None
            with ProcessPoolExecutor(
                max_workers=min(workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(q, os.getpid())
            ) as pool:
                futures = {pool.submit(_run_in_worker, config, seeds[r]): r for r in todo}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    if q is not None:
                        _drain(q, bar)
                    for fut in done:
                        finish(futures[fut], fut.result())
            if q is not None:
                _drain(q, bar)
                q.close()
    finally:
        if bar is not None:
            bar.close()
    from ..data import DEFAULT_QUANTILES, add_ensemble_statistics, kmc_dataset

    frames = [results[r] for r in range(replicas)]
    ds = kmc_dataset(frames, config, seeds=[_seed_repr(s) for s in seeds], seed=int(seed))
    return add_ensemble_statistics(ds, DEFAULT_QUANTILES if quantiles is None else quantiles)


def _drain(q: Any, bar: Any) -> None:
    n = 0
    while True:
        try:
            n += q.get_nowait()
        except _queue.Empty:
            break
    if n:
        bar.update(n)
