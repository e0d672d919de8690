"""Running a sweep on Dask: one task per point, each writing its own result atomically.

The client builds the points' configurations, submits one task per missing or failed point to a
local cluster (one single-threaded worker process per core) or to any running scheduler, and
shows the progress. Each task runs the point's replica ensemble (checkpointed replica by replica
in ``STORE/partial/``), its continuum twin when asked, and writes ``STORE/points/pNNNNN.nc`` or
``STORE/failed/pNNNNN.json`` itself, so a client killed at any moment loses no finished point.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, ConfigTypeError, param_error
from ..kmc.config import KMCConfig
from .design import point_config
from .spec import SweepSpec
from .store import Failure, SweepStatus, SweepStore, compress, point_name, write_json_atomic

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = [
    "CONTINUUM_VARIABLES",
    "FIELD_VARIABLES",
    "PointTask",
    "compute_point",
    "dask_client",
    "execute_point",
    "run_sweep",
]

#: Field variables whose ensemble statistics every point file holds.
FIELD_VARIABLES = ("density", "occupancy", "potential", "electrode_charge", "current")
#: Variables of the continuum twin stored as ``continuum_<name>``.
CONTINUUM_VARIABLES = ("density", "occupancy", "potential", "electrode_charge", "current")
_REPLICA_EXTRA = ("events", "net_z_hops")


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to compute one point (no access to the spec needed).

    Attributes
    ----------
    index : int
        Point index in the design.
    params : dict of str to float
        The point's parameter values.
    seed : int
        Root seed of the point's replica ensemble.
    config : KMCConfig
        The point's kMC configuration.
    replicas : int
        Replicas of the ensemble.
    quantiles : tuple of float
        Quantile levels of the statistics.
    store_replicas : bool
        Keep the replicas' fields.
    continuum : bool
        Also solve the continuum twin.
    fingerprint : str
        The sweep's fingerprint (stored in the point file).
    """

    index: int
    params: dict[str, float]
    seed: int
    config: KMCConfig
    replicas: int
    quantiles: tuple[float, ...]
    store_replicas: bool
    continuum: bool
    fingerprint: str


def compute_point(task: PointTask, checkpoint_dir: str | Path | None = None) -> xr.Dataset:
    """Compute one point: its kMC ensemble statistics (and replicas, and continuum twin).

    Parameters
    ----------
    task : PointTask
        The point.
    checkpoint_dir : str or Path, optional
        Replica checkpoints (see :func:`surrodyn.kmc.run_ensemble`).

    Returns
    -------
    xarray.Dataset
        Dims ``time``, ``z``, ``quantile`` (and ``replica``, ``x``); variables ``<name>_mean``,
        ``<name>_std``, ``<name>_quantile`` of :data:`FIELD_VARIABLES` (and of ``occupancy_xz``
        when recorded), ``voltage`` and ``temperature`` of the protocol, the replicas' fields
        when ``store_replicas``, ``continuum_<name>`` when ``continuum``; the config, the seed,
        the point index and the sweep fingerprint in attrs.
    """
    import xarray as xr

    from ..kmc.ensemble import run_ensemble

    continuum = None
    if task.continuum:  # cheap: fail fast before the ensemble
        from ..continuum import solve_mpnp

        continuum = solve_mpnp(task.config)
    ens = run_ensemble(
        task.config,
        replicas=task.replicas,
        seed=task.seed,
        workers=1,
        checkpoint_dir=checkpoint_dir,
        quantiles=task.quantiles,
    )
    out = xr.Dataset(coords={k: ens.coords[k] for k in ("time", "z", "quantile") if k in ens.coords})
    fields = [*FIELD_VARIABLES, "occupancy_xz"]
    for name in fields:
        for suffix in ("_mean", "_std", "_quantile"):
            if f"{name}{suffix}" in ens:
                out[f"{name}{suffix}"] = ens[f"{name}{suffix}"]
    out["voltage"] = ens["voltage"]
    out["temperature"] = ens["temperature"]
    if task.store_replicas:
        for name in (*fields, *_REPLICA_EXTRA):
            if name in ens:
                out[name] = ens[name]
    if continuum is not None:
        for dim in ("time", "z"):
            if dim not in continuum.coords or not np.allclose(
                continuum[dim].values, ens[dim].values, rtol=1e-9, atol=0
            ):
                raise ConfigError(f"the continuum twin's {dim} grid differs from the kMC {dim} grid.")
        continuum = continuum.assign_coords(time=ens["time"], z=ens["z"])
        for name in CONTINUUM_VARIABLES:
            if name not in continuum:
                raise ConfigError(f"the continuum twin's dataset lacks the variable {name!r}.")
            var = continuum[name]
            out[f"continuum_{name}"] = var.assign_attrs(
                units=var.attrs.get("units", ens[name].attrs.get("units", "")),
                long_name=f"continuum twin: {var.attrs.get('long_name', name)}",
            )
    out.attrs = dict(ens.attrs)
    out.attrs.update(
        title="surrodyn sweep point (kMC ensemble statistics)",
        point=int(task.index),
        sweep_fingerprint=task.fingerprint,
        continuum=int(task.continuum),
    )
    return out


def execute_point(task: PointTask, store_path: str) -> tuple[int, str]:
    """Compute a point and write its file (or its failure record) in the store; runs on a worker.

    Returns
    -------
    tuple of (int, str)
        The point index and ``"done"`` or ``"failed"``.
    """
    from ..data.io import write_dataset

    root = Path(store_path)
    name = point_name(task.index)
    target = root / "points" / f"{name}.nc"
    failure = root / "failed" / f"{name}.json"
    partial = root / "partial" / name
    if target.exists():  # finished meanwhile (e.g. by an earlier attempt of this task)
        return task.index, "done"
    try:
        ds = compute_point(task, checkpoint_dir=partial)
        write_dataset(compress(ds), target)
    except Exception as exc:
        if not target.exists():
            record = Failure.from_exception(task.index, exc, task.params, traceback.format_exc())
            write_json_atomic(record.to_dict(), failure)
        return task.index, "failed"
    failure.unlink(missing_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    return task.index, "done"


def _as_spec(spec: Any, store: str | Path) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if spec is None:
        return SweepStore(store).spec
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    if isinstance(spec, str | Path):
        return SweepSpec.from_yaml(spec)
    raise ConfigTypeError(f"spec must be a SweepSpec, a mapping or a YAML path, got {type(spec).__name__}.")


def _check_continuum() -> None:
    try:
        from ..continuum import solve_mpnp  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"continuum=True needs surrodyn.continuum.solve_mpnp, which cannot be imported here ({exc}). "
            "Set continuum: false in the spec, or install a surrodyn that has the continuum twin."
        ) from None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def dask_client(scheduler: Any = None, workers: int | None = None) -> Iterator[Any]:
    """Open a Dask client on a new local cluster or on a running scheduler.

    Parameters
    ----------
    scheduler : str, distributed.Client or cluster object, optional
        Address of a running scheduler (``tcp://host:8786``) or its scheduler file (``.json``,
        from ``dask scheduler --scheduler-file``), an existing client (used as it is, not
        closed) or a cluster object with a ``scheduler_address`` (e.g. a dask-jobqueue
        ``SLURMCluster``). ``None`` starts a local cluster of ``workers`` single-threaded worker
        processes and closes it on exit.
    workers : int, optional
        Worker processes of the local cluster (default: the available cores).

    Yields
    ------
    distributed.Client
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency
        raise ImportError("sweeps need dask.distributed: pip install 'dask[distributed]'.") from None
    if scheduler is None:
        import dask.config

        # the kMC kernel holds the GIL for a whole record interval, which can silence a worker's
        # heartbeats for minutes: no time-to-live, or the scheduler would declare it dead
        with dask.config.set({"distributed.scheduler.worker-ttl": None}):
            cluster = LocalCluster(
                n_workers=workers or _available_cores(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
            try:
                yield client
            finally:
                client.close()
                cluster.close()
        return
    if isinstance(scheduler, Client):
        yield scheduler
        return
    address = getattr(scheduler, "scheduler_address", scheduler)
    try:
        if isinstance(address, str | Path) and str(address).endswith(".json") and Path(address).is_file():
            client = Client(scheduler_file=str(address), timeout="30s")  # dask scheduler --scheduler-file
        else:
            client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise param_error(
            "scheduler",
            str(address),
            "the address of a running Dask scheduler, e.g. tcp://host:8786",
            f"Connecting failed ({exc}). Start one with `dask scheduler`, or omit it for a local cluster.",
        ) from None
    try:
        yield client
    finally:
        client.close()


def run_sweep(
    spec: SweepSpec | str | Path | Mapping[str, Any] | None,
    store: str | Path,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
) -> SweepStatus:
    """Run the missing and failed points of a sweep on Dask; finished points are skipped.

    Parameters
    ----------
    spec : SweepSpec, path of a YAML, mapping, or None
        The sweep; ``None`` finishes the sweep of an existing store with the store's spec.
    store : str or Path
        Store directory (created if needed). It must be visible to every worker under the same
        path (a shared file system on a cluster).
    scheduler : str, distributed.Client or cluster object, optional
        Where to run (see :func:`dask_client`); default: a local cluster.
    workers : int, optional
        Worker processes of the local cluster (default: the available cores, at most one per
        point to run). Not allowed with ``scheduler``.
    progress : bool
        Show a progress bar (points done / failed / remaining, ETA).

    Returns
    -------
    SweepStatus
        The store's status after the run; ``computed`` lists the points attempted.

    Raises
    ------
    ConfigError
        For an invalid spec, a store made by another spec, a bad worker count or scheduler.

    Notes
    -----
    Point ``i`` runs with seed :func:`surrodyn.sweep.point_seed` ``(spec.seed, i)`` and one
    process, so its result depends neither on the order of execution nor on the worker. A point
    whose configuration is invalid is recorded as failed without being submitted.
    """
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
            raise param_error("workers", workers, "an integer >= 1")
        if scheduler is not None:
            raise param_error("workers", workers, "no worker count with a scheduler (the cluster has its own workers)")
    spec = _as_spec(spec, store)
    if spec.continuum:
        _check_continuum()
    st = SweepStore.create(store, spec)
    st.clean()
    status = st.status(verify=True)
    todo = sorted([f.index for f in status.failed] + list(status.missing))
    tasks: list[PointTask] = []
    n_failed = 0
    for i in todo:
        params = st.params(i)
        try:
            cfg = point_config(spec, params)
        except (ConfigError, ConfigTypeError, ValueError, TypeError) as exc:
            st.record_failure(Failure.from_exception(i, exc, params, traceback.format_exc()))
            n_failed += 1
            continue
        tasks.append(
            PointTask(
                index=i,
                params=params,
                seed=st.point_seed(i),
                config=cfg,
                replicas=spec.replicas,
                quantiles=spec.quantiles,
                store_replicas=spec.store_replicas,
                continuum=spec.continuum,
                fingerprint=st.fingerprint,
            )
        )
    if tasks:
        n_local = None if scheduler is not None else min(workers or _available_cores(), len(tasks))
        _submit_all(tasks, st, scheduler, n_local, progress, n_done=len(status.done), n_failed=n_failed)
    return dataclasses.replace(st.status(), computed=tuple(todo))


def _submit_all(
    tasks: list[PointTask],
    store: SweepStore,
    scheduler: Any,
    workers: int | None,
    progress: bool,
    n_done: int,
    n_failed: int,
) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm

    by_key: dict[str, PointTask] = {}
    # the bar counts points settled (done or failed); the postfix tells them apart
    initial = store.n_points - len(tasks)
    bar = tqdm(total=store.n_points, initial=initial, unit="point", desc="sweep", disable=not progress)
    remaining = len(tasks)

    def show(refresh: bool = False) -> None:
        bar.set_postfix_str(f"done {n_done}, failed {n_failed}, remaining {remaining}", refresh=refresh)

    show(refresh=True)
    try:
        with dask_client(scheduler, workers) as client:
            futures = []
            for t in tasks:
                key = f"surrodyn-sweep-{point_name(t.index)}-{uuid.uuid4().hex[:8]}"
                by_key[key] = t
                futures.append(client.submit(execute_point, t, str(store.path), key=key, pure=False))
            try:
                for fut in as_completed(futures):
                    task = by_key[fut.key]
                    try:
                        _, state = fut.result()
                    except Exception as exc:  # the worker died (e.g. killed), not an error of the point
                        store.record_failure(
                            Failure.from_exception(task.index, exc, task.params, traceback.format_exc())
                        )
                        state = "failed"
                    remaining -= 1
                    if state == "done":
                        n_done += 1
                    else:
                        n_failed += 1
                    show()
                    bar.update(1)
                    fut.release()
            except BaseException:
                client.cancel(futures)
                raise
    finally:
        bar.close()
