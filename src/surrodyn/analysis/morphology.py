"""Representative morphologies of basins: medoids, nearest frames, inherent structures, CNA labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import param_error

__all__ = ["MORPHOLOGIES", "classify_cna", "quench", "representatives"]

#: labels :func:`classify_cna` gives
MORPHOLOGIES = ("fcc-like", "icosahedral", "decahedral", "disordered")


def classify_cna(fractions: Mapping[str, float], *, ordered_min: float = 0.25) -> str:
    r"""Name the morphology of a cluster from its common-neighbour-analysis pair fractions.

    Parameters
    ----------
    fractions : mapping
        Pair fractions with keys ``cna_421``, ``cna_422``, ``cna_555`` (as :class:`CNAFractions`
        gives them), of one frame or averaged over a basin.
    ordered_min : float
        Below this fraction of close-packed signatures (421 + 422 + 555) the cluster is
        ``disordered``.

    Returns
    -------
    str
        One of :data:`MORPHOLOGIES`.

    Notes
    -----
    With :math:`o = f_{421} + f_{422} + f_{555}`: ``disordered`` if :math:`o <` ``ordered_min``;
    else ``icosahedral`` if :math:`f_{555}/o \ge 0.04` (five-fold axes from the centre: 0.085 in
    an ideal Cu147 icosahedron, 0.19 in Cu55); ``decahedral`` if :math:`0.004 \le f_{555}/o < 0.04`
    and :math:`f_{422}/o \ge 0.1` (one five-fold axis and its twin planes: 0.011 and 0.28 in a
    Marks decahedron); ``fcc-like`` otherwise (an ideal cuboctahedron is all 421 inside; thermal
    noise alone gives :math:`f_{555}/o \lesssim 0.004`). The thresholds sit between the ideal
    values of :mod:`ase.cluster` shapes and hold for the thermal frames of ``docs/basins.md``.
    ``ordered_min`` sits in the gap between basin means measured over 60 EMT Cu ramps
    (``docs/basins.md``): liquid Cu55/Cu147 basins have :math:`o` = 0.110-0.151, solid basins
    0.41-0.67 even near melting. (It was 0.15, at the edge of the liquids' spread: one liquid
    Cu147 basin at 0.151 was named icosahedral.)
    """
    try:
        f421, f422, f555 = (float(fractions[k]) for k in ("cna_421", "cna_422", "cna_555"))
    except KeyError as exc:
        raise param_error("fractions", sorted(fractions), "keys cna_421, cna_422 and cna_555") from exc
    ordered = f421 + f422 + f555
    if ordered < ordered_min:
        return "disordered"
    r555, r422 = f555 / ordered, f422 / ordered
    if r555 >= 0.04:
        return "icosahedral"
    if r555 >= 0.004 and r422 >= 0.1:
        return "decahedral"
    return "fcc-like"


def representatives(x: np.ndarray, labels: np.ndarray, n: int = 3) -> dict[int, np.ndarray]:
    """Medoid and nearest frames of every basin.

    Parameters
    ----------
    x : ndarray, shape (n_frames, n_features)
        Standardised descriptors.
    labels : ndarray of int, shape (n_frames,)
        Basin labels (-1 noise is skipped).
    n : int
        Frames per basin: the medoid first, then the frames nearest to it.

    Returns
    -------
    dict of int to ndarray of int
        Frame indices per basin.
    """
    out = {}
    for b in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == b)
        pts = x[idx]
        # medoid: least summed distance to the basin's frames (to 500 evenly spaced ones for big basins)
        ref = pts if len(pts) <= 500 else pts[np.linspace(0, len(pts) - 1, 500).astype(int)]
        cost = cdist(pts, ref).sum(axis=1)
        medoid = int(np.argmin(cost))
        d = np.linalg.norm(pts - pts[medoid], axis=1)
        out[int(b)] = idx[np.argsort(d, kind="stable")[: max(int(n), 1)]]
    return out


def quench(atoms: Any, calculator: Any, *, fmax_eV_A: float = 0.01, max_steps: int = 2000) -> Any:
    """Inherent structure of a frame: a local energy minimisation (FIRE) with ``calculator``.

    Parameters
    ----------
    atoms : ase.Atoms
        The frame (not modified).
    calculator : ase Calculator
        Any ASE calculator (the one of the MD).
    fmax_eV_A : float
        Force convergence.
    max_steps : int
        Step limit.

    Returns
    -------
    ase.Atoms
        The minimised copy without a calculator; ``info["energy"]`` is its energy (eV) and
        ``info["quench_converged"]`` tells whether ``fmax`` was reached.
    """
    from ase.optimize import FIRE

    out = atoms.copy()
    if out.cell.rank < 3 and not out.pbc.any():
        out.center(vacuum=15.0)  # some calculators (asap3) need a cell even for a free cluster
    out.calc = calculator
    opt = FIRE(out, logfile=None)
    out.info["quench_converged"] = bool(opt.run(fmax=fmax_eV_A, steps=max_steps))
    out.info["energy"] = float(out.get_potential_energy())
    out.calc = None  # a plain structure: writers need no calculator results
    return out
