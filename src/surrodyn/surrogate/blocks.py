"""Building blocks of the Temporal Fusion Transformer, each a small public module.

The blocks follow Lim et al. (2021), "Temporal Fusion Transformers for interpretable multi-horizon
time series forecasting", Int. J. Forecasting 37, 1748, doi:10.1016/j.ijforecast.2021.03.012
(equation numbers refer to that paper), plus two field blocks of our own that let a whole profile
over ``z`` enter and leave the network with ``z`` as a coordinate, so that the number of
parameters does not depend on the number of bins.

Shapes use ``B`` (batch), ``T`` (time steps), ``V`` (variables), ``Z`` (bins) and ``d`` (the
model width).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "FieldEncoder",
    "FourierFeatures",
    "GateAddNorm",
    "GatedLinearUnit",
    "GatedResidualNetwork",
    "InterpretableMultiHeadAttention",
    "QuantileFieldHead",
    "StaticCovariateEncoder",
    "VariableSelectionNetwork",
    "causal_mask",
]


class GatedLinearUnit(nn.Module):
    """Gated linear unit, GLU(x) = σ(W₄x + b₄) ⊙ (W₅x + b₅) (eq. 5).

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    dropout : float
        Dropout applied to the input, as in the paper's gated skip connections.
    """

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate ``x`` (..., d_in) into (..., d_out)."""
        return F.glu(self.linear(self.dropout(x)), dim=-1)


class GateAddNorm(nn.Module):
    """Gated skip connection, LayerNorm(skip + GLU(x)) (eqs. 2, 19, 20)."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.glu = GatedLinearUnit(d_in, d_out, dropout)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Return ``LayerNorm(skip + GLU(x))``."""
        return self.norm(skip + self.glu(x))


class GatedResidualNetwork(nn.Module):
    """Gated residual network with optional context (eqs. 2–4).

    GRN(a, c) = LayerNorm(a' + GLU(W₁ ELU(W₂a + W₃c + b₂) + b₁)), where ``a'`` is ``a``, or its
    linear projection when the output width differs.

    Parameters
    ----------
    d_in, d_hidden, d_out : int
        Input, hidden and output widths.
    dropout : float
        Dropout before the gate.
    d_context : int or None
        Width of the optional static context ``c``.
    """

    def __init__(
        self, d_in: int, d_hidden: int, d_out: int, dropout: float = 0.0, d_context: int | None = None
    ) -> None:
        super().__init__()
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()
        self.fc2 = nn.Linear(d_in, d_hidden)
        self.context = nn.Linear(d_context, d_hidden, bias=False) if d_context else None
        self.fc1 = nn.Linear(d_hidden, d_hidden)
        self.gate = GateAddNorm(d_hidden, d_out, dropout)

    def forward(self, a: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the network to ``a`` (..., d_in), with context ``c`` broadcastable to (..., d_context)."""
        h = self.fc2(a)
        if self.context is not None and c is not None:
            h = h + self.context(c)
        h = self.fc1(F.elu(h))
        return self.gate(h, self.skip(a))


class VariableSelectionNetwork(nn.Module):
    """Variable selection network (eqs. 6–8).

    Every variable arrives already embedded as a ``d``-vector; the network returns their weighted
    combination, each variable first passed through its own GRN, and the selection weights.

    Parameters
    ----------
    n_vars : int
        Number of variables ``V``.
    d_model : int
        Embedding width ``d``.
    dropout : float
        Dropout of the GRNs.
    d_context : int or None
        Width of the static context that conditions the weights (none for the static selection).
    """

    def __init__(self, n_vars: int, d_model: int, dropout: float = 0.0, d_context: int | None = None) -> None:
        super().__init__()
        self.n_vars = n_vars
        self.weights_grn = GatedResidualNetwork(n_vars * d_model, d_model, n_vars, dropout, d_context)
        self.var_grns = nn.ModuleList(GatedResidualNetwork(d_model, d_model, d_model, dropout) for _ in range(n_vars))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Select among ``x`` (..., V, d) with context ``c``; return (..., d) and weights (..., V)."""
        flat = x.flatten(-2)
        weights = torch.softmax(self.weights_grn(flat, c), dim=-1)
        processed = torch.stack([grn(x[..., i, :]) for i, grn in enumerate(self.var_grns)], dim=-2)
        return (weights.unsqueeze(-1) * processed).sum(-2), weights


class StaticCovariateEncoder(nn.Module):
    """The four static contexts: selection c_s, enrichment c_e, LSTM state c_h and c_c (Sec. 4.3)."""

    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.grns = nn.ModuleList(GatedResidualNetwork(d_model, d_model, d_model, dropout) for _ in range(4))

    def forward(self, static: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (c_selection, c_enrichment, c_hidden, c_cell), each (B, d)."""
        c_s, c_e, c_h, c_c = (grn(static) for grn in self.grns)
        return c_s, c_e, c_h, c_c


def causal_mask(n_encoder: int, n_total: int, device: torch.device | None = None) -> torch.Tensor:
    """Attention mask (True = blocked) for decoder queries over all ``n_total`` positions.

    Decoder step ``i`` (position ``n_encoder + i``) may attend to every encoder step and to the
    decoder steps up to itself.
    """
    q = torch.arange(n_encoder, n_total, device=device).unsqueeze(1)
    k = torch.arange(n_total, device=device).unsqueeze(0)
    return k > q


class InterpretableMultiHeadAttention(nn.Module):
    """Interpretable multi-head attention with values shared across heads (eqs. 14–16).

    Each head has its own query and key projections; the value projection is shared, so the
    head-averaged attention matrix is one interpretable pattern over time.

    Parameters
    ----------
    d_model : int
        Model width ``d``; each head's query/key width is ``d // n_heads``.
    n_heads : int
        Number of heads.
    dropout : float
        Dropout on the attention weights.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, self.d_head)
        self.out = nn.Linear(self.d_head, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` (B, Tq, d) over ``key``/``value`` (B, Tk, d).

        Returns
        -------
        out : torch.Tensor
            (B, Tq, d).
        attention : torch.Tensor
            Head-averaged attention weights (B, Tq, Tk); rows sum to one.
        """
        b, tq, _ = query.shape
        tk = key.shape[1]
        q = self.q(query).view(b, tq, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k(key).view(b, tk, self.n_heads, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        attn = self.dropout(torch.softmax(scores, dim=-1))  # (B, H, Tq, Tk)
        v = self.v(value).unsqueeze(1)  # (B, 1, Tk, d_head): shared across heads
        heads = attn @ v  # (B, H, Tq, d_head)
        return self.out(heads.mean(1)), attn.mean(1)


class FourierFeatures(nn.Module):
    """Fixed Fourier features of a coordinate in [0, 1]: [sin(πkz), cos(πkz)], k = 1..n."""

    def __init__(self, n_frequencies: int) -> None:
        super().__init__()
        self.register_buffer("k", math.pi * torch.arange(1, n_frequencies + 1, dtype=torch.float32), persistent=False)
        self.d_out = 2 * n_frequencies + 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map coordinates ``z`` (Z,) to features (Z, 2n + 1) (the last one is ``z`` itself)."""
        arg = z.unsqueeze(-1) * self.k
        return torch.cat([torch.sin(arg), torch.cos(arg), z.unsqueeze(-1)], dim=-1)


class FieldEncoder(nn.Module):
    """Encode a profile y(z) into one ``d``-vector, with ``z`` as a coordinate.

    e = W · mean_z ELU(w y(z) + C φ(z) + b): a learned pooling over bins (a DeepSets /
    neural-operator form) whose weights do not depend on the number of bins. The coordinate part
    ``C φ(z)`` is computed once per call, so the cost per profile is O(Z · width).

    Parameters
    ----------
    d_coord : int
        Width of the coordinate features φ(z).
    d_model : int
        Output width.
    width : int, optional
        Number of pooled features (default ``d_model``).
    """

    def __init__(self, d_coord: int, d_model: int, width: int | None = None) -> None:
        super().__init__()
        width = width or d_model
        self.value = nn.Parameter(torch.randn(width) * 0.5)
        self.coord = nn.Linear(d_coord, width)
        self.out = nn.Linear(width, d_model)

    def forward(self, field: torch.Tensor, coord: torch.Tensor) -> torch.Tensor:
        """Encode ``field`` (..., Z) on coordinate features ``coord`` (Z, d_coord) into (..., d)."""
        h = F.elu(field.unsqueeze(-1) * self.value + self.coord(coord))
        return self.out(h.mean(-2))


class QuantileFieldHead(nn.Module):
    """Map a temporal state h_t to quantile fields over ``z`` that never cross.

    A DeepONet-style low-rank form: a trunk network turns coordinates into ``n_basis`` functions
    b_k(z), the state gives coefficients, and

    - median: m(t, z) = Σ_k a_k(t) b_k(z) + a_0(t),
    - quantile j above (below) the median: the previous one plus (minus) softplus(Σ_k a_jk b_k + a_j0),

    so the quantiles are ordered by construction. A separate coefficient set gives the mean field.
    Known field covariates (the continuum twin) can enter each output additively with a gain
    set by h_t.

    Parameters
    ----------
    d_model : int
        Width of h_t.
    d_coord : int
        Width of the coordinate features.
    quantiles : sequence of float
        Increasing quantile levels; must contain 0.5.
    n_basis : int
        Rank of the expansion.
    """

    def __init__(
        self, d_model: int, d_coord: int, quantiles: tuple[float, ...], n_basis: int = 32, n_fields: int = 0
    ) -> None:
        super().__init__()
        self.n_q = len(quantiles)
        self.n_fields = n_fields
        self.i_median = list(quantiles).index(0.5)
        self.n_basis = n_basis
        self.trunk = nn.Sequential(
            nn.Linear(d_coord, 2 * d_model), nn.ELU(), nn.Linear(2 * d_model, 2 * d_model), nn.ELU(),
            nn.Linear(2 * d_model, n_basis),
        )  # fmt: skip
        self.coeff = nn.Linear(d_model, (self.n_q + 1) * (n_basis + 1 + n_fields))

    def forward(
        self, h: torch.Tensor, coord: torch.Tensor, fields: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return quantile fields (B, Q, T, Z) and the mean field (B, T, Z).

        Parameters
        ----------
        h : torch.Tensor
            (B, T, d) temporal states.
        coord : torch.Tensor
            (Z, d_coord) coordinate features.
        fields : torch.Tensor or None
            (B, T, C, Z) known field covariates at the same steps; each enters every output with
            a gain set by ``h`` (a multi-fidelity skip: the output can be the low-fidelity field
            plus a learned correction).
        """
        basis = self.trunk(coord)  # (Z, K)
        k = self.n_basis
        a = self.coeff(h).unflatten(-1, (self.n_q + 1, k + 1 + self.n_fields))  # (B, T, Q+1, K+1+C)
        raw = torch.einsum("btqk,zk->bqtz", a[..., :k], basis) + a[..., k].permute(0, 2, 1).unsqueeze(-1)
        if self.n_fields and fields is not None:
            raw = raw + torch.einsum("btqc,btcz->bqtz", a[..., k + 1 :], fields)
        median = raw[:, self.i_median]
        levels = [median]
        for j in range(self.i_median + 1, self.n_q):  # upwards
            levels.append(levels[-1] + F.softplus(raw[:, j]))
        lower = [median]
        for j in range(self.i_median - 1, -1, -1):  # downwards
            lower.append(lower[-1] - F.softplus(raw[:, j]))
        quant = torch.stack(lower[:0:-1] + levels, dim=1)
        return quant, raw[:, self.n_q]
