"""Temporal Fusion Transformer surrogate of kMC density dynamics (see ``docs/surrogate.md``).

Four separate things, after the project's style: small public blocks (:mod:`.blocks`), a plain
``nn.Module`` (:class:`FieldTFT`), a thin Lightning wrapper and the :func:`train` entry point
(:mod:`.train`), and export (:mod:`.export`). A trained model is a :class:`Surrogate`, saved as
a directory and loadable without the training data.
"""

from .artefact import Surrogate, data_fingerprint
from .data import FieldData, Normalizer, split_points
from .loss import QuantileLoss, pinball_loss
from .metrics import Evaluation, band_coverage, evaluate, smape
from .model import DEFAULT_QUANTILES, FieldTFT, TFTConfig, TFTOutput
from .train import TrainConfig, prepare, train

__all__ = [
    "DEFAULT_QUANTILES",
    "Evaluation",
    "FieldData",
    "FieldTFT",
    "Normalizer",
    "QuantileLoss",
    "Surrogate",
    "TFTConfig",
    "TFTOutput",
    "TrainConfig",
    "band_coverage",
    "data_fingerprint",
    "evaluate",
    "pinball_loss",
    "prepare",
    "smape",
    "split_points",
    "train",
]
