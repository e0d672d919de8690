"""surrodyn: fast, trustworthy surrogates of slow materials-dynamics simulations.

The package is organised as engines (``kmc``), data contracts (``data``), and the
use layer (``plot``, ``cli``); see ``docs/architecture.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("surrodyn")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
