"""Matplotlib figures for every result type (headless, Agg)."""

from .compare import plot_comparison
from .kmc import plot_kmc
from .potentials import curve_statistics, plot_learning_curves, plot_parity, plot_training_history, save_figure

__all__ = [
    "curve_statistics",
    "plot_comparison",
    "plot_kmc",
    "plot_learning_curves",
    "plot_parity",
    "plot_training_history",
    "save_figure",
]
