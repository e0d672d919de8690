"""Export of a trained surrogate's network: ``torch.export`` (and TorchScript where it works).

The exported function takes normalised tensors (static, known, observed context, z, optional
fields) and returns the quantile and mean fields in the transformed space; the covariate
pipeline (:class:`~surrodyn.surrogate.artefact.Surrogate`) stays in Python. Batch size and the
number of bins are dynamic; the numbers of observed and forecast steps are those of the example.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import OutputError
from .artefact import Surrogate

__all__ = ["ExportableTFT", "example_inputs", "export_program", "load_program", "to_torchscript"]


class ExportableTFT(nn.Module):
    """The network with tensor-only outputs (quantiles, mean) for export."""

    def __init__(self, model: Surrogate) -> None:
        super().__init__()
        self.network = model.network.eval()
        self.has_fields = bool(model.config.field_names)

    def forward(
        self, static: torch.Tensor, known: torch.Tensor, past: torch.Tensor, z: torch.Tensor, fields: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantile (B, Q, T_dec, Z) and mean (B, T_dec, Z) fields, transformed space."""
        out = self.network(static, known, past, z, fields if self.has_fields else None)
        return out.quantiles, out.mean


def example_inputs(model: Surrogate, batch: int = 2, n_observed: int = 1) -> tuple[torch.Tensor, ...]:
    """Make example normalised inputs on the model's grid (for export and round-trip checks)."""
    g = torch.Generator().manual_seed(0)
    c = model.config
    t, z = model.time_s.size, model.z.size
    n_fields = max(1, len(c.field_names))
    return (
        torch.randn(batch, len(c.static_names), generator=g),
        torch.randn(batch, t, len(c.known_names), generator=g),
        torch.randn(batch, n_observed, z, generator=g).abs(),
        torch.from_numpy(model.z.astype("float32")),
        torch.randn(batch, t, n_fields, z, generator=g).abs(),
    )


def export_program(
    model: Surrogate, path: str | Path | None = None, n_observed: int = 1
) -> torch.export.ExportedProgram:
    """Export with ``torch.export`` (batch dynamic); save to ``path`` (``.pt2``) when given."""
    module = ExportableTFT(model)
    args = example_inputs(model, batch=2, n_observed=n_observed)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = ({0: batch}, {0: batch}, {0: batch}, None, {0: batch})
    program = torch.export.export(module, args, dynamic_shapes=shapes)
    if path is not None:
        p = Path(path)
        if p.suffix != ".pt2":
            raise OutputError(f"exported program path {p} must end in .pt2")
        torch.export.save(program, p)
    return program


def load_program(path: str | Path) -> torch.export.ExportedProgram:
    """Load a program saved by :func:`export_program`."""
    return torch.export.load(Path(path))


def to_torchscript(model: Surrogate, path: str | Path | None = None, n_observed: int = 1) -> torch.jit.ScriptModule:
    """Trace the network to TorchScript (fixed shapes of the example); save when ``path`` is given."""
    module = ExportableTFT(model)
    traced = torch.jit.trace(module, example_inputs(model, n_observed=n_observed), check_trace=False)
    if path is not None:
        traced.save(str(path))
    return traced
