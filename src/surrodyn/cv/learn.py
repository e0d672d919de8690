"""Learn collective variables from feature frames: standardise, train the beta-VAE, diagnose, save.

The entry point is :func:`fit_cv`; a trained model is a :class:`LearnedCV` (standardisation
statistics + network + diagnostics), saved as a directory and loadable without the data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch

from ..data.io import atomic_torch_save, atomic_write_bytes
from ..errors import ConfigError, param_error
from .vae import DECORRELATION_KINDS, BetaVAE, BetaVAEConfig, decorrelation_penalty, diagnostics, vae_loss

__all__ = [
    "CollapseWarning",
    "FitSettings",
    "LearnedCV",
    "Standardizer",
    "fit_cv",
    "full_weight_epoch",
    "lagged_pairs",
    "weights_at_epoch",
]


FORMAT_VERSION = 1  # of the model directory written by LearnedCV.save


class CollapseWarning(UserWarning):
    """A latent dimension carries no information (posterior collapse)."""


SCALINGS = ("sqrt", "standard", "global")


def _constant(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the features (columns of x) that do not vary beyond round-off."""
    return x.std(0) <= 1e-12 * (1.0 + np.abs(x.mean(0)))


@dataclass(frozen=True)
class Standardizer:
    """Per-feature centre and scale that make features dimensionless.

    Parameters
    ----------
    mean : numpy.ndarray
        Centre of each feature.
    std : numpy.ndarray
        Scale of each feature (its standard deviation for ``scaling="standard"``; see :meth:`fit`).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, scaling: str = "standard") -> Standardizer:
        """Fit on frames (N, F).

        Parameters
        ----------
        x : numpy.ndarray
            Feature frames (N, F).
        scaling : str
            How the scale s_f of feature f follows from the standard deviations σ_f and their root
            mean square σ̄ over the features:

            - ``"standard"``: s_f = σ_f, every feature unit variance. A bond vibration weighs as
              much as a torsion-driven distance.
            - ``"global"``: s_f = σ̄, relative variances kept (what a loss in raw units does, as in
              mlcolvar's autoencoder). The few largest-variance features dominate.
            - ``"sqrt"``: s_f = √(σ_f σ̄), the geometric mean of the two: feature f keeps variance
              σ_f/σ̄, so large motions weigh more than vibrations, but not quadratically more.

            ``"global"`` and ``"sqrt"`` compare variances across features, so they assume features
            of one unit (all distances, say). Constant features keep scale 1.
        """
        if scaling not in SCALINGS:
            raise param_error("scaling", scaling, f"one of {list(SCALINGS)}")
        x = np.asarray(x, dtype=np.float64)
        mean, sigma = x.mean(0), x.std(0)
        varying = ~_constant(x)
        rms = float(np.sqrt(np.mean(sigma[varying] ** 2))) if varying.any() else 1.0
        scale = {"standard": sigma, "global": np.full_like(sigma, rms), "sqrt": np.sqrt(sigma * rms)}[scaling]
        return cls(mean, np.where(varying, scale, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Centre and scale frames (..., F), as float32."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True)
class FitSettings:
    """Training settings of :func:`fit_cv`.

    Parameters
    ----------
    beta : float
        Weight of the KL term (per frame, against the reconstruction summed over features). 0 gives
        a plain, deterministic autoencoder (the bottleneck is the encoder mean, no sampling): the
        AE baseline.
    scaling : str
        Feature scaling before the network (:meth:`Standardizer.fit`): ``"sqrt"`` (default, for
        features of one unit such as distances), ``"standard"`` (every feature unit variance, the
        choice for mixed units) or ``"global"``.
    decorrelation : float
        Weight λ of a penalty λ Σ_{i≠j} r_ij² on the Pearson correlations r_ij between the encoder
        means of the latent dimensions over each batch (the off-diagonal term of DIP-VAE-I, Kumar,
        Sattigeri & Balakrishnan 2018, on correlations rather than covariances so that it does not
        depend on the latent's scale). 0 (default) switches it off. It is off during the β
        warm-up and then rises linearly over ``warmup_epochs / 2`` epochs: switched on from the
        start it decorrelates two correlated factors by rotating the latent into their sum and
        difference; switched on late it bends latents that have already settled on one factor
        each. Most useful with ``decoder_kind="additive"`` (:class:`~surrodyn.cv.vae.BetaVAEConfig`).
    decorrelation_kind : {"linear", "nonlinear"}
        ``"linear"`` penalises the Pearson correlations above; ``"nonlinear"`` the correlations
        between u, u² and tanh(2u) of the standardised latents (nonlinear decorrelation,
        :func:`~surrodyn.cv.vae.decorrelation_penalty`), which also removes dependence that has no
        linear part.
    warmup_epochs : int
        Epochs over which β rises linearly from 0 to ``beta`` (0: constant β).
    lag : int
        Time lag τ in frames: reconstruct the frame at t + τ (0: the frame itself).
    max_epochs, patience : int
        Epoch limit and early-stopping patience on the validation loss.
    batch_size : int
        Frames per batch.
    learning_rate : float
        Adam learning rate.
    val_fraction : float
        Frames (contiguous blocks, not random frames, so that correlated neighbours do not leak)
        held out for early stopping.
    seed : int
        Seed of initialisation, split and batching.
    threads : int
        Torch intra-op threads.
    budget_s : float or None
        Limit on the CPU time of training (``time.process_time`` of this process, checked after
        every epoch), so that other jobs on the machine do not cut training short; with
        ``threads=1`` it is the training's wall time on an idle core. A fit stopped by it is
        reproducible only up to the few epochs by which CPU speed varies.
    progress : bool
        Show Lightning's progress bar.
    """

    beta: float = 0.1
    scaling: str = "sqrt"
    decorrelation: float = 0.0
    decorrelation_kind: str = "linear"
    warmup_epochs: int = 0
    lag: int = 0
    max_epochs: int = 300
    patience: int = 20
    batch_size: int = 256
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 1
    budget_s: float | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("beta", "decorrelation"):
            if not getattr(self, name) >= 0:
                raise param_error(name, getattr(self, name), "a non-negative number")
        if self.decorrelation_kind not in DECORRELATION_KINDS:
            raise param_error("decorrelation_kind", self.decorrelation_kind, f"one of {list(DECORRELATION_KINDS)}")
        if self.scaling not in SCALINGS:
            raise param_error("scaling", self.scaling, f"one of {list(SCALINGS)}")
        for name in ("max_epochs", "patience", "batch_size", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise param_error(name, value, "a positive integer")
        for name in ("warmup_epochs", "lag"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise param_error(name, value, "a non-negative integer")
        if not 0 < self.val_fraction < 0.5:
            raise param_error("val_fraction", self.val_fraction, "a fraction in (0, 0.5)")
        if not self.learning_rate > 0:
            raise param_error("learning_rate", self.learning_rate, "a positive number")


def lagged_pairs(trajectories: Sequence[np.ndarray], lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Input frames and their targets ``lag`` frames later, never across trajectory boundaries.

    Parameters
    ----------
    trajectories : sequence of numpy.ndarray
        Feature arrays (n_frames_i, F), each one continuous trajectory.
    lag : int
        Lag in frames (0: targets are the inputs).

    Returns
    -------
    tuple of numpy.ndarray
        Inputs and targets, each (N, F).
    """
    xs, ys = [], []
    for traj in trajectories:
        traj = np.asarray(traj)
        if traj.ndim != 2:
            raise ConfigError(f"a trajectory's features must be (frames, features); got shape {traj.shape}.")
        if traj.shape[0] > lag:
            xs.append(traj[: traj.shape[0] - lag])
            ys.append(traj[lag:])
    if not xs:
        raise ConfigError(f"no trajectory is longer than the lag ({lag} frames).")
    if len({x.shape[1] for x in xs}) != 1:
        raise ConfigError("all trajectories must have the same features.")
    return np.concatenate(xs), np.concatenate(ys)


class _CPUBudget(lightning.Callback):
    """Stop training once the process has used ``seconds`` of CPU time since the fit began."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.start = time.process_time()

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        if self.seconds is not None and time.process_time() - self.start >= self.seconds:
            trainer.should_stop = True


def full_weight_epoch(settings: FitSettings) -> int:
    """First epoch (0-based) trained with the full β and decorrelation weight.

    Early stopping and the choice of the best weights wait for it: a model stopped before the
    schedule ends was never trained on the objective it is judged by.
    """
    w = settings.warmup_epochs
    if w == 0:
        return 0
    if settings.decorrelation <= 0:
        return w - 1
    return w + math.ceil(_decorrelation_ramp(w))


def _decorrelation_ramp(warmup_epochs: int) -> float:
    """Epochs over which the decorrelation weight rises after a β warm-up of ``warmup_epochs``."""
    return max(1.0, warmup_epochs / 2)


def weights_at_epoch(settings: FitSettings, epoch: int) -> tuple[float, float]:
    """β and the decorrelation weight used in training epoch ``epoch`` (0-based).

    β rises linearly over the first ``warmup_epochs`` epochs. The decorrelation weight is 0 until
    then and rises linearly over the next ``warmup_epochs / 2`` (at least one; without a warm-up
    both are constant): the latents first settle on their factors and are then decorrelated by
    bending, not by rotating into mixtures.

    Parameters
    ----------
    settings : FitSettings
        Training settings.
    epoch : int
        Epoch index.

    Returns
    -------
    tuple of float
        (β, decorrelation weight).
    """
    w = settings.warmup_epochs
    if w == 0:
        return settings.beta, settings.decorrelation
    beta = settings.beta * min(1.0, (epoch + 1) / w)
    return beta, settings.decorrelation * min(1.0, max(0.0, (epoch - w) / _decorrelation_ramp(w)))


class _Module(lightning.LightningModule):
    def __init__(self, network: BetaVAE, settings: FitSettings) -> None:
        super().__init__()
        self.network, self.settings = network, settings

    def _objective(self, x: torch.Tensor, y: torch.Tensor, beta: float, decorrelation: float, sample: bool):
        """(total, reconstruction, KL) of a batch: the beta-VAE loss plus the weighted decorrelation penalty."""
        out = self.network(x, sample=sample)
        loss, recon, kl = vae_loss(out, y, beta)
        if decorrelation > 0:
            loss = loss + decorrelation * decorrelation_penalty(out.mu, self.settings.decorrelation_kind)
        return loss, recon, kl

    def on_train_epoch_start(self) -> None:
        self._sums = torch.zeros(4)  # frames, then frame-weighted loss, reconstruction, KL

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        beta, decorrelation = weights_at_epoch(self.settings, self.current_epoch)
        loss, recon, kl = self._objective(x, y, beta, decorrelation, sample=self.settings.beta > 0)
        # summed here and logged once per epoch: Lightning's per-step logging costs more than the
        # step of so small a network
        n = x.shape[0]
        self._sums += torch.stack([torch.tensor(float(n)), n * loss.detach(), n * recon.detach(), n * kl.detach()])
        return loss

    def on_train_epoch_end(self) -> None:
        mean = self._sums[1:] / self._sums[0]
        self.log_dict(dict(zip(("train_loss", "recon", "kl"), mean, strict=True)), prog_bar=True)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        # the full objective (full beta and decorrelation weight) with z = mu: a deterministic
        # criterion that does not drift with the warm-up
        loss, _, _ = self._objective(x, y, self.settings.beta, self.settings.decorrelation, sample=False)
        self.log("val_loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.network.parameters(), lr=self.settings.learning_rate)


@dataclass
class LearnedCV:
    """A trained beta-VAE CV: standardisation, network, feature names and diagnostics.

    Parameters
    ----------
    network : BetaVAE
        The trained network (eval mode).
    standardizer : Standardizer
        Feature statistics of the training frames.
    feature_names : list of str
        One name per feature.
    info : dict
        Settings, diagnostics (:func:`surrodyn.cv.vae.diagnostics`) and timings.
    """

    network: BetaVAE
    standardizer: Standardizer
    feature_names: list[str]
    info: dict[str, Any]

    @property
    def n_latent(self) -> int:
        """Number of latent dimensions."""
        return self.network.config.n_latent

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Return the CVs (encoder means) of frames (N, F), shape (N, n_latent)."""
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ConfigError(f"features must be (frames, {len(self.feature_names)}); got shape {x.shape}.")
        with torch.inference_mode():
            mu, _ = self.network.encode(torch.from_numpy(self.standardizer(x)))
        return mu.numpy().astype(np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the model directory: ``weights.pt``, ``model.json`` (config, statistics, names, info)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(out / "weights.pt", self.network.state_dict())
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "beta-vae",
            "config": dataclasses.asdict(self.network.config),
            "mean": self.standardizer.mean.tolist(),
            "std": self.standardizer.std.tolist(),
            "feature_names": list(self.feature_names),
            "info": self.info,
        }
        atomic_write_bytes(out / "model.json", json.dumps(meta, indent=1).encode())
        return out

    @classmethod
    def load(cls, path: str | Path) -> LearnedCV:
        """Read a model directory written by :meth:`save`."""
        p = Path(path)
        if not (p / "model.json").is_file() or not (p / "weights.pt").is_file():
            raise ConfigError(f"{p} is not a CV model directory (model.json and weights.pt expected).")
        meta = json.loads((p / "model.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{p}: CV model format {meta.get('format_version')}, this code reads {FORMAT_VERSION}.")
        cfg = meta["config"]
        cfg = BetaVAEConfig(**{**cfg, "encoder": tuple(cfg["encoder"]), "decoder": tuple(cfg["decoder"])})
        network = BetaVAE(cfg)
        network.load_state_dict(torch.load(p / "weights.pt", weights_only=True))
        network.eval()
        std = Standardizer(np.asarray(meta["mean"]), np.asarray(meta["std"]))
        return cls(network, std, list(meta["feature_names"]), meta["info"])


def _blocks_split(n: int, val_fraction: float, rng: np.random.Generator, n_blocks: int = 100) -> np.ndarray:
    """Boolean validation mask of whole blocks out of ``n_blocks`` contiguous ones (neighbours stay together)."""
    edges = np.linspace(0, n, n_blocks + 1).astype(int)
    k = max(1, round(val_fraction * (len(edges) - 1)))
    chosen = rng.choice(len(edges) - 1, size=k, replace=False)
    mask = np.zeros(n, dtype=bool)
    for c in chosen:
        mask[edges[c] : edges[c + 1]] = True
    return mask


def fit_cv(
    trajectories: np.ndarray | Sequence[np.ndarray],
    config: BetaVAEConfig | dict[str, Any] | None = None,
    settings: FitSettings | None = None,
    feature_names: Sequence[str] | None = None,
) -> LearnedCV:
    """Train a beta-VAE CV on feature frames.

    Parameters
    ----------
    trajectories : numpy.ndarray or sequence of numpy.ndarray
        Features (n_frames, F) of one trajectory, or a list of trajectories (for a lag > 0 the
        frames of each must be consecutive in time).
    config : BetaVAEConfig or dict, optional
        Architecture (``n_features`` is taken from the data when a dict or None is given).
    settings : FitSettings, optional
        Training settings.
    feature_names : sequence of str, optional
        One name per feature (default ``f0, f1, ...``).

    Returns
    -------
    LearnedCV
        The model with ``info["diagnostics"]`` (KL per dimension, active units, variance
        explained on all frames). A :class:`CollapseWarning` is issued for every inactive latent
        dimension.
    """
    settings = settings or FitSettings()
    trajs = [trajectories] if isinstance(trajectories, np.ndarray) and np.ndim(trajectories) == 2 else trajectories
    x, y = lagged_pairs(list(trajs), settings.lag)
    if not np.isfinite(x).all():
        raise ConfigError("the features contain NaN or infinite values.")
    n_frames, n_features = x.shape
    if n_frames < 20:
        raise ConfigError(f"{n_frames} frames are too few to learn a CV (at least 20 needed).")
    names = [f"f{i}" for i in range(n_features)] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ConfigError(f"{len(names)} feature names for {n_features} features.")
    if isinstance(config, BetaVAEConfig):
        if config.n_features != n_features:
            raise param_error("n_features", config.n_features, f"the data's {n_features} features")
        cfg = config
    else:
        cfg = BetaVAEConfig(n_features=n_features, **(config or {}))
    torch.set_num_threads(settings.threads)
    lightning.seed_everything(settings.seed, workers=True, verbose=False)
    frames = np.concatenate([np.asarray(t) for t in trajs])
    std = Standardizer.fit(frames, settings.scaling)
    constant = np.flatnonzero(_constant(frames))
    if constant.size:
        warnings.warn(
            f"features {[names[i] for i in constant]} are constant in the data and carry nothing.",
            UserWarning,
            stacklevel=2,
        )
    xs, ys = torch.from_numpy(std(x)), torch.from_numpy(std(y))
    val = _blocks_split(n_frames, settings.val_fraction, np.random.default_rng(settings.seed))
    gen = torch.Generator().manual_seed(settings.seed)
    train_ds = torch.utils.data.TensorDataset(xs[~val], ys[~val])
    # whole batches by one tensor index each (batch_size=None): per-frame fetching and collating
    # would cost more than the step of so small a network
    batches = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(train_ds, generator=gen), settings.batch_size, drop_last=False
    )
    loader = torch.utils.data.DataLoader(train_ds, sampler=batches, batch_size=None)
    val_loader = torch.utils.data.DataLoader([(xs[val], ys[val])], batch_size=None)
    network = BetaVAE(cfg)
    module = _Module(network, settings)
    from lightning.pytorch.callbacks import EarlyStopping

    best: dict[str, Any] = {}
    first_full = full_weight_epoch(settings)

    class _KeepBest(lightning.Callback):  # the weights of the lowest validation loss, in memory
        def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
            loss = trainer.callback_metrics.get("val_loss")
            warm = trainer.current_epoch >= first_full
            if loss is not None and warm and float(loss) < best.get("loss", np.inf):
                best["loss"] = float(loss)
                best["state"] = {k: v.detach().clone() for k, v in network.state_dict().items()}

    class _EarlyStopping(EarlyStopping):  # patience counts from the first full-weight epoch
        def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
            if trainer.current_epoch >= first_full:
                super().on_validation_end(trainer, pl_module)

        def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
            if trainer.current_epoch >= first_full:
                super().on_train_epoch_end(trainer, pl_module)

    trainer = lightning.Trainer(
        max_epochs=settings.max_epochs,
        callbacks=[_EarlyStopping("val_loss", patience=settings.patience), _KeepBest(), _CPUBudget(settings.budget_s)],
        logger=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    t0 = time.perf_counter()
    trainer.fit(module, loader, val_loader)
    seconds = time.perf_counter() - t0
    if "state" in best:
        network.load_state_dict(best["state"])
    network.eval()
    diag = diagnostics(network, xs, ys)
    info = {
        "settings": dataclasses.asdict(settings),
        "n_frames": int(n_frames),
        "epochs": int(trainer.current_epoch),
        "train_seconds": round(seconds, 3),
        "best_val_loss": best.get("loss"),
        "diagnostics": diag,
    }
    for d, active in enumerate(diag["active"]):
        if not active:
            warnings.warn(
                f"latent dimension {d} is inactive (Var of its mean {diag['latent_variance'][d]:.2e}, KL "
                f"{diag['kl_per_dim'][d]:.2e} nats): it carries nothing. Lower beta, or use fewer latent dimensions.",
                CollapseWarning,
                stacklevel=2,
            )
    return LearnedCV(network, std, names, info)
