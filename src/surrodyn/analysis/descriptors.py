"""Per-frame structural descriptors of metal nanoclusters: Steinhardt order, CNA, coordination, RDF.

A *frame descriptor* maps the positions of one frame (``(n_atoms, 3)`` in Å) and the atomic
numbers to a fixed-length feature vector with named features (the :class:`FrameDescriptor`
contract). The descriptors here are invariant under rotation, translation and permutation of the
atoms, and cheap enough (a few ms per Cu147 frame on one core) to featurise thousands of MD frames
for a t-SNE + DBSCAN basin finder:

* :class:`Steinhardt` — mean and spread over atoms of the bond-orientational order ``q_l`` and,
  optionally, the normalised third-order invariants ``ŵ_l``;
* :class:`CNAFractions` — fractions of bonded pairs with each common-neighbour signature
  (421/422 fcc/hcp, 555 icosahedral axis, 544/433 defective, 666 bcc);
* :class:`CoordinationHistogram` — the distribution of first-shell coordination numbers;
* :class:`RadialDistribution` — the pair-distance histogram per atom;
* :class:`SOAPAverage` — atom-averaged SOAP through the optional ``dscribe`` package.

The neighbour search, the Steinhardt invariants and the common-neighbour kernel they build on live
in :mod:`~surrodyn.analysis.neighbours`, :mod:`~surrodyn.analysis.steinhardt` and
:mod:`~surrodyn.analysis.cna`; their public functions are re-exported here.
:class:`DescriptorSet` concatenates several of them and :func:`compute_descriptors` runs one over
a trajectory into an :class:`xarray.DataArray` with dims ``("frame", "feature")``. Clusters are
non-periodic; a ``cell`` (and ``pbc``) given to a descriptor switches to periodic neighbour search
through ASE (``pip install 'surrodyn[md]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from ..errors import ConfigError, ConfigTypeError, param_error
from .cna import CNA_SIGNATURES, _check_cna_cell, _cna_from_bonds, cna_signatures
from .neighbours import (
    _CU_CUTOFF_A,
    FCC_SHELL_MIDPOINT,
    _cell,
    _count,
    _half_bonds,
    _positions,
    _positive,
    nearest_neighbour_cutoff,
    neighbor_pairs,
)
from .steinhardt import _degrees, _steinhardt_from_bonds, steinhardt

__all__ = [
    "CNA_SIGNATURES",
    "DESCRIPTOR_PRESETS",
    "FCC_SHELL_MIDPOINT",
    "CNAFractions",
    "CoordinationHistogram",
    "DescriptorSet",
    "FrameDescriptor",
    "RadialDistribution",
    "SOAPAverage",
    "Steinhardt",
    "cna_signatures",
    "compute_descriptors",
    "default_descriptors",
    "descriptor_preset",
    "nearest_neighbour_cutoff",
    "neighbor_pairs",
    "steinhardt",
]


@runtime_checkable
class FrameDescriptor(Protocol):
    """The contract of a per-frame descriptor: named features and a call on one frame.

    Attributes
    ----------
    names : list of str
        Feature names, ``len(names) == n_features``.
    """

    names: list[str]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame.

        Parameters
        ----------
        positions : ndarray, shape (n_atoms, 3)
            Atom positions in Å.
        numbers : ndarray, shape (n_atoms,)
            Atomic numbers.

        Returns
        -------
        ndarray, shape (n_features,)
        """
        ...


# --------------------------------------------------------------------------------------------
# descriptor classes


class Steinhardt:
    """Mean and standard deviation over atoms of Steinhardt ``q_l`` (and ``ŵ_l``).

    Parameters
    ----------
    cutoff_A : float
        Neighbour cutoff in Å.
    degrees : sequence of int, default (4, 6)
        Degrees ``l``.
    wigner : bool, default False
        Add the normalised invariants ``ŵ_l``.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"q4_mean", "q4_std", "q6_mean", "q6_std"`` then, with ``wigner``, the same for ``w``.

    See Also
    --------
    steinhardt : the per-atom values and their definition.
    """

    def __init__(
        self,
        cutoff_A: float,
        degrees: Sequence[int] = (4, 6),
        wigner: bool = False,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.degrees = degrees
        self.wigner = wigner
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        self._degrees = _degrees(degrees)
        self._cell, self._pbc = _cell(cell, pbc)
        keys = [f"q{l}" for l in self._degrees] + ([f"w{l}" for l in self._degrees] if wigner else [])  # noqa: E741
        self.names = [f"{k}_{stat}" for k in keys for stat in ("mean", "std")]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        i, j, d = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        per_atom = _steinhardt_from_bonds(pos.shape[0], i, j, d, self._degrees, bool(self.wigner))
        return np.array([f(v) for v in per_atom.values() for f in (np.mean, np.std)])


class CNAFractions:
    """Fractions of bonded pairs with chosen common-neighbour signatures, and of all others.

    Parameters
    ----------
    cutoff_A : float
        Bond cutoff in Å.
    signatures : sequence of (int, int, int)
        Signatures to count; default 421, 422, 555, 544, 433 (fcc, hcp/twin, icosahedral axis,
        and the two defect signatures of liquids). Add 666 and 444 for bcc: in close-packed
        clusters a 666 pair is a rare one-off whose on/off, once standardised, splits basins
        that are one.
    cell, pbc : optional
        Periodic cell, as in :func:`cna_signatures`.

    Attributes
    ----------
    names : list of str
        ``"cna_421", "cna_422", "cna_555", "cna_544", "cna_433", "cna_other"`` by default.

    Notes
    -----
    The fractions sum to 1 (all zero for a frame without any bond).
    """

    def __init__(
        self,
        cutoff_A: float,
        *,
        signatures: Sequence[tuple[int, int, int]] = CNA_SIGNATURES[:5],
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.signatures = signatures
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        self._cell, self._pbc = _cell(cell, pbc)
        _check_cna_cell(self._cell, self._pbc, self._cutoff)
        try:
            self._signatures = [tuple(int(v) for v in sig) for sig in signatures]
        except (TypeError, ValueError):
            raise ConfigError(f"signatures={signatures!r}: expected triplets of integers such as (4, 2, 1).") from None
        if not self._signatures or any(len(sig) != 3 for sig in self._signatures):
            raise ConfigError(f"signatures={signatures!r}: expected one or more triplets such as (4, 2, 1).")
        self.names = [f"cna_{a}{b}{c}" for a, b, c in self._signatures] + ["cna_other"]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        i, j, _ = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        out = np.zeros(len(self.names))
        if i.size == 0:
            return out
        sig = _cna_from_bonds(pos.shape[0], i, j)
        for k, triplet in enumerate(self._signatures):
            out[k] = np.count_nonzero(np.all(sig == triplet, axis=1))
        out /= i.size
        out[-1] = max(0.0, 1.0 - out[:-1].sum())
        return out


class CoordinationHistogram:
    """Fraction of atoms with each first-shell coordination number.

    Parameters
    ----------
    cutoff_A : float
        Bond cutoff in Å.
    kmin, kmax : int, default 3 and 13
        Range of coordination numbers; atoms below ``kmin`` count in the ``kmin`` bin and atoms
        above ``kmax`` in the ``kmax`` bin, so the fractions always sum to 1.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"cn_3", …, "cn_13"``.
    """

    def __init__(
        self,
        cutoff_A: float,
        kmin: int = 3,
        kmax: int = 13,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.cutoff_A = cutoff_A
        self.kmin = kmin
        self.kmax = kmax
        self.cell = cell
        self.pbc = pbc
        self._cutoff = _positive("cutoff_A", cutoff_A)
        lo = _count("kmin", kmin, 0)
        if _count("kmax", kmax, 0) < lo:
            raise param_error("kmax", kmax, f"an integer >= kmin={kmin}")
        self._cell, self._pbc = _cell(cell, pbc)
        self.names = [f"cn_{k}" for k in range(kmin, kmax + 1)]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        n = pos.shape[0]
        i, j, _ = _half_bonds(pos, self._cutoff, self._cell, self._pbc)
        cn = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
        k = np.clip(cn, self.kmin, self.kmax) - self.kmin
        return np.bincount(k, minlength=len(self.names)) / n


class RadialDistribution:
    """Histogram of pair distances per atom.

    Parameters
    ----------
    r_min_A, r_max_A : float, default 2.0 and 6.0
        Range of distances in Å (``r_max_A`` is also the neighbour-search cutoff).
    n_bins : int, default 20
        Number of equal-width bins.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Attributes
    ----------
    names : list of str
        ``"rdf_<bin centre in Å>"``, e.g. ``"rdf_2.10"``.

    Notes
    -----
    Each unordered pair is counted from both atoms, so feature k is the mean number of neighbours
    per atom at distances in bin k, ``n(r_k) = 2 N_pairs(r_k) / n_atoms``, and the bins up to the
    first-shell cutoff add up to the mean coordination number. Bins are half-open
    ``[r_k, r_{k+1})`` except the last, which includes ``r_max_A`` (as :func:`numpy.histogram`).
    """

    def __init__(
        self,
        r_min_A: float = 2.0,
        r_max_A: float = 6.0,
        n_bins: int = 20,
        *,
        cell: ArrayLike | None = None,
        pbc: bool | Sequence[bool] | None = None,
    ) -> None:
        self.r_min_A = r_min_A
        self.r_max_A = r_max_A
        self.n_bins = n_bins
        self.cell = cell
        self.pbc = pbc
        if isinstance(r_min_A, bool) or not isinstance(r_min_A, int | float | np.integer | np.floating):
            raise param_error("r_min_A", r_min_A, "a finite number >= 0 in Å")
        if not (math.isfinite(r_min_A) and r_min_A >= 0):
            raise param_error("r_min_A", r_min_A, "a finite number >= 0 in Å")
        if _positive("r_max_A", r_max_A) <= r_min_A:
            raise param_error("r_max_A", r_max_A, f"a distance in Å larger than r_min_A={r_min_A}")
        self._edges = np.linspace(float(r_min_A), float(r_max_A), _count("n_bins", n_bins, 1) + 1)
        self._cell, self._pbc = _cell(cell, pbc)
        centres = 0.5 * (self._edges[1:] + self._edges[:-1])
        self.names = [f"rdf_{c:.2f}" for c in centres]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame; ``numbers`` is not used (one species)."""
        pos = _positions(positions)
        _, _, d = _half_bonds(pos, float(self.r_max_A), self._cell, self._pbc)
        counts, _ = np.histogram(np.linalg.norm(d, axis=1), bins=self._edges)
        return 2.0 * counts / pos.shape[0]


class SOAPAverage:
    """SOAP power spectrum averaged over atoms, through the optional package ``dscribe``.

    Parameters
    ----------
    cutoff_A : float, default 5.0
        SOAP cutoff radius in Å.
    n_max, l_max : int, default 6 and 6
        Radial and angular expansion orders.
    sigma_A : float, default 0.5
        Width of the atomic Gaussians in Å.
    species : sequence of str, default ("Cu",)
        Chemical species that may appear.
    average : {"inner", "outer"}, default "inner"
        dscribe's averaging: of the expansion coefficients before forming the power spectrum
        (``"inner"``) or of the per-atom power spectra (``"outer"``).

    Raises
    ------
    ImportError
        If ``dscribe`` is not installed (``pip install dscribe``).

    References
    ----------
    A. P. Bartók, R. Kondor, G. Csányi, Phys. Rev. B 87, 184115 (2013), doi:10.1103/PhysRevB.87.184115.
    L. Himanen et al., Comput. Phys. Commun. 247, 106949 (2020), doi:10.1016/j.cpc.2019.106949.
    """

    def __init__(
        self,
        cutoff_A: float = 5.0,
        n_max: int = 6,
        l_max: int = 6,
        sigma_A: float = 0.5,
        species: Sequence[str] = ("Cu",),
        average: str = "inner",
    ) -> None:
        self.cutoff_A = cutoff_A
        self.n_max = n_max
        self.l_max = l_max
        self.sigma_A = sigma_A
        self.species = species
        self.average = average
        _positive("cutoff_A", cutoff_A)
        _positive("sigma_A", sigma_A)
        _count("n_max", n_max, 1)
        _count("l_max", l_max, 0)
        if average not in ("inner", "outer"):
            raise param_error("average", average, '"inner" or "outer"')
        if isinstance(species, str) or not all(isinstance(s, str) for s in species) or len(species) == 0:
            raise param_error("species", species, 'a non-empty sequence of chemical symbols, e.g. ("Cu",)')
        try:
            from dscribe.descriptors import SOAP
        except ImportError:
            raise ImportError("SOAPAverage needs the optional package dscribe: pip install dscribe") from None
        self._soap = SOAP(
            species=list(species),
            periodic=False,
            r_cut=float(cutoff_A),
            n_max=int(n_max),
            l_max=int(l_max),
            sigma=float(sigma_A),
            average=average,
        )
        self.names = [f"soap_{k}" for k in range(self._soap.get_number_of_features())]

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Features of one frame."""
        from ase import Atoms

        pos = _positions(positions)
        atoms = Atoms(numbers=np.asarray(numbers), positions=pos)
        return np.asarray(self._soap.create(atoms), dtype=float).ravel()


class DescriptorSet:
    """Several frame descriptors side by side, itself a :class:`FrameDescriptor`.

    Parameters
    ----------
    descriptors : sequence of FrameDescriptor
        The descriptors, in feature order; their feature names must be distinct.

    Attributes
    ----------
    names : list of str
        The concatenated feature names.
    """

    def __init__(self, descriptors: Sequence[FrameDescriptor]) -> None:
        self.descriptors = descriptors
        if isinstance(descriptors, FrameDescriptor) or not isinstance(descriptors, Sequence) or not descriptors:
            raise param_error("descriptors", descriptors, "a non-empty sequence of frame descriptors")
        for k, desc in enumerate(descriptors):
            if not isinstance(desc, FrameDescriptor):
                raise ConfigTypeError(
                    f"descriptors[{k}] is a {type(desc).__name__}, not a frame descriptor: it needs a `names` "
                    "list and a __call__(positions, numbers) returning one value per name."
                )
        self.names = [name for desc in descriptors for name in desc.names]
        seen: set[str] = set()
        duplicates = sorted({n for n in self.names if n in seen or seen.add(n)})
        if duplicates:
            raise ConfigError(
                f"descriptors has duplicate feature names {duplicates}: give each descriptor distinct names."
            )

    def __call__(self, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Concatenated features of one frame."""
        parts = []
        for desc in self.descriptors:
            values = np.asarray(desc(positions, numbers), dtype=float).ravel()
            if values.size != len(desc.names):
                raise ConfigError(
                    f"{type(desc).__name__} returned {values.size} values for {len(desc.names)} names; "
                    "a frame descriptor must return exactly one value per name."
                )
            parts.append(values)
        return np.concatenate(parts)


def default_descriptors(
    cutoff_A: float | None = None,
    *,
    distributions: bool = False,
    cell: ArrayLike | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> DescriptorSet:
    """Build the default descriptor set for metal clusters.

    Parameters
    ----------
    cutoff_A : float, optional
        First-shell cutoff in Å; default ≈ 3.085 Å, the value of :func:`nearest_neighbour_cutoff`
        for bulk Cu (a = 3.615 Å).
    distributions : bool, default False
        Add the coordination histogram and the radial distribution.
    cell, pbc : optional
        Periodic cell, as in :func:`neighbor_pairs`.

    Returns
    -------
    DescriptorSet
        ``Steinhardt(wigner=True)`` (8 features) and ``CNAFractions`` (6: 421, 422, 555, 544,
        433, other); with ``distributions`` also ``CoordinationHistogram`` (11: CN 3–13) and
        ``RadialDistribution`` (20 bins over 2–6 Å), 45 features.

    Notes
    -----
    The order parameters alone are the default for basin finding. The histogram bins drift
    smoothly with thermal expansion and vibration. With 31 standardised features tracking
    temperature (of 46, measured when CNA still counted 666), t-SNE lays a heating ramp out as
    one continuous curve and DBSCAN no longer sees the melting of Cu147 as a gap (measured on
    the ramps of ``docs/basins.md``).
    """
    cutoff = _CU_CUTOFF_A if cutoff_A is None else cutoff_A
    parts: list[FrameDescriptor] = [
        Steinhardt(cutoff, wigner=True, cell=cell, pbc=pbc),
        CNAFractions(cutoff, cell=cell, pbc=pbc),
    ]
    if distributions:
        parts += [CoordinationHistogram(cutoff, cell=cell, pbc=pbc), RadialDistribution(cell=cell, pbc=pbc)]
    return DescriptorSet(parts)


def compute_descriptors(
    positions: np.ndarray,
    numbers: np.ndarray,
    descriptors: FrameDescriptor | None = None,
    progress: bool = False,
) -> xr.DataArray:
    """Descriptors of every frame of a trajectory.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, n_atoms, 3)
        Atom positions in Å.
    numbers : ndarray of int, shape (n_atoms,)
        Atomic numbers.
    descriptors : FrameDescriptor, optional
        What to compute; default :func:`default_descriptors` with the cutoff
        :func:`nearest_neighbour_cutoff` of the first frame.
    progress : bool, default False
        Show a progress bar (tqdm).

    Returns
    -------
    xarray.DataArray, dims ("frame", "feature")
        Coordinates ``frame`` (0-based index) and ``feature`` (the descriptor names).
    """
    try:
        pos = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("positions must be a numeric array of shape (n_frames, n_atoms, 3) in Å.") from None
    if pos.ndim != 3 or pos.shape[2] != 3 or 0 in pos.shape:
        raise ConfigError(
            f"positions must have shape (n_frames, n_atoms, 3) with at least one frame and atom; got shape "
            f"{pos.shape}. For a single frame use positions[None]."
        )
    nums = np.asarray(numbers)
    if nums.shape != (pos.shape[1],) or not np.issubdtype(nums.dtype, np.integer):
        raise ConfigError(
            f"numbers must be integer atomic numbers of shape (n_atoms,) = ({pos.shape[1]},); "
            f"got shape {nums.shape} and dtype {nums.dtype}."
        )
    if descriptors is None:
        descriptors = default_descriptors(nearest_neighbour_cutoff(pos[0]))
    elif not isinstance(descriptors, FrameDescriptor):
        raise ConfigTypeError(
            f"descriptors is a {type(descriptors).__name__}, not a frame descriptor (a `names` list and a "
            "__call__(positions, numbers)); combine several with DescriptorSet."
        )
    names = list(descriptors.names)
    out = np.empty((pos.shape[0], len(names)))
    frames = range(pos.shape[0])
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, unit="frame", desc="descriptors")
    for f in frames:
        values = np.asarray(descriptors(pos[f], nums), dtype=float).ravel()
        if values.size != len(names):
            raise ConfigError(
                f"{type(descriptors).__name__} returned {values.size} values for {len(names)} names; "
                "a frame descriptor must return exactly one value per name."
            )
        out[f] = values
    return xr.DataArray(
        out,
        dims=("frame", "feature"),
        coords={"frame": np.arange(pos.shape[0]), "feature": names},
        name="descriptors",
        attrs={"long_name": "structural descriptors per frame"},
    )


#: names accepted by :func:`descriptor_preset`
DESCRIPTOR_PRESETS = ("default", "distributions", "soap")


def descriptor_preset(kind: str, cutoff_A: float | None = None) -> DescriptorSet:
    """Build one of the named frame-descriptor sets of the basin analysis.

    Parameters
    ----------
    kind : {"default", "distributions", "soap"}
        ``"default"``: :func:`default_descriptors`; ``"distributions"``: the same with the
        coordination histogram and radial distribution; ``"soap"``: :class:`SOAPAverage`
        (DScribe's defaults here: 5 Å, n_max = l_max = 6) with :class:`CNAFractions`, which the
        morphology labels need.
    cutoff_A : float, optional
        First-shell cutoff in Å (:func:`nearest_neighbour_cutoff` of a frame); default as in
        :func:`default_descriptors`.

    Returns
    -------
    DescriptorSet

    Raises
    ------
    ConfigError
        For an unknown ``kind``, or ``"soap"`` without dscribe installed.
    """
    if kind not in DESCRIPTOR_PRESETS:
        raise param_error("kind", kind, f"one of {DESCRIPTOR_PRESETS}")
    if kind != "soap":
        return default_descriptors(cutoff_A, distributions=kind == "distributions")
    try:
        soap = SOAPAverage()
    except ImportError as exc:
        raise ConfigError(f"descriptors 'soap': {exc}") from None
    return DescriptorSet([soap, CNAFractions(_CU_CUTOFF_A if cutoff_A is None else cutoff_A)])
