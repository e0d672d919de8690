"""Anchor: pytorch-forecasting's ``TemporalFusionTransformer`` trained and evaluated on a :class:`Task`.

Layouts
-------
``per_bin``
    One series per (point, replica, z bin): a single target ``y``, the bin position ``z`` (0..1) as a static real next
    to the task's static covariates, ``QuantileLoss([0.1, 0.5, 0.9])``. A field forecast is n_z series.
``multi_target``
    One series per (point, replica) with the bins as separate targets ``y000..`` (each also an encoder input),
    ``MultiLoss`` of one ``QuantileLoss`` per target. ``n_targets`` (default: n_z) coarsens z into that many contiguous
    groups (group mean) if the full 99 targets are impractical; forecasts are then repeated over each group's bins.

The target is scaled by one global affine map (:class:`task.TargetScaler`) and pytorch-forecasting's own target
normaliser is the identity; static and known reals go through the library's default ``StandardScaler``. No validation
loop: all of the budget goes to training.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import torch

# run from benchmarks/anchors (or with that directory on sys.path), as smoke.py and
# benchmarks/tft_vs_anchors.py do
from task import (
    MODEL_CONFIG,
    QUANTILES,
    TargetScaler,
    Task,
    count_parameters,
    make_budget_callback,
    median_latency,
    n_threads,
    peak_rss_mb,
    quiet_lightning,
    seed_all,
)

LAYOUTS = ("per_bin", "multi_target")


def _z_groups(n_z: int, n_targets: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n_z), n_targets)


def _frame(task: Task, y: np.ndarray, layout: str, groups: list[np.ndarray], prefix: str) -> pd.DataFrame:
    """Long DataFrame of ``y`` (n_points, n_series_per_point, n_time, n_z) in the given layout.

    Columns: ``series`` (str), ``time_idx``, the target(s), static reals, known reals (and ``z`` for per_bin).
    """
    n_p, n_s, n_t, n_z = y.shape
    t_idx = np.arange(n_t)
    if layout == "per_bin":
        # rows ordered (point, s, z, time)
        shape = (n_p, n_s, n_z, n_t)
        p, s, z, t = (a.ravel() for a in np.meshgrid(*(np.arange(k) for k in shape), indexing="ij"))
        data = {
            "series": [f"{prefix}{a}_{b}_{c}" for a, b, c in zip(p, s, z, strict=True)],
            "time_idx": t_idx[t],
            "y": y.transpose(0, 1, 3, 2).ravel(),
            "z": (z / max(n_z - 1, 1)).astype(np.float32),
        }
    else:
        shape = (n_p, n_s, n_t)
        p, s, t = (a.ravel() for a in np.meshgrid(*(np.arange(k) for k in shape), indexing="ij"))
        data = {"series": [f"{prefix}{a}_{b}" for a, b in zip(p, s, strict=True)], "time_idx": t_idx[t]}
        coarse = np.stack([y[..., g].mean(axis=-1) for g in groups], axis=-1)  # (p, s, t, n_targets)
        for k in range(len(groups)):
            data[f"y{k:03d}"] = coarse[..., k].ravel()
    for j, name in enumerate(task.static_names):
        data[name] = task.static[p, j]
    for j, name in enumerate(task.known_names):
        data[name] = task.known[p, t, j]
    return pd.DataFrame(data)


def _test_y(task: Task) -> np.ndarray:
    """Test series: the replica-mean context, then the last context frame held (a placeholder the model never sees
    as input: decoder targets only enter a loss)."""
    ctx = task.context()  # (p, n_enc, z)
    hold = np.repeat(ctx[:, -1:], task.n_decoder, axis=1)
    return np.concatenate([ctx, hold], axis=1)[:, None]  # (p, 1, t, z)


def fit_predict(
    train: Task,
    test: Task,
    *,
    budget_s: float,
    seed: int,
    layout: str,
    n_targets: int | None = None,
    latency_repeats: int = 5,
    max_steps: int | None = None,
) -> dict:
    """Train pytorch-forecasting's TFT on ``train`` for ``budget_s`` seconds and forecast ``test``.

    Returns a dict with ``quantiles`` (n_test_points, 3, n_decoder, n_z) float32 for levels 0.1/0.5/0.9,
    ``train_samples`` (field windows), ``train_seconds``, ``epochs``, ``latency_s``, ``n_parameters`` and
    bookkeeping (``optimizer_steps``, ``peak_rss_mb``, ``prep_seconds``, ``train_rows``, ``train_frame_mb``,
    ``config``, ``n_targets``, ``layout``, ``library``).
    ``max_steps`` also stops training after that many optimisation steps (reproducibility checks).
    """
    import lightning.pytorch as pl
    from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet
    from pytorch_forecasting.data import MultiNormalizer, NaNLabelEncoder, TorchNormalizer
    from pytorch_forecasting.metrics import MultiLoss, QuantileLoss

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    quiet_lightning()
    seed_all(seed, pl.seed_everything)
    n_z, n_enc, n_dec = train.n_z, train.n_encoder, train.n_decoder
    n_targets = n_z if (layout == "multi_target" and n_targets is None) else n_targets
    groups = _z_groups(n_z, n_targets) if layout == "multi_target" else []
    scaler = TargetScaler.fit(train.y)

    t_prep = time.perf_counter()
    train_df = _frame(train, scaler.transform(train.y), layout, groups, prefix="tr")
    if layout == "per_bin":
        target: str | list[str] = "y"
        unknown = ["y"]
        static_reals = [*train.static_names, "z"]
        normalizer = TorchNormalizer(method="identity")
        loss = QuantileLoss(quantiles=list(QUANTILES))
    else:
        target = [f"y{k:03d}" for k in range(n_targets)]
        unknown = list(target)
        static_reals = list(train.static_names)
        normalizer = MultiNormalizer([TorchNormalizer(method="identity") for _ in target])
        loss = MultiLoss([QuantileLoss(quantiles=list(QUANTILES)) for _ in target])
    train_ds = TimeSeriesDataSet(
        train_df,
        time_idx="time_idx",
        target=target,
        group_ids=["series"],
        max_encoder_length=n_enc,
        min_encoder_length=n_enc,
        max_prediction_length=n_dec,
        min_prediction_length=n_dec,
        static_reals=static_reals,
        time_varying_known_reals=list(train.known_names),
        time_varying_unknown_reals=unknown,
        target_normalizer=normalizer,
        # test series are new groups: without add_nan the multi-target dataset raises KeyError "Unknown category"
        categorical_encoders={"series": NaNLabelEncoder(add_nan=True)},
    )
    loader = train_ds.to_dataloader(train=True, batch_size=MODEL_CONFIG["batch_size"], num_workers=0)
    prep_seconds = time.perf_counter() - t_prep

    model = TemporalFusionTransformer.from_dataset(
        train_ds,
        hidden_size=MODEL_CONFIG["hidden_size"],
        lstm_layers=MODEL_CONFIG["lstm_layers"],
        attention_head_size=MODEL_CONFIG["attention_heads"],
        dropout=MODEL_CONFIG["dropout"],
        hidden_continuous_size=MODEL_CONFIG["hidden_continuous_size"],
        learning_rate=MODEL_CONFIG["learning_rate"],
        optimizer="adam",
        loss=loss,
        log_interval=-1,
        # None is documented to disable the scheduler, but pf 1.8.0 then returns ``lr_scheduler: {}``, which
        # Lightning 2.6 rejects (MisconfigurationException). Without a validation loop, the default plateau
        # scheduler (monitor val_loss, strict=False) never fires: the learning rate stays constant.
        reduce_on_plateau_patience=1000,
        logging_metrics=torch.nn.ModuleList([]),
    )
    budget = make_budget_callback(
        pl.Callback, budget_s, batch_size=lambda batch: batch[0]["encoder_lengths"].shape[0], max_steps=max_steps
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        gradient_clip_val=MODEL_CONFIG["gradient_clip_val"],
        callbacks=[budget],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        deterministic="warn",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(model, train_dataloaders=loader)
    model.eval()

    # ---- forecast the test points
    series_per_field = n_z if layout == "per_bin" else 1
    windows_per_epoch = len(train_ds)  # one window per series when n_time == n_encoder + n_decoder
    test_y = scaler.transform(_test_y(test))
    predict_kwargs = {
        "mode": "quantiles",
        "batch_size": 256,
        "trainer_kwargs": {"accelerator": "cpu", "logger": False, "enable_model_summary": False},
    }

    def predict(df: pd.DataFrame) -> np.ndarray:
        """(n_points, 3, n_dec, n_z) quantiles, in the scaled target units, for a test frame."""
        out = model.predict(df, return_index=True, **predict_kwargs)
        index = out.index
        if layout == "per_bin":
            q = out.output.detach().cpu().numpy()  # (rows, n_dec, 3)
        else:
            q = torch.stack(list(out.output), dim=-1).detach().cpu().numpy()  # (rows, n_dec, 3, n_targets)
        p = np.array([int(s[2:].split("_")[0]) for s in index["series"]])
        n_p = int(p.max()) + 1
        if layout == "per_bin":
            z = np.array([int(s.rsplit("_", 1)[1]) for s in index["series"]])
            res = np.empty((n_p, len(QUANTILES), n_dec, n_z), dtype=np.float32)
            res[p, :, :, z] = q.transpose(0, 2, 1)  # (rows, 3, n_dec)
            return res
        coarse = np.empty((n_p, len(QUANTILES), n_dec, len(groups)), dtype=np.float32)
        coarse[p] = q.transpose(0, 2, 1, 3)
        group_of_bin = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
        res = coarse[..., group_of_bin]
        return res

    test_df = _frame(test, test_y, layout, groups, prefix="te")
    one_df = _frame(test.subset([0]), test_y[:1], layout, groups, prefix="te")
    quantiles = scaler.inverse(predict(test_df))
    latency_s, _ = median_latency(lambda: model.predict(one_df, **predict_kwargs), repeats=latency_repeats)

    return {
        "library": "pytorch-forecasting",
        "layout": layout,
        "quantiles": np.ascontiguousarray(quantiles, dtype=np.float32),
        "train_samples": budget.samples / series_per_field,
        "train_seconds": budget.seconds,
        "epochs": budget.samples / windows_per_epoch,
        "optimizer_steps": budget.batches,
        "latency_s": latency_s,
        "n_parameters": count_parameters(model),
        "prep_seconds": prep_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "threads": n_threads(),
        **budget.contention(),
        "n_targets": n_targets if layout == "multi_target" else 1,
        "train_rows": len(train_df),
        "train_frame_mb": float(train_df.memory_usage(deep=True).sum() / 2**20),
        "config": dict(MODEL_CONFIG),
    }
