"""Interpret learned CVs: rank geometric variables by their association with each latent dimension.

For every latent dimension and every variable: Pearson and Spearman correlation and the mutual
information (k-nearest-neighbour estimator of Kraskov et al. 2004, via scikit-learn, in nats).
Periodic variables (angles) are scored by the correlation of the latent with the best
cos(θ − θ0): Mardia's circular–linear correlation for Pearson, its rank analogue for Spearman. A
correlation with a raw angle is meaningless across the ±π cut, and one with sin θ or cos θ alone
depends on where the angle's origin happens to lie. The correlation matrix between latent
dimensions measures disentanglement (off-diagonal near 0).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from .features import Angles, Dihedrals, Distances, FeatureStream, Spec

__all__ = ["geometric_library", "geometric_variables", "latent_correlation", "rank_variables", "top_variables"]


def _columns(variables: Mapping[str, np.ndarray], periodic: Sequence[str], n: int) -> tuple[list[str], np.ndarray]:
    """Stack the variables as columns; a periodic one becomes two columns, its sine and cosine."""
    names, cols = [], []
    for name, values in variables.items():
        v = np.asarray(values, dtype=float).ravel()
        if v.size != n:
            raise ConfigError(f"variable {name!r} has {v.size} frames, the latent {n}.")
        if name in periodic:
            names += [f"sin {name}", f"cos {name}"]
            cols += [np.sin(v), np.cos(v)]
        else:
            names.append(name)
            cols.append(v)
    return names, np.column_stack(cols)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), np.inf)
    b = (b - b.mean(0)) / np.where(b.std(0) > 0, b.std(0), np.inf)
    return a.T @ b / a.shape[0]


def _circular_linear(r_s: np.ndarray, r_c: np.ndarray, r_sc: np.ndarray) -> np.ndarray:
    """Mardia's circular–linear correlation from the correlations with sin θ, cos θ and between them.

    It is the multiple correlation of the linear variable on (sin θ, cos θ), i.e. its correlation
    with the best cos(θ − θ0): independent of where the angle's origin lies, in [0, 1].
    """
    num = r_s**2 + r_c**2 - 2.0 * r_s * r_c * r_sc
    return np.sqrt(np.clip(num / np.maximum(1.0 - r_sc**2, 1e-12), 0.0, 1.0))


def _circular_rank(rz: np.ndarray, theta: np.ndarray, n_grid: int = 90) -> np.ndarray:
    """Rank analogue of the circular–linear correlation: max over θ0 of |Spearman(z, cos(θ − θ0))|.

    Rank-based on both sides, so a variable that is any monotone function of cos(θ − θ0) (a
    distance across the rotatable bond of a torsion θ, say) never outranks θ itself. The maximum
    is found on a grid of ``n_grid`` offsets in [0, π) and refined by a bounded scalar search.

    Parameters
    ----------
    rz : numpy.ndarray
        Ranks of the latent (N, d).
    theta : numpy.ndarray
        Angle in radians (N,).
    n_grid : int
        Grid offsets.

    Returns
    -------
    numpy.ndarray
        One value in [0, 1] per latent dimension.
    """
    from scipy.optimize import minimize_scalar
    from scipy.stats import rankdata

    def score(offsets: np.ndarray) -> np.ndarray:  # (d, len(offsets))
        return np.abs(_corr(rz, rankdata(np.cos(theta[:, None] - offsets[None, :]), axis=0)))

    grid = np.linspace(0.0, np.pi, n_grid, endpoint=False)
    coarse = score(grid)
    step = grid[1] - grid[0]
    out = coarse.max(1)
    for d in range(rz.shape[1]):
        t0 = grid[int(coarse[d].argmax())]
        res = minimize_scalar(lambda t, d=d: -score(np.array([t]))[d, 0], bounds=(t0 - step, t0 + step),
                              method="bounded", options={"xatol": 1e-3})  # fmt: skip
        out[d] = max(out[d], -float(res.fun))
    return np.minimum(out, 1.0)


def rank_variables(
    latent: np.ndarray,
    variables: Mapping[str, np.ndarray],
    periodic: Sequence[str] = (),
    mutual_information: bool = True,
    max_frames: int = 5000,
    seed: int = 0,
) -> xr.Dataset:
    """Association of every latent dimension with every geometric variable.

    Parameters
    ----------
    latent : numpy.ndarray
        Latent coordinates (N, d).
    variables : mapping of str to numpy.ndarray
        Geometric variables per frame (N,), by name.
    periodic : sequence of str
        Names of variables that are angles in radians. Their Pearson and Spearman entries are
        Mardia's circular–linear correlation (Pearson: the latent's correlation with the best
        cos(θ − θ0)) and its rank analogue (Spearman: max over θ0 of |Spearman(z, cos(θ − θ0))|);
        both in [0, 1], no sign. Their mutual information is the larger of those with
        sin θ and cos θ (a lower bound of the information about θ).
    mutual_information : bool
        Also estimate the mutual information (slower: k-NN estimator on up to ``max_frames`` frames).
    max_frames : int
        Frames drawn (seeded) for the mutual information.
    seed : int
        Seed of that draw and of the estimator.

    Returns
    -------
    xarray.Dataset
        ``pearson``, ``spearman`` and ``mutual_information`` over dims (latent, variable), one
        entry per variable. Use :func:`top_variables` to rank.
    """
    from scipy.stats import rankdata

    z = np.asarray(latent, dtype=float)
    z = z[:, None] if z.ndim == 1 else z
    if z.shape[0] < 3:
        raise ConfigError("at least 3 frames are needed to correlate.")
    _, v = _columns(variables, periodic, z.shape[0])
    names = list(variables)
    # where each variable's column(s) sit in v: one column, or (sin, cos) for a periodic one
    where: list[tuple[int, ...]] = []
    k = 0
    for name in names:
        width = 2 if name in periodic else 1
        where.append(tuple(range(k, k + width)))
        k += width

    def combine(r: np.ndarray) -> np.ndarray:
        out = np.empty((z.shape[1], len(names)))
        for j, cols in enumerate(where):
            if len(cols) == 1:
                out[:, j] = r[:, cols[0]]
            else:
                r_sc = _corr(v[:, [cols[0]]], v[:, [cols[1]]])[0, 0]
                out[:, j] = _circular_linear(r[:, cols[0]], r[:, cols[1]], r_sc)
        return out

    rz = rankdata(z, axis=0)
    spearman = np.empty((z.shape[1], len(names)))
    linear = [j for j, cols in enumerate(where) if len(cols) == 1]
    spearman[:, linear] = _corr(rz, rankdata(v[:, [where[j][0] for j in linear]], axis=0))
    for j, cols in enumerate(where):
        if len(cols) == 2:  # the angle back from its (sin, cos) columns
            spearman[:, j] = _circular_rank(rz, np.arctan2(v[:, cols[0]], v[:, cols[1]]))
    data = {
        "pearson": (("latent", "variable"), combine(_corr(z, v))),
        "spearman": (("latent", "variable"), spearman),
    }
    if mutual_information:
        from sklearn.feature_selection import mutual_info_regression

        rng = np.random.default_rng(seed)
        idx = rng.choice(z.shape[0], size=min(max_frames, z.shape[0]), replace=False)
        mi = np.stack([mutual_info_regression(v[idx], z[idx, d], random_state=seed) for d in range(z.shape[1])])
        mi = np.stack([mi[:, list(cols)].max(1) for cols in where], axis=1)
        data["mutual_information"] = (("latent", "variable"), mi)
    return xr.Dataset(data, coords={"latent": np.arange(z.shape[1]), "variable": names})


def top_variables(table: xr.Dataset, by: str = "spearman", n: int = 5) -> dict[int, list[tuple[str, float]]]:
    """Return the ``n`` variables most associated with each latent dimension (by |value| of ``by``)."""
    if by not in table:
        raise ConfigError(f"unknown ranking {by!r}; the table has {list(table.data_vars)}.")
    out = {}
    for d in table["latent"].values:
        vals = table[by].sel(latent=d).values
        order = np.argsort(-np.abs(vals))[:n]
        out[int(d)] = [(str(table["variable"].values[i]), float(vals[i])) for i in order]
    return out


def latent_correlation(latent: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix between latent dimensions (disentanglement: off-diagonal ≈ 0)."""
    z = np.asarray(latent, dtype=float)
    return np.atleast_2d(np.corrcoef(z, rowvar=False))


def _is_hydrogen(atom: Any) -> bool:
    """Hydrogen by element when the topology has one, else by name (H*, 1HB, ...)."""
    element = str(getattr(atom, "element", "") or "").strip()
    if element:
        return element.upper() in ("H", "D")
    return re.match(r"^[0-9]*[HD]", str(atom.name)) is not None


def geometric_library(
    universe: Any,
    heavy_distances: bool = True,
    bond_angles: bool = True,
    backbone: bool = True,
    sidechain: bool = True,
) -> tuple[list[Spec], list[str]]:
    """Build the automatic library of geometric variables of a topology.

    Parameters
    ----------
    universe : MDAnalysis.Universe
        The topology.
    heavy_distances : bool
        All heavy-atom pair distances.
    bond_angles : bool
        Every angle between two bonds of heavy atoms at a common atom (needs bonds in the topology,
        e.g. PDB CONECT records, PSF or PRMTOP; skipped without them).
    backbone : bool
        φ, ψ and ω of every residue that has them (named ``phi ALA2`` etc.).
    sidechain : bool
        χ1 of every residue that has it.

    Returns
    -------
    tuple
        Feature specs (dihedrals as raw angles) and the names of the periodic variables.
    """
    specs: list[Spec] = []
    heavy = np.flatnonzero([not _is_hydrogen(atom) for atom in universe.atoms])
    heavy_sel = "index " + " ".join(str(i) for i in heavy)
    if heavy_distances and heavy.size > 1:
        specs.append(Distances(heavy_sel))
    if bond_angles and hasattr(universe, "bonds") and len(universe.bonds):
        is_heavy = np.zeros(len(universe.atoms), dtype=bool)
        is_heavy[heavy] = True
        neighbours: dict[int, list[int]] = {}
        for i, j in universe.bonds.indices:
            if is_heavy[i] and is_heavy[j]:
                neighbours.setdefault(int(i), []).append(int(j))
                neighbours.setdefault(int(j), []).append(int(i))
        triples = tuple(
            (a, centre, b)
            for centre, nb in sorted(neighbours.items())
            for k, a in enumerate(sorted(nb))
            for b in sorted(nb)[k + 1 :]
        )
        if triples:
            specs.append(Angles(triples))
    quads, labels = [], []
    for res in universe.residues:
        tag = f"{res.resname}{res.resid}"
        chosen = []
        if backbone:
            chosen += [("phi", res.phi_selection()), ("psi", res.psi_selection()), ("omega", res.omega_selection())]
        if sidechain:
            chosen.append(("chi1", res.chi1_selection()))
        for name, group in chosen:
            if group is not None and len(group) == 4:
                quads.append(tuple(int(i) for i in group.indices))
                labels.append(f"{name} {tag}")
    if quads:
        specs.append(Dihedrals(tuple(quads), labels=tuple(labels), sincos=False))
    if not specs:
        raise ConfigError("the topology gives no geometric variable (no heavy atoms, bonds or residues).")
    return specs, labels


def geometric_variables(
    topology: str | Path,
    trajectory: str | Path | Sequence[str | Path] | None,
    extra: Sequence[Spec] = (),
    chunk: int = 1000,
    stride: int = 1,
    **library: bool,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Evaluate the geometric library (plus ``extra`` user-named specs) over a trajectory.

    Parameters
    ----------
    topology, trajectory : path
        As for :class:`surrodyn.cv.features.FeatureStream`.
    extra : sequence of Spec
        Additional variables (dihedrals among them should use ``sincos=False`` to stay angles).
    chunk, stride : int
        Streaming settings.
    **library : bool
        Switches of :func:`geometric_library`.

    Returns
    -------
    tuple
        ``{name: values per frame}`` and the names of the periodic ones, ready for
        :func:`rank_variables`.
    """
    import MDAnalysis as mda

    if not Path(topology).is_file():
        raise ConfigError(f"{topology}: no such file.")
    try:
        universe = mda.Universe(str(topology))
    except Exception as err:  # unreadable topology
        raise ConfigError(f"MDAnalysis cannot read {topology}: {err}") from None
    specs, periodic = geometric_library(universe, **library)
    specs = [*specs, *extra]
    periodic = periodic + [lab for s in extra if isinstance(s, Dihedrals) and not s.sincos for lab in (s.labels or ())]
    stream = FeatureStream(topology, trajectory, specs, chunk=chunk, stride=stride)
    values = stream.array()
    return {name: values[:, k] for k, name in enumerate(stream.names)}, periodic
