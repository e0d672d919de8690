"""Data contracts: the xarray schemas of every result, validators and atomic I/O."""

from .io import check_writable, read_dataset, write_dataset
from .schema import DEFAULT_QUANTILES, add_ensemble_statistics, config_attrs, kmc_dataset, validate_field_dataset

__all__ = [
    "DEFAULT_QUANTILES",
    "add_ensemble_statistics",
    "check_writable",
    "config_attrs",
    "kmc_dataset",
    "read_dataset",
    "validate_field_dataset",
    "write_dataset",
]
