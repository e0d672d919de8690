"""Losses of the surrogate: the pinball (quantile) loss as a pure function and a module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["QuantileLoss", "pinball_loss"]


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Mean pinball loss of quantile predictions.

    Parameters
    ----------
    pred : torch.Tensor
        (B, Q, ...) predicted quantiles.
    target : torch.Tensor
        (B, ...) observations.
    quantiles : sequence of float
        The Q levels.

    Returns
    -------
    torch.Tensor
        Scalar: mean over every axis of ``max(q (y - ŷ_q), (q - 1)(y - ŷ_q))``.

    Notes
    -----
    The expected loss is minimised by the true q-quantile (Koenker & Bassett 1978,
    doi:10.2307/1913643), so training on individual replicas learns their spread.
    """
    q = torch.as_tensor(quantiles, dtype=pred.dtype, device=pred.device).view(1, -1, *([1] * (pred.dim() - 2)))
    err = target.unsqueeze(1) - pred
    return torch.maximum(q * err, (q - 1.0) * err).mean()


class QuantileLoss(nn.Module):
    """Module wrapper of :func:`pinball_loss` for fixed quantile levels."""

    def __init__(self, quantiles: Sequence[float]) -> None:
        super().__init__()
        self.quantiles = tuple(float(q) for q in quantiles)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean pinball loss of ``pred`` (B, Q, ...) against ``target`` (B, ...)."""
        return pinball_loss(pred, target, self.quantiles)
