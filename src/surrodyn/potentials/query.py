"""Active-learning queries: autoencoder reconstruction error, committee disagreement, random.

A query implements one method, :meth:`Query.scores`, which rates every candidate structure
(higher = more worth labelling); :func:`select` turns scores into a batch, spreading it over the
fingerprint space so a batch is not ten copies of one outlier.

The autoencoder query is the seed work's idea: an autoencoder trained on the per-atom
fingerprints of the labelled set reconstructs familiar environments well and unfamiliar ones
badly, so the reconstruction error marks the structures the potential has not seen. It needs
one small network instead of the committee's several potentials.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors
from torch import nn

from ..errors import param_error
from .dataset import FingerprintSet
from .potential import HDNNP
from .train import TrainConfig, fit

__all__ = [
    "AutoencoderConfig",
    "AutoencoderQuery",
    "CommitteeQuery",
    "FingerprintAutoencoder",
    "Query",
    "QueryContext",
    "RandomQuery",
    "select",
    "structure_features",
]


@dataclass
class QueryContext:
    """What a query may look at in one round.

    Attributes
    ----------
    pool : FingerprintSet
        Fingerprints of every candidate (labelled or not).
    labelled : ndarray of int
        Pool indices labelled so far.
    candidates : ndarray of int
        Pool indices still unlabelled.
    train_set : FingerprintSet
        The labelled structures with their labels.
    potential : HDNNP
        The potential trained on ``train_set`` this round.
    train_config : TrainConfig
    seed : int
        Seed of this round.
    """

    pool: FingerprintSet
    labelled: np.ndarray
    candidates: np.ndarray
    train_set: FingerprintSet
    potential: HDNNP
    train_config: TrainConfig
    seed: int


class Query(Protocol):
    """A scoring rule for candidates."""

    name: str

    def scores(self, ctx: QueryContext) -> np.ndarray:
        """Score of every candidate (same order as ``ctx.candidates``); higher is queried first."""
        ...


class RandomQuery:
    """Uniform random choice: the baseline."""

    name = "random"
    diverse = False

    def scores(self, ctx: QueryContext) -> np.ndarray:
        """Independent uniform scores from the round's seed."""
        return np.random.default_rng([ctx.seed, 7]).random(len(ctx.candidates))


@dataclass(frozen=True)
class AutoencoderConfig:
    """Per-element fingerprint autoencoder.

    Parameters
    ----------
    hidden : int, default 32
    latent : int, default 4
        Bottleneck width; well below the fingerprint length, or the network learns the identity.
    epochs : int, default 400
        Full-batch Adam epochs on the labelled atoms.
    learning_rate : float, default 3e-3
    score : {"mean", "max"}
        Structure score from its atoms' (excess) reconstruction errors.
    relative : bool, default True
        Score an atom by its *excess* error: its reconstruction error minus that of the nearest
        labelled atom of its element (standardised fingerprint space), floored at 0. A narrow
        autoencoder also reconstructs rare environments it was trained on badly (the centre
        atom of a cold Cu13), so the raw error keeps asking for more of what is already labelled;
        the excess is the part of the error the labelled set does not explain. With ``False``,
        the raw error.
    """

    hidden: int = 32
    latent: int = 4
    epochs: int = 400
    learning_rate: float = 3e-3
    score: str = "mean"
    relative: bool = True

    def __post_init__(self) -> None:
        for name in ("hidden", "latent", "epochs"):
            if int(getattr(self, name)) < 1:
                raise param_error(name, getattr(self, name), "an integer >= 1")
        if self.score not in ("mean", "max"):
            raise param_error("score", self.score, "'mean' or 'max'")


class FingerprintAutoencoder(nn.Module):
    """One tanh autoencoder per element on fingerprints standardised by the labelled set."""

    def __init__(self, n_elements: int, n_features: int, hidden: int, latent: int) -> None:
        super().__init__()

        def mlp(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(a, hidden), nn.Tanh(), nn.Linear(hidden, b))

        self.nets = nn.ModuleList(
            nn.Sequential(mlp(n_features, latent), nn.Tanh(), mlp(latent, n_features)) for _ in range(n_elements)
        )
        self.register_buffer("mean", torch.zeros(n_elements, n_features))
        self.register_buffer("std", torch.ones(n_elements, n_features))

    def standardise(self, G: torch.Tensor, element: int) -> torch.Tensor:
        """Fingerprints of atoms of ``element`` in the autoencoder's standardised units."""
        return (G - self.mean[element]) / self.std[element]

    def errors(self, G: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error of every atom (standardised units)."""
        out = G.new_zeros(G.shape[0])
        for e, net in enumerate(self.nets):
            idx = torch.nonzero(species == e, as_tuple=True)[0]
            if idx.numel():
                x = self.standardise(G.index_select(0, idx), e)
                out = out.index_add(0, idx, (net(x) - x).pow(2).mean(1))
        return out


class AutoencoderQuery:
    """Query the structures whose atoms the labelled-set autoencoder reconstructs worst.

    Parameters
    ----------
    config : AutoencoderConfig, optional
    """

    name = "autoencoder"
    diverse = True

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        self.config = config or AutoencoderConfig()

    def fit_autoencoder(self, data: FingerprintSet, seed: int) -> FingerprintAutoencoder:
        """Train the autoencoder on every atom of ``data``."""
        cfg = self.config
        torch.manual_seed(seed)
        G, species = data.atomic_fingerprints()
        n_elem = len(data.descriptor.elements)
        ae = FingerprintAutoencoder(n_elem, G.shape[1], cfg.hidden, cfg.latent)
        with torch.no_grad():
            for e in range(n_elem):
                rows = G[species == e]
                if len(rows):
                    ae.mean[e] = rows.mean(0)
                    ae.std[e] = rows.std(0, unbiased=False).clamp(min=1e-6)
        opt = torch.optim.Adam(ae.parameters(), lr=cfg.learning_rate)
        for _ in range(cfg.epochs):
            loss = ae.errors(G, species).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return ae.eval()

    def scores(self, ctx: QueryContext) -> np.ndarray:
        """Per-structure (excess) reconstruction error, mean or max over its atoms."""
        ae = self.fit_autoencoder(ctx.train_set, ctx.seed)
        G, species = ctx.pool.atomic_fingerprints(ctx.candidates)
        owner = np.repeat(np.arange(len(ctx.candidates)), ctx.pool.n_atoms[ctx.candidates])
        with torch.no_grad():
            err = ae.errors(G, species).numpy()
            if self.config.relative:
                err = np.maximum(err - self._nearest_labelled_error(ae, ctx.train_set, G, species), 0.0)
        if self.config.score == "mean":
            return np.bincount(owner, weights=err, minlength=len(ctx.candidates)) / ctx.pool.n_atoms[ctx.candidates]
        out = np.full(len(ctx.candidates), -np.inf)
        np.maximum.at(out, owner, err)
        return out

    @staticmethod
    def _nearest_labelled_error(
        ae: FingerprintAutoencoder, labelled: FingerprintSet, G: torch.Tensor, species: torch.Tensor
    ) -> np.ndarray:
        """Reconstruction error of the labelled atom nearest to each row of ``G`` (same element)."""
        GL, species_l = labelled.atomic_fingerprints()
        err_l = ae.errors(GL, species_l).numpy()
        out = np.zeros(len(G))
        for e in range(len(ae.nets)):
            rows, rows_l = (species == e).numpy(), (species_l == e).numpy()
            if not rows.any() or not rows_l.any():
                continue  # an element absent from the labelled set: its raw error is all excess
            ref, X = (ae.standardise(rows_of, e).double().numpy() for rows_of in (GL[rows_l], G[rows]))
            j = NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(X, return_distance=False)[:, 0]
            out[rows] = err_l[rows_l][j]
        return out


class CommitteeQuery:
    """Query by committee: disagreement of potentials trained with different seeds.

    The score is the committee's standard deviation of the energy per atom (eV) plus the mean over
    atoms of the force standard deviation (eV/Å, read per 1 Å). The round's potential is one member;
    ``size - 1`` more are trained on the same labels.

    Parameters
    ----------
    size : int, default 4
    """

    name = "committee"
    diverse = True

    def __init__(self, size: int = 4) -> None:
        if int(size) < 2:
            raise param_error("size", size, "an integer >= 2 (a committee of one cannot disagree)")
        self.size = int(size)

    def scores(self, ctx: QueryContext) -> np.ndarray:
        """Energy-per-atom plus mean force disagreement of the committee."""
        members = [ctx.potential]
        for m in range(1, self.size):
            cfg = dataclasses.replace(ctx.train_config, seed=ctx.train_config.seed + 1000 * m + 1)
            members.append(fit(ctx.train_set, config=cfg).potential)
        sub = ctx.pool.subset(ctx.candidates)
        preds = [m.predict_set(sub) for m in members]
        E = np.stack([p[0] for p in preds]) / sub.n_atoms
        F_std = [np.stack([p[1][s] for p in preds]).std(0) for s in range(len(sub))]
        return E.std(0) + np.array([np.linalg.norm(f, axis=1).mean() for f in F_std])


def structure_features(pool: FingerprintSet, indices: np.ndarray) -> np.ndarray:
    """Mean fingerprint of each structure, standardised over ``indices``: the space batches spread in."""
    X = np.stack([pool.items[int(k)].G.double().mean(0).numpy() for k in indices])
    return (X - X.mean(0)) / np.maximum(X.std(0), 1e-12)


def select(
    scores: np.ndarray, n: int, *, features: np.ndarray | None = None, seed: int = 0, pool_factor: int = 5
) -> np.ndarray:
    """Positions of the ``n`` candidates to label.

    Without ``features`` the ``n`` best scores. With them, the ``pool_factor * n`` best are split
    into ``n`` k-means clusters in feature space and the best of each cluster is taken, so the
    batch covers several kinds of unfamiliar structure.
    """
    n = min(int(n), len(scores))
    order = np.argsort(-scores, kind="stable")
    if features is None or n <= 1:
        return order[:n]
    top = order[: min(len(scores), pool_factor * n)]
    labels = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(features[top])
    chosen = [top[labels == c][0] for c in range(n) if np.any(labels == c)]
    rest = [k for k in top if k not in set(chosen)]
    return np.array((chosen + rest)[:n])
