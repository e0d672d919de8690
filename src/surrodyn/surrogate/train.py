"""Training: a thin LightningModule (loss, optimiser, logging) and the :func:`train` entry point.

A training run reads a sweep, splits it by point (never by time inside a point), fits the
covariate normalisation on the training points, and trains the :class:`FieldTFT` with the
pinball loss on individual replicas (so the quantiles learn the replica spread) plus a squared
error of the mean head against the ensemble mean. Batches alternate between the two ways of
predicting: from parameters alone (context = the known uniform initial state) and continuation
from ``context_frames`` observed frames.

Counts are discrete (a bin holds a whole number of ions), so replica targets are dequantised with
a uniform jitter of ±half an ion per bin before the pinball loss: the learned quantiles are those
of the randomised-PIT continuous version of the count distribution (Czado, Gneiting & Held 2009,
doi:10.1111/j.1541-0420.2009.01191.x), whose central band then has a well-defined coverage.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from torch.nn import functional as F

from ..errors import ConfigError, param_error, read_yaml_mapping, unknown_keys_error
from ..sweep.dataset import open_sweep
from .artefact import Surrogate, data_fingerprint
from .data import FieldData, Normalizer, inverse_transform, split_points, transform
from .loss import pinball_loss
from .model import FieldTFT, TFTConfig

__all__ = ["SurrogateModule", "TrainConfig", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (YAML: the same keys; ``model`` takes :class:`TFTConfig` fields).

    Parameters
    ----------
    sweep : str
        Sweep store directory or exported NetCDF.
    out : str
        Model directory to write.
    parameters : tuple of str or None
        Static covariates (swept parameter names); default all swept parameters.
    known : tuple of str or None
        Known-future scalars; default ``log10_time`` plus schedules that vary.
    continuum : bool
        Use the continuum twin as a known-future field (multi-fidelity input).
    model : dict
        Architecture overrides (:class:`TFTConfig` fields other than the covariate names).
    test_fraction, val_fraction : float
        Points held out for testing and for early stopping.
    split_seed : int
        Seed of the split.
    test_points : tuple of int or None
        Explicit held-out point ids (overrides ``test_fraction``).
    context_frames : int
        Observed frames in continuation training.
    max_epochs, patience : int
        Epoch limit and early-stopping patience (epochs without validation improvement).
    budget_s : float or None
        Wall-clock limit of training.
    batch_size : int
        Replica series per batch.
    learning_rate : float
        AdamW learning rate.
    weight_decay : float
        AdamW's decoupled weight decay (Loshchilov & Hutter 2019, arXiv:1711.05101). With tens of
        training points the network overfits within a few epochs; measured on the demo sweep's
        anchor task, 0.05 removed the worst seed's excess error (docs/surrogate.md).
    seed : int
        Seed of initialisation, batching and jitter.
    threads : int
        Torch intra-op threads.
    progress : bool
        Show Lightning's progress bar.
    samples_per_epoch : int
        Minimum replica series per epoch (the training set is repeated to reach it); early
        stopping and the learning-rate schedule count these epochs.
    charge_weight : float
        Weight of an extra loss term on the electrode charge the mean density induces: the squared
        error of the lever-weighted moment ``mean_k (n_k/c0 − 1)(z_k/L − 1/2)`` (the induced
        charge per ``e c0 h Z``, :func:`surrodyn.kmc.observables.charge_from_density_C_m2`), relative
        to its largest magnitude at that point. Calibration to charge or current transients
        reads the density only through this moment; 0 (default) trains on the fields alone.
    calibrate : bool
        Recalibrate the quantile spread after training on all non-test points
        (:func:`surrodyn.surrogate.metrics.fit_band_scale`). Pooling training and validation
        points is deliberate: measured on the demo sweep, the model's band coverage on its training
        points (0.79) equals that on validation points, while a factor fitted on 5 validation
        points alone moved the test coverage by up to ±0.06 between seeds.
    """

    sweep: str
    out: str = "surrogate_model"
    parameters: tuple[str, ...] | None = None
    known: tuple[str, ...] | None = None
    continuum: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.25
    val_fraction: float = 0.15
    split_seed: int = 0
    test_points: tuple[int, ...] | None = None
    context_frames: int = 5
    max_epochs: int = 400
    patience: int = 10
    budget_s: float | None = None
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.05
    seed: int = 0
    threads: int = 1
    progress: bool = True
    charge_weight: float = 0.0
    calibrate: bool = True
    samples_per_epoch: int = 1024

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("parameters", "known", "test_points"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, tuple(value))
        allowed = {f.name for f in dataclasses.fields(TFTConfig)} - {"static_names", "known_names", "field_names"}
        bad = set(self.model) - allowed
        if bad:
            raise unknown_keys_error(bad, allowed, "model")
        for name in ("context_frames", "max_epochs", "patience", "batch_size", "threads", "samples_per_epoch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise param_error(name, value, "a positive integer")
        if not self.learning_rate > 0:
            raise param_error("learning_rate", self.learning_rate, "a positive number")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise param_error("weight_decay", self.weight_decay, "a non-negative number")
        if not (isinstance(self.charge_weight, (int, float)) and self.charge_weight >= 0):
            raise param_error("charge_weight", self.charge_weight, "a non-negative number")
        if self.budget_s is not None and not self.budget_s > 0:
            raise param_error("budget_s", self.budget_s, "a positive number of seconds (or null)")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file; relative ``sweep``/``out`` paths are relative to the file."""
        data = read_yaml_mapping(path, "surrogate training config")
        allowed = {f.name for f in dataclasses.fields(cls)}
        bad = set(data) - allowed
        if bad:
            raise unknown_keys_error(bad, allowed, "surrogate training config")
        if "sweep" not in data:
            raise ConfigError(f"{path}: `sweep:` (the sweep store to train on) is required.")
        base = Path(path).parent
        for key in ("sweep", "out"):
            if key in data and not Path(str(data[key])).is_absolute():
                data[key] = str(base / str(data[key]))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def induced_moment(density: torch.Tensor, lever: torch.Tensor) -> torch.Tensor:
    """Lever-weighted moment ``mean_k (n_k/c0 − 1) lever_k`` over the last (z) axis.

    With ``lever = z/L − 1/2`` it is the charge the ions induce on the electrode at ``L``, per
    ``e c0 h Z`` (``h`` the bin width, ``Z`` the bins; see
    :func:`surrodyn.kmc.observables.charge_from_density_C_m2`).
    """
    return ((density - 1.0) * lever).mean(-1)


class _Arrays:
    """Training tensors of one split (normalised), gathered by (point, replica) index."""

    def __init__(self, data: FieldData, static_norm: Normalizer, known_norm: Normalizer) -> None:
        self.static = torch.from_numpy(static_norm(data.static))
        self.known = torch.from_numpy(known_norm(data.known))
        self.target = torch.from_numpy(data.target)
        self.mean_t = transform(torch.from_numpy(data.mean))
        self.unit = torch.from_numpy(data.count_unit.astype(np.float32))
        self.fields = None if data.fields is None else transform(torch.from_numpy(data.fields))
        self.z = torch.from_numpy(data.z.astype(np.float32))
        self.lever = self.z - 0.5
        mean = torch.from_numpy(data.mean.astype(np.float32))
        self.moment = induced_moment(mean, self.lever)  # (P, T)
        self.moment_scale = self.moment.abs().amax(-1).clamp_min(1e-6)  # (P,)
        self.n_replicas = data.target.shape[1]
        self.n_samples = data.target.shape[0] * self.n_replicas


class SurrogateModule(lightning.LightningModule):
    """Loss, optimiser and logging around a :class:`FieldTFT` (nothing else)."""

    def __init__(
        self,
        network: FieldTFT,
        train: _Arrays,
        val: _Arrays,
        lr: float,
        context: int,
        weight_decay: float = 0.0,
        charge_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.network = network
        self.train_arrays, self.val_arrays = train, val
        self.lr, self.context, self.weight_decay = lr, context, weight_decay
        self.charge_weight = charge_weight
        self.samples_seen = 0
        self._val_gen = torch.Generator().manual_seed(12345)

    def _loss(self, arrays: _Arrays, idx: torch.Tensor, n_enc: int, jitter: torch.Tensor) -> torch.Tensor:
        p, r = idx // arrays.n_replicas, idx % arrays.n_replicas
        y = arrays.target[p, r]
        past = transform(y[:, :n_enc])
        y_dq = y[:, n_enc:] + jitter[:, : y.shape[1] - n_enc] * arrays.unit[p, None, None]
        fields = None if arrays.fields is None else arrays.fields[p]
        out = self.network(arrays.static[p], arrays.known[p], past, arrays.z, fields)
        q = pinball_loss(out.quantiles, transform(y_dq), self.network.config.quantiles)
        m = F.mse_loss(out.mean, arrays.mean_t[p, n_enc:])
        if self.charge_weight > 0:
            moment = induced_moment(inverse_transform(out.mean), arrays.lever)
            rel = (moment - arrays.moment[p, n_enc:]) / arrays.moment_scale[p, None]
            m = m + self.charge_weight * rel.square().mean()
        return q + m

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Pinball + mean loss on one batch, in a randomly chosen mode (parameters only or continuation)."""
        (idx,) = batch
        n_enc = 1 if torch.rand(()) < 0.5 else self.context + 1
        shape = (idx.shape[0], self.train_arrays.target.shape[2], self.train_arrays.target.shape[3])
        jitter = torch.rand(shape) - 0.5
        loss = self._loss(self.train_arrays, idx, n_enc, jitter)
        self.samples_seen += int(idx.shape[0])
        self.log("train_loss", loss, prog_bar=True, batch_size=idx.shape[0])
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss of the validation points, predicted from parameters alone, with a fixed jitter."""
        (idx,) = batch
        shape = (idx.shape[0], self.val_arrays.target.shape[2], self.val_arrays.target.shape[3])
        jitter = torch.rand(shape, generator=self._val_gen) - 0.5
        loss = self._loss(self.val_arrays, idx, 1, jitter)
        self.log("val_loss", loss, prog_bar=True, batch_size=idx.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the validation jitter."""
        self._val_gen.manual_seed(12345)  # the same jitter every epoch: a stable criterion

    def configure_optimizers(self) -> Any:
        """AdamW with ReduceLROnPlateau on the validation loss."""
        opt = torch.optim.AdamW(self.network.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=4)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


def prepare(config: TrainConfig) -> tuple[FieldData, np.ndarray, np.ndarray, np.ndarray]:
    """Read the sweep and split it; return the data and the train/val/test indices (into the data)."""
    data = FieldData.from_sweep(
        open_sweep(config.sweep), parameters=config.parameters, known_names=config.known, continuum=config.continuum
    )
    if config.test_points is not None:
        ids = list(data.point)
        missing = [p for p in config.test_points if p not in ids]
        if missing:
            raise param_error("test_points", missing, f"finished point ids of the sweep ({len(ids)} points)")
        test = np.array([ids.index(p) for p in config.test_points])
        rest = np.setdiff1d(np.arange(data.n_points), test)
        n_val = max(1, round(config.val_fraction * rest.size))
        if n_val >= rest.size:
            raise param_error("test_points", config.test_points, "few enough to leave training points")
        perm = np.random.default_rng(config.split_seed).permutation(rest)
        return data, np.sort(perm[n_val:]), np.sort(perm[:n_val]), np.sort(test)
    train_i, val_i, test_i = split_points(
        data.n_points, test_fraction=config.test_fraction, val_fraction=config.val_fraction, seed=config.split_seed
    )
    return data, train_i, val_i, test_i


def train(config: TrainConfig, data: FieldData | None = None, split: tuple[Any, Any, Any] | None = None) -> Surrogate:
    """Train a surrogate and write its model directory.

    Parameters
    ----------
    config : TrainConfig
        Settings.
    data, split : optional
        Prepared data and (train, val, test) indices (default: :func:`prepare` from ``config``).

    Returns
    -------
    Surrogate
        The best model (lowest validation loss), also saved to ``config.out``, with
        ``info["metrics"]`` holding the held-out evaluation (:func:`surrodyn.surrogate.metrics.evaluate`).
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from .metrics import evaluate, fit_band_scale

    if data is None or split is None:
        data, *split = prepare(config)
    train_i, val_i, test_i = (np.asarray(s) for s in split)
    torch.set_num_threads(config.threads)
    lightning.seed_everything(config.seed, workers=True, verbose=False)
    tr, va = data.subset(train_i), data.subset(val_i)
    static_norm = Normalizer.fit(data.static_names, tr.static)
    known_norm = Normalizer.fit(data.known_names, tr.known)
    net_cfg = TFTConfig(
        static_names=data.static_names, known_names=data.known_names, field_names=data.field_names, **config.model
    )
    network = FieldTFT(net_cfg)
    train_arrays, val_arrays = _Arrays(tr, static_norm, known_norm), _Arrays(va, static_norm, known_norm)
    module = SurrogateModule(
        network,
        train_arrays,
        val_arrays,
        config.learning_rate,
        config.context_frames,
        config.weight_decay,
        config.charge_weight,
    )
    gen = torch.Generator().manual_seed(config.seed)
    # an "epoch" is at least `samples_per_epoch` series (the index set repeated): with tens of
    # points, per-epoch overhead (validation, checkpoint, logging) would otherwise dominate
    repeats = max(1, -(-config.samples_per_epoch // train_arrays.n_samples))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(train_arrays.n_samples).repeat(repeats)),
        batch_size=config.batch_size, shuffle=True, generator=gen,
    )  # fmt: skip
    val_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(val_arrays.n_samples)), batch_size=256
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", monitor="val_loss", save_top_k=1, filename="best")

    class _Bar(TQDMProgressBar):  # one bar for the epochs; no per-epoch validation bar
        def init_validation_tqdm(self) -> Any:
            bar = super().init_validation_tqdm()
            bar.disable = True
            return bar

    callbacks: list[Any] = [EarlyStopping("val_loss", patience=config.patience), ckpt]
    if config.progress:
        callbacks.append(_Bar())
    trainer = lightning.Trainer(
        max_epochs=config.max_epochs,
        max_time=None if config.budget_s is None else {"seconds": config.budget_s},
        callbacks=callbacks,
        logger=CSVLogger(out, name="logs", version=""),
        accelerator="cpu",
        devices=1,
        deterministic=True,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    t0 = time.perf_counter()
    trainer.fit(module, loader, val_loader)
    seconds = time.perf_counter() - t0
    if ckpt.best_model_path and os.path.exists(ckpt.best_model_path):
        state = torch.load(ckpt.best_model_path, weights_only=True)["state_dict"]
        network.load_state_dict({k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")})
    network.eval()
    info = {
        "fingerprint": data_fingerprint(data.static, data.target, np.asarray(test_i), np.asarray(train_i)),
        "train": config.to_dict(),
        "split": {
            "train": data.point[train_i].tolist(),
            "val": data.point[val_i].tolist(),
            "test": data.point[test_i].tolist(),
        },
        "epochs": int(trainer.current_epoch),
        "train_seconds": round(seconds, 2),
        "train_samples_per_s": round(module.samples_seen / seconds, 1),
        "best_val_loss": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
        "n_parameters": network.n_parameters(),
    }
    model = Surrogate(
        network, data.parameters, static_norm, known_norm, data.time_s, data.z, data.spec_yaml,
        config.context_frames, info,
    )  # fmt: skip
    if config.calibrate:  # on every non-test point: 5 validation points alone gave a noisy factor
        model.band_scale = fit_band_scale(model, data.subset(np.sort(np.concatenate([train_i, val_i]))))
        model.info["band_scale"] = model.band_scale
    model.info["metrics"] = evaluate(model, data.subset(test_i)).summary()
    model.save(out)
    return model
