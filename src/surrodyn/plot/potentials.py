"""Figures of neural-network potentials: parity plots, training histories and learning curves.

Every function takes plain arrays (what :meth:`surrodyn.potentials.HDNNP.predict_set`,
:class:`surrodyn.potentials.TrainResult` and :meth:`surrodyn.potentials.ActiveLearningResult.curve`
give) and returns a matplotlib Figure drawn on the headless Agg backend; :func:`save_figure` writes
and closes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, param_error

__all__ = [
    "curve_statistics",
    "plot_learning_curves",
    "plot_parity",
    "plot_training_history",
    "save_figure",
]

HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "lr")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _flat(values: Any, name: str) -> np.ndarray:
    """Values as a flat float array; a list of per-structure arrays is concatenated."""
    try:
        if isinstance(values, list | tuple) and values and np.ndim(values[0]) > 0:
            out = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values])
        else:
            out = np.ravel(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as exc:
        allowed = "an array of numbers (or a list of per-structure arrays)"
        raise param_error(name, type(values).__name__, allowed) from exc
    if out.size == 0:
        raise param_error(name, "an empty array", "at least one value")
    return out


def _pair(ref: Any, pred: Any, ref_name: str, pred_name: str) -> tuple[np.ndarray, np.ndarray]:
    r, p = _flat(ref, ref_name), _flat(pred, pred_name)
    if r.shape != p.shape:
        raise param_error(
            pred_name, f"{p.size} values", f"as many values as {ref_name} ({r.size})", "Pass matching structures."
        )
    return r, p


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _diagonal(ax: Any, x: np.ndarray, y: np.ndarray) -> None:
    finite = np.concatenate([x, y])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8, ls="--", zorder=0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")


def plot_parity(
    ref_energy_per_atom: Any,
    pred_energy_per_atom: Any,
    ref_forces: Any,
    pred_forces: Any,
    *,
    title: str | None = None,
) -> Any:
    """Plot predicted against reference energies per atom (left) and force components (right).

    Parameters
    ----------
    ref_energy_per_atom, pred_energy_per_atom : array_like, shape (n_structures,)
        Reference and predicted energies per atom in eV/atom. They are drawn in meV/atom relative
        to the mean of the reference, so that the spread, not the cohesive energy, fills the axes.
    ref_forces, pred_forces : array_like
        Reference and predicted forces in eV/Å, any shape (e.g. ``(n_atoms, 3)``) or a list of
        per-structure ``(n_atoms_k, 3)`` arrays; every Cartesian component is one point.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes; each legend holds the RMSE (meV/atom, meV/Å).

    Raises
    ------
    ConfigError
        If a prediction does not have as many values as its reference, or an input is empty or
        not numeric.
    """
    e_ref, e_pred = _pair(ref_energy_per_atom, pred_energy_per_atom, "ref_energy_per_atom", "pred_energy_per_atom")
    f_ref, f_pred = _pair(ref_forces, pred_forces, "ref_forces", "pred_forces")
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4.4), constrained_layout=True)
    shift = float(np.mean(e_ref))
    x, y = 1e3 * (e_ref - shift), 1e3 * (e_pred - shift)
    a.scatter(x, y, s=10, alpha=0.7, label=f"RMSE {1e3 * _rmse(e_ref, e_pred):.2f} meV/atom (n={e_ref.size})")
    _diagonal(a, x, y)
    a.set_xlabel(f"reference E/atom − {shift:.4f} eV (meV/atom)")
    a.set_ylabel("predicted E/atom (meV/atom, same shift)")
    a.set_title("energy")
    a.legend(loc="upper left", fontsize=8)
    b.scatter(f_ref, f_pred, s=4, alpha=0.4, label=f"RMSE {1e3 * _rmse(f_ref, f_pred):.1f} meV/Å (n={f_ref.size})")
    _diagonal(b, f_ref, f_pred)
    b.set_xlabel("reference force component (eV/Å)")
    b.set_ylabel("predicted force component (eV/Å)")
    b.set_title("forces")
    b.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_training_history(history: Mapping[str, Sequence[float]]) -> Any:
    """Plot the training and validation loss (log scale) and the learning rate against epoch.

    Parameters
    ----------
    history : mapping
        ``epoch``, ``train_loss``, ``val_loss`` and ``lr``, one value per epoch each (the
        ``history`` of :class:`surrodyn.potentials.TrainResult`). Losses are the weighted energy
        (eV²) + force (eV²/Å²) mean squared errors.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (loss, learning rate); the best validation epoch is marked.

    Raises
    ------
    ConfigError
        If a key is missing, the lists differ in length or are empty.
    """
    if not isinstance(history, Mapping):
        raise param_error("history", type(history).__name__, f"a mapping with keys {list(HISTORY_KEYS)}")
    missing = [k for k in HISTORY_KEYS if k not in history]
    if missing:
        raise param_error("history", f"a mapping without {missing}", f"a mapping with keys {list(HISTORY_KEYS)}")
    arrays = {k: _flat(history[k], f"history[{k!r}]") for k in HISTORY_KEYS}
    lengths = {k: v.size for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise param_error("history", f"lists of lengths {lengths}", "one value per epoch in every list")
    epoch, val = arrays["epoch"], arrays["val_loss"]
    plt = _plt()
    fig, (a, b) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True, constrained_layout=True)
    a.plot(epoch, arrays["train_loss"], label="train")
    a.plot(epoch, val, label="validation")
    if np.isfinite(val).any():
        best = int(np.nanargmin(val))
        a.axvline(epoch[best], color="0.5", ls=":", lw=1, label=f"best epoch {epoch[best]:.0f}")
    if (np.concatenate([arrays["train_loss"], val]) > 0).any():
        a.set_yscale("log")
    a.set_ylabel("loss (eV², eV²/Å²)")
    a.legend(fontsize=8)
    b.plot(epoch, arrays["lr"], color="C2")
    if (arrays["lr"] > 0).all():
        b.set_yscale("log")
    b.set_xlabel("epoch")
    b.set_ylabel("learning rate")
    return fig


def curve_statistics(
    runs: Sequence[tuple[Any, Any]], name: str = "curves"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute the mean and standard deviation over runs (seeds) of a metric at each number of labels.

    Parameters
    ----------
    runs : sequence of (n_labels, metric) pairs
        One pair of equal-length 1-D arrays per run, e.g.
        :meth:`surrodyn.potentials.ActiveLearningResult.curve`. Runs may stop at different
        lengths; each label count averages the runs that reached it. NaN values are skipped.
    name : str
        What to call ``runs`` in error messages.

    Returns
    -------
    n_labels : ndarray of int, shape (k,)
        Sorted label counts present in any run.
    mean, sd : ndarray, shape (k,)
        Mean and sample standard deviation (``ddof=1``; 0 for a single run, NaN with no value).
    count : ndarray of int, shape (k,)
        Runs with a finite value at that count.

    Raises
    ------
    ConfigError
        If ``runs`` is empty or a pair is not two 1-D arrays of one length.
    """
    if not isinstance(runs, Sequence) or len(runs) == 0:
        raise param_error(name, runs, "a non-empty list of (n_labels, metric) pairs, one per seed")
    table: dict[int, list[float]] = {}
    for k, run in enumerate(runs):
        if not isinstance(run, Sequence | np.ndarray) or len(run) != 2:
            raise param_error(f"{name}[{k}]", type(run).__name__, "an (n_labels, metric) pair of arrays")
        n, m = (np.asarray(v, dtype=float) for v in run)
        if n.ndim != 1 or m.ndim != 1 or n.shape != m.shape:
            raise param_error(
                f"{name}[{k}]", f"arrays of shapes {n.shape} and {m.shape}", "two 1-D arrays of the same length"
            )
        for labels, value in zip(n, m, strict=True):
            table.setdefault(int(labels), [])
            if np.isfinite(value):
                table[int(labels)].append(float(value))
    counts = np.array(sorted(table), dtype=np.int64)
    mean = np.array([np.mean(table[c]) if table[c] else np.nan for c in counts])
    sd = np.array([np.std(table[c], ddof=1) if len(table[c]) > 1 else (0.0 if table[c] else np.nan) for c in counts])
    return counts, mean, sd, np.array([len(table[c]) for c in counts], dtype=np.int64)


def plot_learning_curves(
    curves: Mapping[str, Sequence[tuple[Any, Any]]],
    *,
    metric_label: str,
    reference_level: float | None = None,
    reference_label: str | None = None,
    log_y: bool = True,
) -> Any:
    """Plot a test metric against the number of labels, mean ± sd over seeds, one line per strategy.

    Parameters
    ----------
    curves : mapping of str to list of (n_labels, metric) pairs
        Per strategy, one pair of 1-D arrays per seed (see :func:`curve_statistics`).
    metric_label : str
        Y-axis label with its unit, e.g. ``"test force RMSE (meV/Å)"``.
    reference_level : float, optional
        Draw a horizontal line at this value (e.g. random selection's error at its largest
        label count).
    reference_label : str, optional
        Legend entry of that line.
    log_y : bool, default True
        Logarithmic metric axis (only applied when every mean is positive).

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Raises
    ------
    ConfigError
        If ``curves`` is empty or a strategy's runs are malformed.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise param_error("curves", curves, "a non-empty mapping strategy -> list of (n_labels, metric) pairs")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    positive = True
    for k, (strategy, runs) in enumerate(curves.items()):
        n, mean, sd, count = curve_statistics(runs, f"curves[{strategy!r}]")
        color = f"C{k % 10}"
        seeds = int(count.max()) if count.size else 0
        ax.plot(n, mean, "o-", ms=3, color=color, label=f"{strategy} ({seeds} seed{'s' if seeds != 1 else ''})")
        ax.fill_between(n, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
        positive &= bool(np.all(mean[np.isfinite(mean)] > 0))
    if reference_level is not None:
        if not np.isfinite(reference_level):
            raise param_error("reference_level", reference_level, "a finite number or None")
        ax.axhline(float(reference_level), color="k", ls="--", lw=1, label=reference_label or "reference")
    if log_y and positive:
        ax.set_yscale("log")
    ax.set_xlabel("number of labelled structures")
    ax.set_ylabel(metric_label)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as an image (format from the suffix), close it, and return the path.

    Raises
    ------
    ConfigError
        If ``fig`` is not a matplotlib Figure.
    """
    if not hasattr(fig, "savefig"):
        raise ConfigError(f"save_figure needs a matplotlib Figure, got {type(fig).__name__}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return path
