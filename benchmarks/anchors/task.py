"""The forecasting task shared by the anchor adapters, its construction from a sweep store, and shared helpers.

A :class:`Task` holds plain NumPy arrays only, so that the adapters (``pf_adapter``, ``darts_adapter``) and our own
TFT see exactly the same data. The helpers at the bottom (target scaling, the wall-clock budget callback, seeding,
latency timing) are shared by both adapters so that the two libraries are driven the same way.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUANTILES = (0.1, 0.5, 0.9)

#: Model size used by every anchor (recorded in each result's ``"config"``).
MODEL_CONFIG = {
    "hidden_size": 32,
    "lstm_layers": 1,
    "attention_heads": 4,
    "dropout": 0.1,
    "hidden_continuous_size": 16,
    "learning_rate": 1e-3,
    "batch_size": 64,
    "optimizer": "Adam",
    "gradient_clip_val": 0.1,
}


@dataclass
class Task:
    """A set of sweep points to train on or to forecast.

    Attributes
    ----------
    y : float32 (n_points, n_replicas, n_time, n_z)
        Target field: ion density normalised by the bulk (1 = bulk), one array per kMC replica.
    static : float32 (n_points, n_static)
        Static covariates, already transformed (e.g. log10); names in ``static_names``.
    known : float32 (n_points, n_time, n_known)
        Known-future covariates per record (e.g. log10 time, voltage); names in ``known_names``.
    n_encoder : int
        Observed frames given as context; frames ``n_encoder..n_time-1`` are forecast.
    """

    y: np.ndarray
    static: np.ndarray
    static_names: list[str]
    known: np.ndarray
    known_names: list[str]
    n_encoder: int = 5
    point_ids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = np.ascontiguousarray(self.y, dtype=np.float32)
        self.static = np.ascontiguousarray(self.static, dtype=np.float32)
        self.known = np.ascontiguousarray(self.known, dtype=np.float32)
        n_p, _, n_t, _ = self.y.shape
        if self.static.shape != (n_p, len(self.static_names)):
            raise ValueError(f"static has shape {self.static.shape}, expected {(n_p, len(self.static_names))}")
        if self.known.shape != (n_p, n_t, len(self.known_names)):
            raise ValueError(f"known has shape {self.known.shape}, expected {(n_p, n_t, len(self.known_names))}")
        if not 0 < self.n_encoder < n_t:
            raise ValueError(f"n_encoder={self.n_encoder} must lie in 1..{n_t - 1}")
        for name in ("y", "static", "known"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} has non-finite values (a failed or missing sweep point?)")

    @property
    def n_points(self) -> int:
        return self.y.shape[0]

    @property
    def n_replicas(self) -> int:
        return self.y.shape[1]

    @property
    def n_time(self) -> int:
        return self.y.shape[2]

    @property
    def n_z(self) -> int:
        return self.y.shape[3]

    @property
    def n_decoder(self) -> int:
        return self.n_time - self.n_encoder

    def context(self) -> np.ndarray:
        """Context frames given to a model at test time: the replica mean, (n_points, n_encoder, n_z)."""
        return self.y[:, :, : self.n_encoder].mean(axis=1)

    def subset(self, points: Sequence[int] | np.ndarray) -> Task:
        """The task restricted to the given positions along the point axis."""
        idx = np.asarray(points)
        return Task(
            y=self.y[idx],
            static=self.static[idx],
            static_names=list(self.static_names),
            known=self.known[idx],
            known_names=list(self.known_names),
            n_encoder=self.n_encoder,
            point_ids=None if self.point_ids is None else self.point_ids[idx],
            meta=dict(self.meta),
        )


def task_from_sweep(ds, points: Sequence[int] | np.ndarray, n_encoder: int = 5) -> Task:
    """Build a :class:`Task` from a sweep Dataset (``surrodyn.sweep.open_sweep``).

    Parameters
    ----------
    ds : xarray.Dataset
        The combined sweep, with the per-replica ``occupancy`` (point, replica, time, z).
    points : sequence of int
        Values of the ``point`` coordinate (design indices) to take, in order.
    n_encoder : int
        Context frames.

    Returns
    -------
    Task
        ``y`` = per-replica occupancy over the point's bulk occupancy (the z-mean of the occupancy at the first
        record, i.e. N / sites; ions are conserved, so any record gives the same value). ``static`` = every swept
        parameter, log10 of those swept on a log scale (``log10_permittivity``, ``log10_concentration_cm3``,
        ``voltage_V``, ...). ``known`` = ``log10_time_s`` plus ``voltage`` and ``temperature`` when they vary over
        time in the sweep (decided on the whole ``ds``, so that train and test tasks get the same columns).
    """
    import yaml

    if "occupancy" not in ds:
        raise ValueError("the sweep has no per-replica 'occupancy' (run it with store_replicas: true)")
    sub = ds.sel(point=np.asarray(points))
    if "point_status" in sub and not (sub["point_status"].values == "done").all():
        bad = sub["point"].values[sub["point_status"].values != "done"]
        raise ValueError(f"points {bad.tolist()} are not done")
    occ = sub["occupancy"].transpose("point", "replica", "time", "z").values.astype(np.float64)
    bulk = occ[:, :, 0, :].mean(axis=-1)  # (point, replica): N / sites, identical for every replica
    y = occ / bulk[:, :, None, None]

    spec_params = yaml.safe_load(ds.attrs["sweep_spec_yaml"])["parameters"] if "sweep_spec_yaml" in ds.attrs else {}
    names = list(ds.attrs.get("parameters", spec_params.keys()))
    static_cols, static_names = [], []
    for name in names:
        if np.unique(ds[name].values).size <= 1:
            continue  # fixed for the whole sweep: carries no information
        scale = spec_params.get(name, {}).get("scale") if isinstance(spec_params.get(name), dict) else None
        log = scale == "log" or name in ("permittivity", "concentration_cm3")
        values = sub[name].values.astype(np.float64)
        static_cols.append(np.log10(values) if log else values)
        static_names.append(f"log10_{name}" if log else name)
    static = np.stack(static_cols, axis=1)

    n_p, n_t = sub.sizes["point"], sub.sizes["time"]
    known_cols = [np.broadcast_to(np.log10(sub["time"].values)[None, :], (n_p, n_t))]
    known_names = ["log10_time_s"]
    for name in ("voltage", "temperature"):
        if name in ds and np.nanmax(np.ptp(ds[name].values, axis=-1)) > 0:
            known_cols.append(sub[name].transpose("point", "time").values)
            known_names.append(name)
    known = np.stack(known_cols, axis=-1)
    return Task(
        y=y,
        static=static,
        static_names=static_names,
        known=known,
        known_names=known_names,
        n_encoder=n_encoder,
        point_ids=sub["point"].values.copy(),
        meta={"sweep": ds.attrs.get("sweep_name", ""), "time_s": sub["time"].values.copy()},
    )


# ---------------------------------------------------------------------------------------------------------------------
# helpers shared by the adapters


@dataclass
class TargetScaler:
    """One global affine map of the target (mean and std over all training values), identical for every adapter.

    Quantiles are equivariant under a positive affine map, so predicted quantiles map back exactly. The libraries'
    own target normalisers are switched to identity, so all anchors see the same scaled target.
    """

    mean: float
    std: float

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        return cls(float(y.mean()), float(y.std()) or 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.mean) / self.std).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return (y * self.std + self.mean).astype(np.float32)


def n_threads() -> int:
    """torch intra-op threads: 2, or ``$ANCHOR_THREADS``.

    With both cores busy (e.g. a sweep running), 2 torch threads spin-wait on each other: one TFT step went from
    30 ms to 1.5-6 s. Use ``ANCHOR_THREADS=1`` for measurements on a loaded machine.
    """
    return int(os.environ.get("ANCHOR_THREADS", "2"))


def quiet_lightning() -> None:
    """Silence Lightning's per-Trainer info lines (GPU available, tips), printed again by every predict call."""
    import logging

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(LeafSpec|is an instance of `nn.Module`|val_dataloader).*")
    for message in (
        ".*does not have many workers.*",
        ".*ReduceLROnPlateau conditioned on metric val_loss.*",  # pf: no validation loop, on purpose
        ".*unknown classes which were set to NaN.*",  # pf: test series are new groups
        ".*'pin_memory' argument is set as true.*",  # darts on CPU
        ".*Total length of .* across ranks is zero.*",  # darts: empty validation loader
        ".*DataFrame is highly fragmented.*",  # pf multi_target: one insert per target column
        ".*NumPy array is not writable.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def seed_all(seed: int, seed_everything: Callable[..., Any] | None = None) -> None:
    """Seed Python, NumPy and torch (and Lightning through its ``seed_everything``); CPU, :func:`n_threads`."""
    import torch

    torch.set_num_threads(n_threads())
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (the libraries draw from the global RNG)
    torch.manual_seed(seed)
    if seed_everything is not None:
        seed_everything(seed, workers=True, verbose=False)


def make_budget_callback(
    callback_base: type, budget_s: float, batch_size: Callable[[Any], int], max_steps: int | None = None
):
    """A Lightning callback (subclass of ``callback_base``) that stops training once ``budget_s`` is spent.

    ``max_steps`` optionally stops after that many optimisation steps as well (for reproducibility checks: a
    wall-clock budget makes the step count, hence the model, machine-dependent).

    ``lightning.pytorch.Callback`` (pytorch-forecasting) and ``pytorch_lightning.Callback`` (darts) are different
    classes, hence the factory. It counts the samples of every training batch (``batch_size(batch)``) and sets
    ``trainer.should_stop`` after the first batch that ends past the budget, so training overruns the budget by at
    most one optimisation step.
    """

    class BudgetCallback(callback_base):
        def __init__(self) -> None:
            super().__init__()
            self.budget_s = budget_s
            self.samples = 0
            self.batches = 0
            self.t0 = None
            self.seconds = 0.0
            self.cpu_seconds = 0.0
            self.load_avg = None

        def on_train_start(self, trainer, pl_module) -> None:
            self.t0 = time.perf_counter()
            self.cpu0 = time.process_time()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.samples += int(batch_size(batch))
            self.batches += 1
            self.seconds = time.perf_counter() - self.t0
            if self.seconds >= self.budget_s or (max_steps is not None and self.batches >= max_steps):
                trainer.should_stop = True

        def on_train_end(self, trainer, pl_module) -> None:
            self.seconds = time.perf_counter() - self.t0
            self.cpu_seconds = time.process_time() - self.cpu0
            self.load_avg = os.getloadavg()[0]

        def contention(self) -> dict:
            """CPU time over wall time of training (~n_threads when the cores are free) and the 1-min load."""
            return {"train_cpu_per_wall": self.cpu_seconds / max(self.seconds, 1e-9), "load_avg_1min": self.load_avg}

    return BudgetCallback()


def median_latency(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call; also the warm-up's result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB): a per-run figure only if the run has its own process."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
