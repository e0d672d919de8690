"""Behler–Parrinello neural-network potentials with autoencoder-driven active learning.

- :mod:`.symmetry`: radial G2 and angular G4/G5 symmetry functions with exact pair Jacobians.
- :mod:`.model`, :mod:`.dataset`, :mod:`.train`: one network per element, energies and forces by
  the chain rule through the precomputed Jacobians, energy + force training with early stopping.
- :mod:`.potential`, :mod:`.calculator`: the saved artefact and its ASE calculator.
- :mod:`.labels`, :mod:`.query`, :mod:`.active`: reference labels through a persistent cache, the
  autoencoder / committee / random queries, and the resumable active-learning loop.
"""

try:
    import ase  # noqa: F401 - the whole package works on ase.Atoms
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("surrodyn.potentials needs ASE: pip install 'surrodyn[md]'") from exc

from .active import STRATEGIES, ActiveLearningConfig, ActiveLearningResult, active_learn, make_query
from .calculator import HDNNPCalculator
from .dataset import FingerprintSet, labels_of
from .labels import LabelCache, structure_key
from .model import AtomicNetworks, Batch, Prediction, predict_batch
from .potential import HDNNP
from .query import AutoencoderConfig, AutoencoderQuery, CommitteeQuery, Query, QueryContext, RandomQuery, select
from .symmetry import AngularFunctions, ANIAngularFunctions, Fingerprints, RadialFunctions, SymmetryFunctions
from .train import TrainConfig, TrainResult, energy_force_loss, errors, errors_by_group, fit, refit_output_layer

__all__ = [
    "HDNNP",
    "STRATEGIES",
    "ANIAngularFunctions",
    "ActiveLearningConfig",
    "ActiveLearningResult",
    "AngularFunctions",
    "AtomicNetworks",
    "AutoencoderConfig",
    "AutoencoderQuery",
    "Batch",
    "CommitteeQuery",
    "FingerprintSet",
    "Fingerprints",
    "HDNNPCalculator",
    "LabelCache",
    "Prediction",
    "Query",
    "QueryContext",
    "RadialFunctions",
    "RandomQuery",
    "SymmetryFunctions",
    "TrainConfig",
    "TrainResult",
    "active_learn",
    "energy_force_loss",
    "errors",
    "errors_by_group",
    "fit",
    "labels_of",
    "make_query",
    "predict_batch",
    "refit_output_layer",
    "select",
    "structure_key",
]
