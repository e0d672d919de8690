"""The field-native Temporal Fusion Transformer: a plain ``nn.Module``, tensors in, a typed result out.

The architecture is the TFT of Lim et al. (2021), doi:10.1016/j.ijforecast.2021.03.012, with the
whole density profile over ``z`` as one target. Profiles enter through :class:`FieldEncoder` and
leave through :class:`QuantileFieldHead`, both of which treat ``z`` as a coordinate, so the
parameter count does not depend on the number of bins (and a model trained on one grid predicts
on any other).

All inputs are already normalised (see :mod:`surrodyn.surrogate.data`); fields are in the
transformed space ``asinh(n / c0)``. Training, data handling and export live in their own modules.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import ConfigError, param_error
from .blocks import (
    FieldEncoder,
    FourierFeatures,
    GateAddNorm,
    GatedResidualNetwork,
    InterpretableMultiHeadAttention,
    QuantileFieldHead,
    StaticCovariateEncoder,
    VariableSelectionNetwork,
    causal_mask,
)

__all__ = ["DEFAULT_QUANTILES", "FieldTFT", "TFTConfig", "TFTOutput"]

DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class TFTConfig:
    """Architecture of a :class:`FieldTFT`.

    Parameters
    ----------
    static_names : tuple of str
        Static covariates, by name (e.g. ``("log10_permittivity", "log10_concentration_cm3",
        "voltage_V")``).
    known_names : tuple of str
        Known-future scalar covariates per time step (e.g. ``("log10_time", "voltage")``).
    field_names : tuple of str
        Known-future field covariates over ``z`` (e.g. ``("continuum",)``, the multi-fidelity input).
    quantiles : tuple of float
        Increasing quantile levels in (0, 1), containing 0.5.
    d_model : int
        Width of every hidden layer.
    n_heads : int
        Attention heads (``d_model`` must be a multiple).
    dropout : float
        Dropout in the gated layers.
    n_frequencies : int
        Fourier frequencies of the ``z`` coordinate.
    n_basis : int
        Rank of the output field expansion.
    conserve : bool
        Make the mean field conserve the ion number by construction: the mean head gives a
        log-density ℓ(t, z) and n/c0 = Z·softmax_z(ℓ), so its average over z is exactly one (the
        kMC conserves N exactly). Off, conservation is only learned.
    """

    static_names: tuple[str, ...]
    known_names: tuple[str, ...] = ("log10_time",)
    field_names: tuple[str, ...] = ()
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    d_model: int = 32
    n_heads: int = 4
    dropout: float = 0.1
    n_frequencies: int = 8
    n_basis: int = 32
    conserve: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("static_names", "known_names", "field_names", "quantiles"):
            set_(self, name, tuple(getattr(self, name)))
        if not self.static_names:
            raise param_error("static_names", self.static_names, "at least one static covariate")
        names = self.static_names + self.known_names + self.field_names
        if len(set(names)) != len(names):
            raise param_error("covariate names", names, "each name once")
        q = self.quantiles
        if 0.5 not in q or any(not 0.0 < x < 1.0 for x in q) or any(b <= a for a, b in itertools.pairwise(q)):
            raise param_error("quantiles", q, "increasing levels in (0, 1) that include 0.5")
        for name in ("d_model", "n_heads", "n_frequencies", "n_basis"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise param_error(name, value, "a positive integer")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}.")
        if not 0.0 <= self.dropout < 1.0:
            raise param_error("dropout", self.dropout, "a number in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict (for YAML)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TFTConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class TFTOutput(NamedTuple):
    """What :class:`FieldTFT` returns (all in the transformed space ``asinh(n / c0)``).

    Attributes
    ----------
    quantiles : torch.Tensor
        (B, Q, T_dec, Z), ordered along Q.
    mean : torch.Tensor
        (B, T_dec, Z), the predicted ensemble mean (its own head, trained with squared error;
        conserving the ion number exactly when ``TFTConfig.conserve``).
    static_weights : torch.Tensor
        (B, S) static variable selection weights.
    encoder_weights : torch.Tensor
        (B, T_enc, 1 + K + C) encoder selection weights (observed field first).
    decoder_weights : torch.Tensor
        (B, T_dec, K + C) decoder selection weights.
    attention : torch.Tensor
        (B, T_dec, T_enc + T_dec) head-averaged attention of every horizon.
    """

    quantiles: torch.Tensor
    mean: torch.Tensor
    static_weights: torch.Tensor
    encoder_weights: torch.Tensor
    decoder_weights: torch.Tensor
    attention: torch.Tensor


class _ScalarEmbedding(nn.Module):
    """One linear embedding per scalar variable: (..., V) -> (..., V, d)."""

    def __init__(self, n_vars: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_vars, d_model) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_vars, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


class FieldTFT(nn.Module):
    """Temporal Fusion Transformer over whole profiles.

    Parameters
    ----------
    config : TFTConfig
        Architecture.

    Notes
    -----
    Per time step the encoder sees the observed profile and the known covariates, the decoder the
    known covariates only; both are combined by variable selection networks conditioned on the
    static context, passed through an LSTM encoder–decoder initialised from the static context,
    statically enriched, and attended over with a causal interpretable multi-head attention,
    each stage with a gated skip connection (Lim et al. 2021, Sec. 4).
    """

    def __init__(self, config: TFTConfig) -> None:
        super().__init__()
        self.config = config
        d, c = config.d_model, config
        self.coord = FourierFeatures(c.n_frequencies)
        d_coord = self.coord.d_out
        n_known, n_fields = len(c.known_names), len(c.field_names)
        self.static_embedding = _ScalarEmbedding(len(c.static_names), d)
        self.known_embedding = _ScalarEmbedding(n_known, d) if n_known else None
        self.target_encoder = FieldEncoder(d_coord, d)
        self.field_encoders = nn.ModuleList(FieldEncoder(d_coord, d) for _ in range(n_fields))
        self.static_vsn = VariableSelectionNetwork(len(c.static_names), d, c.dropout)
        self.static_encoder = StaticCovariateEncoder(d, c.dropout)
        self.encoder_vsn = VariableSelectionNetwork(1 + n_known + n_fields, d, c.dropout, d_context=d)
        if n_known + n_fields == 0:
            raise ConfigError("the decoder needs at least one known-future covariate (e.g. log10_time).")
        self.decoder_vsn = VariableSelectionNetwork(n_known + n_fields, d, c.dropout, d_context=d)
        self.lstm_encoder = nn.LSTM(d, d, batch_first=True)
        self.lstm_decoder = nn.LSTM(d, d, batch_first=True)
        self.lstm_gate = GateAddNorm(d, d, c.dropout)
        self.enrichment = GatedResidualNetwork(d, d, d, c.dropout, d_context=d)
        self.attention = InterpretableMultiHeadAttention(d, c.n_heads, c.dropout)
        self.attention_gate = GateAddNorm(d, d, c.dropout)
        self.feed_forward = GatedResidualNetwork(d, d, d, c.dropout)
        self.output_gate = GateAddNorm(d, d, 0.0)
        self.head = QuantileFieldHead(d, d_coord, c.quantiles, c.n_basis, 2 * n_fields)

    def _known_vars(self, known: torch.Tensor, fields: torch.Tensor | None, coord: torch.Tensor) -> list[torch.Tensor]:
        out = []
        if self.known_embedding is not None:
            out.append(self.known_embedding(known))  # (B, T, K, d)
        for i, enc in enumerate(self.field_encoders):
            out.append(enc(fields[:, :, i], coord).unsqueeze(-2))  # (B, T, 1, d)
        return out

    def forward(
        self,
        static: torch.Tensor,
        known: torch.Tensor,
        past: torch.Tensor,
        z: torch.Tensor,
        fields: torch.Tensor | None = None,
    ) -> TFTOutput:
        """Forecast the profiles after the observed ones.

        Parameters
        ----------
        static : torch.Tensor
            (B, S) normalised static covariates.
        known : torch.Tensor
            (B, T, K) normalised known covariates for all steps, observed and forecast.
        past : torch.Tensor
            (B, T_enc, Z) observed (transformed) profiles; ``T_enc ≥ 1`` (the initial state).
        z : torch.Tensor
            (Z,) bin centres as a fraction of the gap, in [0, 1].
        fields : torch.Tensor or None
            (B, T, C, Z) known-future field covariates (transformed), or None when C = 0.

        Returns
        -------
        TFTOutput
            Forecast for the ``T - T_enc`` steps after the observed ones.
        """
        n_enc, n_all = past.shape[1], known.shape[1]
        if n_enc >= n_all:
            raise ConfigError(f"need forecast steps: {n_enc} observed steps of {n_all} in all.")
        coord = self.coord(z)
        static_sel, static_w = self.static_vsn(self.static_embedding(static))
        c_s, c_e, c_h, c_c = self.static_encoder(static_sel)
        known_vars = self._known_vars(known, fields, coord)
        enc_vars = torch.cat([self.target_encoder(past, coord).unsqueeze(-2)] + [v[:, :n_enc] for v in known_vars], -2)
        dec_vars = torch.cat([v[:, n_enc:] for v in known_vars], -2)
        enc_in, enc_w = self.encoder_vsn(enc_vars, c_s.unsqueeze(1))
        dec_in, dec_w = self.decoder_vsn(dec_vars, c_s.unsqueeze(1))
        state = (c_h.unsqueeze(0).contiguous(), c_c.unsqueeze(0).contiguous())
        enc_out, state = self.lstm_encoder(enc_in, state)
        dec_out, _ = self.lstm_decoder(dec_in, state)
        temporal = self.lstm_gate(torch.cat([enc_out, dec_out], 1), torch.cat([enc_in, dec_in], 1))
        enriched = self.enrichment(temporal, c_e.unsqueeze(1))
        query = enriched[:, n_enc:]
        attn_out, attn = self.attention(query, enriched, enriched, causal_mask(n_enc, n_all, z.device))
        h = self.attention_gate(attn_out, query)
        h = self.output_gate(self.feed_forward(h), temporal[:, n_enc:])
        skip = None
        if fields is not None:  # each field twice: asinh(c) (the quantiles' space) and log(c + 0.01) (the mean's)
            dec = fields[:, n_enc:]
            skip = torch.cat([dec, torch.log(torch.sinh(dec).clamp_min(0.0) + 0.01)], dim=2)
        quant, mean = self.head(h, coord, skip)
        if self.config.conserve:  # n/c0 = Z softmax_z(l): mean over z exactly 1; back to asinh space
            mean = torch.asinh(mean.shape[-1] * torch.softmax(mean, dim=-1))
        return TFTOutput(quant, mean, static_w, enc_w, dec_w, attn)

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
