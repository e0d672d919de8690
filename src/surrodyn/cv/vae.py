"""The beta-VAE: a plain ``nn.Module``, its loss, and the collapse diagnostics.

Reconstruction is a unit-variance Gaussian likelihood on *standardised* features (never raw
units: on raw distances in nm the KL term wins and the latent carries nothing), so the per-frame
loss is

    L = ½ Σ_f (x_f − x̂_f)² + β · Σ_d KL_d,   KL_d = ½ (μ_d² + σ_d² − 1 − ln σ_d²),

with a Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) and the standard normal prior (Higgins et al.
2017, "beta-VAE", ICLR). The collective variable is the encoder mean μ(x). The activation is
smooth by default (tanh) because a CV is biased through its gradient. The decoder is one MLP, or
additive (x̂ = Σ_d g_d(z_d), :class:`AdditiveDecoder`) so that no latent can encode a variable
through another; :func:`decorrelation_penalty` is the optional term that asks the latents to be
uncorrelated (weighted and scheduled in :mod:`surrodyn.cv.learn`).

Collapse diagnostics, after Burda, Grosse & Salakhutdinov (2016, arXiv:1509.00519): the KL per
latent dimension averaged over frames, and the *active units*, those whose encoder mean varies
over the data, Var_x(μ_d(x)) > 0.01.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..errors import param_error

__all__ = [
    "ACTIVE_THRESHOLD",
    "AdditiveDecoder",
    "BetaVAE",
    "BetaVAEConfig",
    "VAEOutput",
    "decorrelation_penalty",
    "diagnostics",
    "vae_loss",
]

ACTIVE_THRESHOLD = 0.01  # Var_x(mu_d) above which a latent dimension counts as active (Burda et al.)

DECODER_KINDS = ("mlp", "additive")

_ACTIVATIONS = {"tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus, "silu": nn.SiLU}


@dataclass(frozen=True)
class BetaVAEConfig:
    """Architecture of a :class:`BetaVAE`.

    Parameters
    ----------
    n_features : int
        Input features per frame.
    n_latent : int
        Latent dimensions (the CVs).
    encoder : tuple of int
        Hidden widths of the encoder.
    decoder : tuple of int or None
        Hidden widths of the decoder; default the encoder's, reversed.
    activation : str
        ``"tanh"`` (default, smooth), ``"elu"``, ``"softplus"`` or ``"silu"``.
    decoder_kind : str
        ``"mlp"`` (default): one network maps the whole latent to the features. ``"additive"``:
        x̂ = b + Σ_d g_d(z_d), one network (of the ``decoder`` widths) per latent dimension, so a
        latent cannot encode a variable through its interaction with another one.
    """

    n_features: int
    n_latent: int = 2
    encoder: tuple[int, ...] = (64, 32)
    decoder: tuple[int, ...] | None = None
    activation: str = "tanh"
    decoder_kind: str = "mlp"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "encoder", tuple(int(w) for w in self.encoder))
        set_(self, "decoder", tuple(reversed(self.encoder)) if self.decoder is None else tuple(self.decoder))
        for name in ("n_features", "n_latent"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise param_error(name, value, "a positive integer")
        for name in ("encoder", "decoder"):
            widths = getattr(self, name)
            if any(w < 1 for w in widths):
                raise param_error(name, list(widths), "positive layer widths, e.g. [64, 32]")
        if self.activation not in _ACTIVATIONS:
            raise param_error("activation", self.activation, f"one of {sorted(_ACTIVATIONS)}")
        if self.decoder_kind not in DECODER_KINDS:
            raise param_error("decoder_kind", self.decoder_kind, f"one of {list(DECODER_KINDS)}")


def _mlp(widths: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class AdditiveDecoder(nn.Module):
    """x̂ = Σ_d g_d(z_d): one MLP per latent dimension, summed (each carries its own output bias).

    Parameters
    ----------
    n_latent : int
        Latent dimensions.
    widths : list of int
        Hidden widths of every g_d.
    n_features : int
        Output features.
    activation : str
        Hidden activation.
    """

    def __init__(self, n_latent: int, widths: list[int], n_features: int, activation: str) -> None:
        super().__init__()
        self.parts = nn.ModuleList(_mlp([1, *widths, n_features], activation) for _ in range(n_latent))

    def components(self, z: torch.Tensor) -> torch.Tensor:
        """Each latent's contribution g_d(z_d), shape (..., n_latent, n_features)."""
        return torch.stack([g(z[..., d : d + 1]) for d, g in enumerate(self.parts)], dim=-2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents (..., n_latent) to features (..., n_features)."""
        return self.components(z).sum(-2)


class VAEOutput(NamedTuple):
    """Output of :meth:`BetaVAE.forward`: reconstruction, encoder mean and log-variance, sample."""

    recon: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class BetaVAE(nn.Module):
    """Gaussian-encoder VAE on standardised features.

    Parameters
    ----------
    config : BetaVAEConfig
        Architecture.
    """

    def __init__(self, config: BetaVAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = _mlp([c.n_features, *c.encoder, 2 * c.n_latent], c.activation)
        if c.decoder_kind == "additive":
            self.decoder: nn.Module = AdditiveDecoder(c.n_latent, list(c.decoder), c.n_features, c.activation)
        else:
            self.decoder = _mlp([c.n_latent, *c.decoder, c.n_features], c.activation)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the encoder mean (the CV) and log-variance, each (..., n_latent)."""
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def forward(self, x: torch.Tensor, sample: bool = True) -> VAEOutput:
        """Encode, draw z = μ + σ·ε (or z = μ when ``sample`` is false) and decode."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return VAEOutput(self.decoder(z), mu, logvar, z)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_d|x) ‖ N(0, 1)) per frame and dimension, in nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def vae_loss(out: VAEOutput, target: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame mean of the beta-VAE loss; returns (total, reconstruction, KL)."""
    recon = 0.5 * (out.recon - target).square().sum(-1).mean()
    kl = kl_per_dim(out.mu, out.logvar).sum(-1).mean()
    return recon + beta * kl, recon, kl


def _standardised(a: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(0)
    return a / (a.square().mean(0).sqrt() + 1e-6)


DECORRELATION_KINDS = ("linear", "nonlinear")


def decorrelation_penalty(mu: torch.Tensor, kind: str = "linear") -> torch.Tensor:
    """Dependence between the latent dimensions of a batch of encoder means.

    ``"linear"``: Σ_{i≠j} r_ij² of the Pearson correlations r_ij between latent dimensions.
    ``"nonlinear"``: the same sum over the correlations between fixed nonlinear functions of the
    standardised latents, u, u² and tanh(2u), divided by their number (3): the nonlinear
    decorrelation of Hérault–Jutten ICA, a finite-feature stand-in for a kernel independence
    measure (HSIC). It is 0 in expectation for independent latents, and it also penalises a
    latent whose spread or skew changes with another (z₂ wide where z₁ is low, narrow where it
    is high), which linear decorrelation leaves alone.

    Parameters
    ----------
    mu : torch.Tensor
        Encoder means (N, n_latent), N ≥ 2.
    kind : {"linear", "nonlinear"}
        Which correlations.

    Returns
    -------
    torch.Tensor
        Scalar; 0 for one latent dimension.
    """
    if kind not in DECORRELATION_KINDS:
        raise param_error("kind", kind, f"one of {list(DECORRELATION_KINDS)}")
    d = mu.shape[1]
    if d < 2:
        return mu.new_zeros(())
    u = _standardised(mu)
    if kind == "linear":
        r = u.T @ u / mu.shape[0]
        return r.square().sum() - r.diagonal().square().sum()
    feats = torch.cat([u, _standardised(u.square()), _standardised(torch.tanh(2.0 * u))], dim=1)
    r = feats.T @ feats / mu.shape[0]
    latent = torch.arange(feats.shape[1]) % d
    across = latent[:, None] != latent[None, :]
    return (r.square() * across).sum() / 3.0


@torch.no_grad()
def diagnostics(network: BetaVAE, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, object]:
    """Collapse and quality diagnostics of a trained network on standardised frames.

    Parameters
    ----------
    network : BetaVAE
        Trained network (evaluated in eval mode).
    x : torch.Tensor
        Standardised input frames (N, n_features).
    target : torch.Tensor, optional
        Standardised reconstruction targets (the lagged frames of a time-lagged model); default ``x``.

    Returns
    -------
    dict
        ``kl_per_dim`` (nats, mean over frames), ``latent_variance`` (Var_x μ_d), ``active``
        (bool per dimension), ``n_active``, and ``variance_explained``: 1 − SSE/SST of the
        reconstruction from the encoder mean, over all features.
    """
    target = x if target is None else target
    was_training = network.training
    network.eval()
    try:
        mu, logvar = network.encode(x)
        recon = network.decoder(mu)
    finally:
        network.train(was_training)
    kl = kl_per_dim(mu, logvar).mean(0)
    var = mu.var(0, unbiased=True) if mu.shape[0] > 1 else torch.zeros_like(kl)
    sse = (recon - target).square().sum()
    sst = (target - target.mean(0)).square().sum()
    active = var > ACTIVE_THRESHOLD
    return {
        "kl_per_dim": kl.tolist(),
        "latent_variance": var.tolist(),
        "active": active.tolist(),
        "n_active": int(active.sum()),
        "variance_explained": float(1.0 - sse / sst) if float(sst) > 0 else float("nan"),
    }
