"""Matplotlib figures for every result type (headless, Agg)."""

from .kmc import plot_kmc

__all__ = ["plot_kmc"]
