"""One exception tree for surrodyn.

Every error raised on bad user input derives from :class:`SurrodynError` and from the
matching built-in (``ValueError``, ``TypeError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "OutputError",
    "SurrodynError",
    "param_error",
]


class SurrodynError(Exception):
    """Base class of every surrodyn error."""


class ConfigError(SurrodynError, ValueError):
    """A configuration value is missing, unknown, out of range or inconsistent."""


class ConfigTypeError(SurrodynError, TypeError):
    """A configuration value has the wrong type."""


class OutputError(SurrodynError, OSError):
    """An output path cannot be written."""


def param_error(name: str, value: object, allowed: str, fix: str | None = None) -> ConfigError:
    """Build a :class:`ConfigError` that names the parameter, the value and what is allowed.

    Parameters
    ----------
    name : str
        Parameter name as the user wrote it (e.g. ``"temperature_K"``).
    value : object
        The value received.
    allowed : str
        What is allowed, in words (e.g. ``"a positive number of kelvin"``).
    fix : str, optional
        A hint on how to fix it.

    Returns
    -------
    ConfigError
        The error, ready to raise.
    """
    msg = f"{name}={value!r} is not allowed: expected {allowed}."
    if fix:
        msg += f" {fix}"
    return ConfigError(msg)
