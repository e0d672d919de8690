"""One exception tree for surrodyn.

Every error raised on bad user input derives from :class:`SurrodynError` and from the
matching built-in (``ValueError``, ``TypeError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "OutputError",
    "SurrodynError",
    "param_error",
    "read_yaml_mapping",
    "unknown_keys_error",
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


def unknown_keys_error(unknown: Iterable[str], allowed: Iterable[str], what: str) -> ConfigError:
    """Build the error for unknown keys, suggesting the closest allowed key for each.

    Parameters
    ----------
    unknown : iterable of str
        The keys that are not allowed.
    allowed : iterable of str
        The keys that are.
    what : str
        What holds them, e.g. ``"kMC parameter(s)"`` or ``"key(s) in sampling"``.
    """
    import difflib

    known = list(allowed)
    hints = [
        f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, known, 1)) else repr(u)
        for u in sorted(str(k) for k in unknown)
    ]
    return ConfigError(f"unknown {what}: {', '.join(hints)}. Allowed: {', '.join(known)}.")


def read_yaml_mapping(path: str | Path, what: str) -> Any:
    """Read a YAML file, turning unreadable files and bad YAML into a :class:`ConfigError`.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        What it should hold, for the message (e.g. ``"config file"``).

    Returns
    -------
    object
        The parsed document (an empty mapping for an empty file).
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {exc.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{str(path)!r} is not valid YAML: {exc}") from None
    return {} if data is None else data
