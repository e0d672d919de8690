"""Collective variables learned from MD trajectories with a beta-VAE (see ``docs/cv.md``).

So far: featurisation of trajectories and COLVAR files (:mod:`.features`), the network and its
loss (:mod:`.vae`), training with collapse diagnostics (:mod:`.learn`), and the ranking of
geometric variables per latent dimension, from an automatic library of the topology's variables
(:mod:`.interpret`). Plots, export and the CLI follow.
"""

from .features import (
    Angles,
    CentreOfMassDistance,
    Contacts,
    Dihedrals,
    Distances,
    FeatureStream,
    Featurizer,
    read_colvar,
)
from .interpret import geometric_library, geometric_variables, latent_correlation, rank_variables, top_variables
from .learn import CollapseWarning, FitSettings, LearnedCV, Standardizer, fit_cv, lagged_pairs
from .metrics import knn_r2
from .toy import muller_brown, muller_brown_features, muller_brown_samples
from .vae import ACTIVE_THRESHOLD, BetaVAE, BetaVAEConfig, VAEOutput, diagnostics, vae_loss

__all__ = [
    "ACTIVE_THRESHOLD",
    "Angles",
    "BetaVAE",
    "BetaVAEConfig",
    "CentreOfMassDistance",
    "CollapseWarning",
    "Contacts",
    "Dihedrals",
    "Distances",
    "FeatureStream",
    "Featurizer",
    "FitSettings",
    "LearnedCV",
    "Standardizer",
    "VAEOutput",
    "diagnostics",
    "fit_cv",
    "geometric_library",
    "geometric_variables",
    "knn_r2",
    "lagged_pairs",
    "latent_correlation",
    "muller_brown",
    "muller_brown_features",
    "muller_brown_samples",
    "rank_variables",
    "read_colvar",
    "top_variables",
    "vae_loss",
]
