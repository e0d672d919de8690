"""Anchor: darts' ``TFTModel`` trained and evaluated on a :class:`Task`.

Layout ``multivariate``: one multivariate ``TimeSeries`` per (point, replica) with the n_z bins as components
(``z000..``), the task's static covariates attached to the series (one row: shared by all components), future
covariates = the task's known array, ``QuantileRegression([0.1, 0.5, 0.9])``, ``input_chunk_length = n_encoder``,
``output_chunk_length = n_time - n_encoder`` (so each training series yields exactly one window).

darts does not scale anything itself: the target gets the same global affine map as the pytorch-forecasting anchor
(:class:`task.TargetScaler`); static and known covariates are standardised with the training means and stds (what
pytorch-forecasting's default ``StandardScaler`` does). No validation series: all of the budget goes to training.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

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

LAYOUTS = ("multivariate",)


def _standardise(train: np.ndarray, *arrays: np.ndarray, axes: tuple[int, ...]) -> list[np.ndarray]:
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype(np.float32) for a in arrays]


def fit_predict(
    train: Task,
    test: Task,
    *,
    budget_s: float,
    seed: int,
    layout: str = "multivariate",
    latency_repeats: int = 5,
    max_steps: int | None = None,
) -> dict:
    """Train darts' TFTModel on ``train`` for ``budget_s`` seconds and forecast ``test``.

    Returns a dict with ``quantiles`` (n_test_points, 3, n_decoder, n_z) float32 for levels 0.1/0.5/0.9,
    ``train_samples`` (field windows), ``train_seconds``, ``epochs``, ``latency_s``, ``n_parameters`` and
    bookkeeping (``optimizer_steps``, ``peak_rss_mb``, ``prep_seconds``, ``config``, ``layout``, ``library``).
    ``max_steps`` also stops training after that many optimisation steps (reproducibility checks).
    """
    import pytorch_lightning as pl
    from darts import TimeSeries
    from darts.models import TFTModel
    from darts.utils.likelihood_models import QuantileRegression

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    quiet_lightning()
    seed_all(seed, pl.seed_everything)
    n_z, n_enc, n_dec = train.n_z, train.n_encoder, train.n_decoder
    components = [f"z{k:03d}" for k in range(n_z)]

    t_prep = time.perf_counter()
    scaler = TargetScaler.fit(train.y)
    static_tr, static_te = _standardise(train.static, train.static, test.static, axes=(0,))
    known_tr, known_te = _standardise(train.known, train.known, test.known, axes=(0, 1))

    def static_frame(row: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame([row], columns=list(train.static_names))

    y_tr = scaler.transform(train.y)
    series, future = [], []
    for p in range(train.n_points):
        fc = TimeSeries.from_values(known_tr[p], columns=list(train.known_names))
        for r in range(train.n_replicas):
            series.append(
                TimeSeries.from_values(y_tr[p, r], columns=components, static_covariates=static_frame(static_tr[p]))
            )
            future.append(fc)
    ctx = scaler.transform(test.context())  # (p, n_enc, z)
    test_series = [
        TimeSeries.from_values(ctx[p], columns=components, static_covariates=static_frame(static_te[p]))
        for p in range(test.n_points)
    ]
    test_future = [TimeSeries.from_values(known_te[p], columns=list(train.known_names)) for p in range(test.n_points)]
    prep_seconds = time.perf_counter() - t_prep

    budget = make_budget_callback(
        pl.Callback, budget_s, batch_size=lambda batch: batch.past_target.shape[0], max_steps=max_steps
    )
    model = TFTModel(
        input_chunk_length=n_enc,
        output_chunk_length=n_dec,
        hidden_size=MODEL_CONFIG["hidden_size"],
        lstm_layers=MODEL_CONFIG["lstm_layers"],
        num_attention_heads=MODEL_CONFIG["attention_heads"],
        dropout=MODEL_CONFIG["dropout"],
        hidden_continuous_size=MODEL_CONFIG["hidden_continuous_size"],
        batch_size=MODEL_CONFIG["batch_size"],
        n_epochs=1_000_000,  # the budget callback stops training
        likelihood=QuantileRegression(quantiles=list(QUANTILES)),
        optimizer_kwargs={"lr": MODEL_CONFIG["learning_rate"]},
        use_static_covariates=True,
        random_state=seed,
        save_checkpoints=False,
        force_reset=True,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "devices": 1,
            "callbacks": [budget],
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "gradient_clip_val": MODEL_CONFIG["gradient_clip_val"],
            "deterministic": "warn",
        },
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        model.fit(series, future_covariates=future, verbose=False, dataloader_kwargs={"pin_memory": False})

    # ---- forecast the test points
    names = [f"{c}_q{q:.3f}" for q in QUANTILES for c in components]  # (q, z) order

    def predict(s, f):
        return model.predict(
            n=n_dec,
            series=s,
            future_covariates=f,
            predict_likelihood_parameters=True,
            verbose=False,
            dataloader_kwargs={"pin_memory": False},
        )

    preds = predict(test_series, test_future)
    out = np.stack([pred[names].values(copy=False).reshape(n_dec, len(QUANTILES), n_z) for pred in preds])
    quantiles = scaler.inverse(out.transpose(0, 2, 1, 3))  # (p, 3, n_dec, z)
    latency_s, _ = median_latency(lambda: predict(test_series[:1], test_future[:1]), repeats=latency_repeats)

    windows_per_series = max(1, train.n_time - n_enc - n_dec + 1)
    return {
        "library": "darts",
        "layout": layout,
        "quantiles": np.ascontiguousarray(quantiles, dtype=np.float32),
        "train_samples": budget.samples,
        "train_seconds": budget.seconds,
        "epochs": budget.samples / (len(series) * windows_per_series),
        "optimizer_steps": budget.batches,
        "latency_s": latency_s,
        "n_parameters": count_parameters(model.model),
        "prep_seconds": prep_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "threads": n_threads(),
        **budget.contention(),
        "n_targets": n_z,
        "config": dict(MODEL_CONFIG),
    }
