"""Collective variables learned from MD trajectories with a beta-VAE (see ``docs/cv.md``).

Featurisation of trajectories and COLVAR files (:mod:`.features`, :mod:`.readers` for MDAnalysis,
mdtraj and ASE), the network and its loss (:mod:`.vae`), training with collapse diagnostics
(:mod:`.learn`), PCA/TICA baselines (:mod:`.baselines`), the ranking of geometric variables per
latent dimension from an automatic library of the topology's variables (:mod:`.interpret`),
exports for OpenMM and TorchScript (:mod:`.export`) and PLUMED (:mod:`.plumed`), and the jobs behind ``surrodyn cv``
(:mod:`.config`, :mod:`.workflow`).
"""

from .baselines import LinearCV, fit_linear_cv, load_cv
from .export import CVComponent, NumpyCV, export_torchscript
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
from .learn import (
    CollapseWarning,
    FitSettings,
    LearnedCV,
    Standardizer,
    fit_cv,
    full_weight_epoch,
    lagged_pairs,
    weights_at_epoch,
)
from .metrics import basin_accuracy, knn_r2
from .plumed import PlumedExport, check_export, evaluate_plumed, export_plumed, plumed_input
from .toy import muller_brown, muller_brown_features, muller_brown_samples
from .vae import ACTIVE_THRESHOLD, BetaVAE, BetaVAEConfig, VAEOutput, decorrelation_penalty, diagnostics, vae_loss

__all__ = [
    "ACTIVE_THRESHOLD",
    "Angles",
    "BetaVAE",
    "BetaVAEConfig",
    "CVComponent",
    "CentreOfMassDistance",
    "CollapseWarning",
    "Contacts",
    "Dihedrals",
    "Distances",
    "FeatureStream",
    "Featurizer",
    "FitSettings",
    "LearnedCV",
    "LinearCV",
    "NumpyCV",
    "PlumedExport",
    "Standardizer",
    "VAEOutput",
    "basin_accuracy",
    "check_export",
    "decorrelation_penalty",
    "diagnostics",
    "evaluate_plumed",
    "export_plumed",
    "export_torchscript",
    "fit_cv",
    "fit_linear_cv",
    "full_weight_epoch",
    "geometric_library",
    "geometric_variables",
    "knn_r2",
    "lagged_pairs",
    "latent_correlation",
    "load_cv",
    "muller_brown",
    "muller_brown_features",
    "muller_brown_samples",
    "plumed_input",
    "rank_variables",
    "read_colvar",
    "top_variables",
    "vae_loss",
    "weights_at_epoch",
]
