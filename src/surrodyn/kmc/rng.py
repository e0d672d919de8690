"""Explicit-state random numbers for the numba kernels (xoshiro256**).

The state is a ``uint64[4]`` array owned by the caller, seeded from a
:class:`numpy.random.SeedSequence`, so a kernel run is reproducible from its seed and can be
checkpointed with the rest of the simulation state. Reference: D. Blackman and S. Vigna,
"Scrambled linear pseudorandom number generators", ACM TOMS 47 (2021) 36,
doi:10.1145/3460772.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["next_double", "next_open_double", "next_u64", "seed_state"]

_U = np.uint64


def seed_state(seed_seq: np.random.SeedSequence) -> np.ndarray:
    """Return a fresh xoshiro256** state drawn from a seed sequence.

    Parameters
    ----------
    seed_seq : numpy.random.SeedSequence
        Source of entropy (spawned per replica).

    Returns
    -------
    ndarray of uint64, shape (4,)
        A non-zero state.
    """
    state = seed_seq.generate_state(4, dtype=np.uint64)
    if not state.any():  # pragma: no cover - probability 2^-256
        state[0] = 1
    return state


@njit(inline="always")
def _rotl(x, k):
    return (x << _U(k)) | (x >> _U(64 - k))


@njit(inline="always")
def next_u64(s):
    """Advance the state ``s`` in place and return 64 random bits."""
    result = _rotl(s[1] * _U(5), 7) * _U(9)
    t = s[1] << _U(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(inline="always")
def next_double(s):
    """Return a uniform double in ``[0, 1)`` (53 random bits)."""
    return float(next_u64(s) >> _U(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def next_open_double(s):
    """Return a uniform double in ``(0, 1]``, safe for ``-log(u)``."""
    return (float(next_u64(s) >> _U(11)) + 1.0) * (1.0 / 9007199254740992.0)
