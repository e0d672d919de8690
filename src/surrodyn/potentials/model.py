r"""The high-dimensional neural network: one MLP per element, energy as a sum of atomic energies.

Forces and the virial come from the exact chain rule through the pair Jacobian of the
fingerprints (:class:`surrodyn.potentials.symmetry.Fingerprints`):

.. math::

    \mathbf c_p = \sum_d \frac{\partial E}{\partial G_{i_p d}}
                   \frac{\partial G_{i_p d}}{\partial \mathbf R_p}, \qquad
    \mathbf F_k = \sum_{p: i_p = k} \mathbf c_p - \sum_{p: j_p = k} \mathbf c_p, \qquad
    \sigma = \frac{1}{V} \sum_p \mathbf R_p \otimes \mathbf c_p,

with :math:`\mathbf R_p = \mathbf r_{j_p} - \mathbf r_{i_p}`. The same function serves training
(with ``create_graph=True`` so the force loss can be differentiated) and inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import param_error

__all__ = ["ACTIVATIONS", "AtomicNetworks", "Batch", "Prediction", "predict_batch"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "silu": nn.SiLU, "softplus": nn.Softplus}


@dataclass
class Batch:
    """Several structures concatenated; ``structure`` maps every atom to its structure.

    Attributes
    ----------
    G : Tensor, shape (n_atoms, n_features)
        Raw fingerprints.
    species : LongTensor, shape (n_atoms,)
    structure : LongTensor, shape (n_atoms,)
        Index of the atom's structure in ``[0, n_structures)``.
    n_structures : int
    pair_i, pair_j : LongTensor, shape (n_pairs,)
        Batch-global atom indices of each pair.
    dG : Tensor, shape (n_pairs, n_features, 3)
        Pair Jacobian (Å⁻¹).
    R : Tensor, shape (n_pairs, 3) or None
        Pair vectors, needed for the virial only.
    """

    G: torch.Tensor
    species: torch.Tensor
    structure: torch.Tensor
    n_structures: int
    pair_i: torch.Tensor
    pair_j: torch.Tensor
    dG: torch.Tensor
    R: torch.Tensor | None = None


@dataclass
class Prediction:
    """Energies (eV) per structure and per atom, forces (eV/Å), virial (eV) if asked."""

    energy: torch.Tensor
    atomic_energy: torch.Tensor
    forces: torch.Tensor | None
    virial: torch.Tensor | None


class AtomicNetworks(nn.Module):
    """One feed-forward network per element on standardised fingerprints.

    The atomic energy of an atom of element *e* is
    ``offset[e] + energy_scale * net_e((G - mean[e]) / std[e])``; the scaling buffers are set from
    the training data by :meth:`set_scaling` and saved with the weights.

    Parameters
    ----------
    n_elements : int
        Number of elements (networks).
    n_features : int
        Fingerprint length.
    hidden : tuple of int, default (32, 32)
        Widths of the hidden layers.
    activation : {"tanh", "silu", "softplus"}
        Smooth activations only: forces need a continuous derivative.
    """

    def __init__(
        self, n_elements: int, n_features: int, hidden: tuple[int, ...] = (32, 32), activation: str = "tanh"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise param_error("activation", activation, f"one of {sorted(ACTIVATIONS)}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise param_error("hidden", hidden, "a non-empty list of positive layer widths")
        self.n_elements, self.n_features = int(n_elements), int(n_features)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.nets = nn.ModuleList(self._mlp() for _ in range(self.n_elements))
        self.register_buffer("g_mean", torch.zeros(self.n_elements, self.n_features))
        self.register_buffer("g_std", torch.ones(self.n_elements, self.n_features))
        self.register_buffer("offset", torch.zeros(self.n_elements))
        self.register_buffer("energy_scale", torch.ones(()))

    def _mlp(self) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = self.n_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[self.activation]()]
            width = h
        layers.append(nn.Linear(width, 1))
        return nn.Sequential(*layers)

    @torch.no_grad()
    def set_scaling(self, g_mean: torch.Tensor, g_std: torch.Tensor, offset: torch.Tensor, energy_scale: float) -> None:
        """Set the fingerprint standardisation, per-element energy offsets (eV) and output scale (eV)."""
        self.g_mean.copy_(g_mean)
        self.g_std.copy_(torch.clamp(g_std, min=1e-6))
        self.offset.copy_(offset)
        self.energy_scale.fill_(float(energy_scale))

    def forward(self, G: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Atomic energies in eV, shape ``(n_atoms,)``."""
        out = G.new_zeros(G.shape[0])
        for e, net in enumerate(self.nets):
            idx = torch.nonzero(species == e, as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            x = (G.index_select(0, idx) - self.g_mean[e]) / self.g_std[e]
            out = out.index_add(0, idx, net(x).squeeze(-1) * self.energy_scale + self.offset[e])
        return out


def forces_from_fingerprint_gradient(
    dE_dG: torch.Tensor, batch: Batch, dG: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Contract ∂E/∂G with the pair Jacobian: forces (eV/Å) and the per-pair terms ``c_p``.

    ``dG`` overrides ``batch.dG`` (e.g. a float64 copy).
    """
    c = torch.einsum("pd,pdx->px", dE_dG.index_select(0, batch.pair_i), batch.dG if dG is None else dG)
    F = c.new_zeros(dE_dG.shape[0], 3).index_add(0, batch.pair_i, c).index_add(0, batch.pair_j, -c)
    return F, c


def predict_batch(
    model: AtomicNetworks, batch: Batch, *, forces: bool = True, virial: bool = False, create_graph: bool = False
) -> Prediction:
    r"""Energies, forces and virial of a batch through the exact chain rule.

    Parameters
    ----------
    model : AtomicNetworks
    batch : Batch
    forces : bool, default True
    virial : bool, default False
        Needs ``batch.R``; returns :math:`\sum_p \mathbf R_p \otimes \mathbf c_p` per structure
        (eV), which divided by the cell volume is the stress.
    create_graph : bool, default False
        Keep the graph of the forces (for a force loss during training).

    Returns
    -------
    Prediction
    """
    G = batch.G.detach().requires_grad_(forces or virial)
    atomic = model(G, batch.species)
    energy = atomic.new_zeros(batch.n_structures).index_add(0, batch.structure, atomic)
    if not (forces or virial):
        return Prediction(energy, atomic, None, None)
    (dE_dG,) = torch.autograd.grad(atomic.sum(), G, create_graph=create_graph)
    F, c = forces_from_fingerprint_gradient(dE_dG, batch)
    W = None
    if virial:
        if batch.R is None:
            raise ValueError("the virial needs the pair vectors: build the batch with R.")
        per_pair = batch.R[:, :, None] * c[:, None, :]
        W = per_pair.new_zeros(batch.n_structures, 3, 3).index_add(
            0, batch.structure.index_select(0, batch.pair_i), per_pair
        )
    return Prediction(energy, atomic, F, W)
