"""Matplotlib figures for every result type (headless, Agg)."""

from .compare import plot_comparison
from .kmc import plot_kmc

__all__ = ["plot_comparison", "plot_kmc"]
