"""End-to-end basin analysis of a heating ramp: descriptors → basins → transitions → morphologies.

Example::

    from surrodyn.analysis import analyse_ramp, read_frames
    result = analyse_ramp(read_frames("cu147_ramp"))
    print(result.to_text())
    result.save("cu147_basins")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from sklearn.metrics import adjusted_rand_score

from ..errors import ConfigError
from .basins import BasinFinder
from .descriptors import FrameDescriptor, compute_descriptors, default_descriptors, nearest_neighbour_cutoff
from .morphology import classify_cna, quench, representatives
from .transitions import KB_EV, energy_phase_labels, heat_capacity, lindemann_index, smooth_labels, switch_temperatures

__all__ = ["BasinAnalysis", "analyse_ramp", "read_frames", "summarize"]


def read_frames(path: str | Path) -> xr.Dataset:
    """Read frames for basin analysis: a ramp of :func:`surrodyn.md.run_ramp` or any ASE trajectory.

    Parameters
    ----------
    path : str or Path
        A ramp directory or its ``ramp.nc``; or any file :func:`ase.io.read` reads (extended XYZ,
        ASE ``.traj``, ...). Energies come from the frames' calculator results or ``info["energy"]``;
        temperatures from ``info["target_temperature_K"]`` or ``info["temperature_K"]``.

    Returns
    -------
    xarray.Dataset
        The schema of :func:`surrodyn.md.load_ramp` (``positions``, ``potential_energy``,
        ``target_temperature`` ...).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "ramp.nc"
    if p.suffix == ".nc":
        from ..data.io import read_dataset

        if not p.exists():
            raise FileNotFoundError(f"no ramp at {str(path)!r}: run `surrodyn md ramp CONFIG.yaml` first.")
        return read_dataset(p)
    if not p.exists():
        raise FileNotFoundError(f"no trajectory at {str(path)!r}.")
    from ase.io import read

    try:
        frames = read(p, index=":")
    except Exception as exc:  # ase raises many types for unreadable files
        raise ConfigError(f"ASE cannot read {str(path)!r} as a trajectory: {exc}") from None
    if len({len(a) for a in frames}) != 1:
        raise ConfigError(f"{str(path)!r}: every frame must hold the same atoms for basin analysis.")

    def energy(a: Any) -> float:
        if "energy" in a.info:
            return float(a.info["energy"])
        try:
            return float(a.get_potential_energy())
        except Exception:
            return float("nan")

    def temp(a: Any) -> float:
        for key in ("target_temperature_K", "temperature_K", "temperature"):
            if key in a.info:
                return float(a.info[key])
        return float("nan")

    return xr.Dataset(
        {
            "positions": (
                ("frame", "atom", "xyz"),
                np.stack([a.get_positions() for a in frames]),
                {"units": "angstrom"},
            ),
            "potential_energy": ("frame", np.array([energy(a) for a in frames]), {"units": "eV"}),
            "target_temperature": ("frame", np.array([temp(a) for a in frames]), {"units": "K"}),
        },
        coords={"frame": np.arange(len(frames)), "symbol": ("atom", np.asarray(frames[0].get_chemical_symbols()))},
        attrs={"cluster": f"{frames[0].get_chemical_formula()} ({p.name})", "n_atoms": len(frames[0])},
    )


@dataclass
class BasinAnalysis:
    """Result of :func:`analyse_ramp`; ``to_dict``/``to_text`` report it, ``save`` writes everything."""

    frames: xr.Dataset
    descriptors: xr.DataArray
    finder: BasinFinder
    smoothed: np.ndarray
    switches: list[tuple[int, int, float]]
    morphology: dict[int, str]
    cv_grid_K: np.ndarray
    heat_capacity_eV_K: np.ndarray
    lindemann: np.ndarray
    energy_labels: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def temperature(self) -> np.ndarray:
        """Thermostat temperature of each frame (K)."""
        return self.frames.target_temperature.values

    cv_bandwidth_K: float = 25.0

    @property
    def cv_peak_K(self) -> float:
        """Temperature of the heat-capacity maximum, away from the ends of the ramp."""
        return _interior_argmax(self.cv_grid_K, self.heat_capacity_eV_K, self.cv_bandwidth_K)

    @property
    def lindemann_K(self) -> float:
        """Temperature of the steepest rise of the Lindemann index, away from the ends of the ramp."""
        grid, slope = heat_capacity(self.temperature, self.lindemann, bandwidth_K=40.0)
        return _interior_argmax(grid, slope, 40.0)

    @property
    def melting_K(self) -> float:
        """Switch temperature into the first disordered basin (nan if none)."""
        for a, b, t in self.switches:
            if self.morphology.get(b) == "disordered" and self.morphology.get(a) != "disordered":
                return t
        return float("nan")

    @property
    def solid_solid_K(self) -> list[float]:
        """Switch temperatures between two ordered basins of different morphology."""
        m = self.morphology
        return [t for a, b, t in self.switches if "disordered" not in (m.get(a), m.get(b)) and m.get(a) != m.get(b)]

    @property
    def ari(self) -> float:
        """Adjusted Rand index of the basins (noise excluded) against the energy-based phase labels.

        NaN with fewer than two basins: the energy labels are cut into as many phases as there are
        basins, so a single basin would match its single energy phase trivially (ARI 1) even when
        it has swallowed a transition.
        """
        if self.finder.n_basins_ < 2:
            return float("nan")
        ok = self.finder.labels_ >= 0
        return float(adjusted_rand_score(self.energy_labels[ok], self.finder.labels_[ok]))

    def representatives(self, n: int = 3) -> dict[int, np.ndarray]:
        """Medoid and nearest frames of each basin (see :func:`representatives`)."""
        return representatives(self.finder.standardised(self.descriptors.values), self.finder.labels_, n)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        t = self.temperature
        lab = self.finder.labels_
        basins = []
        for b in range(self.finder.n_basins_):
            m = lab == b
            basins.append(
                {
                    "basin": b,
                    "morphology": self.morphology[b],
                    "frames": int(m.sum()),
                    "T_K_5_95": [float(np.percentile(t[m], 5)), float(np.percentile(t[m], 95))],
                    "cna": {k: float(self.descriptors.sel(feature=k).values[m].mean()) for k in _CNA_KEYS},
                }
            )
        return {
            "system": str(self.frames.attrs.get("cluster", "")),
            "n_frames": len(lab),
            "n_basins": int(self.finder.n_basins_),
            "noise_fraction": self.finder.noise_fraction_,
            "silhouette": self.finder.silhouette_,
            "eps": self.finder.eps_,
            "merges": [list(m) for m in self.finder.merges_],
            "absorbed": {str(k): v for k, v in self.finder.absorbed_.items()},
            "valley_ratios": {f"{a}-{b}": v for (a, b), v in self.finder.valley_ratios_.items()},
            "basins": basins,
            "switches_K": [[a, b, t] for a, b, t in self.switches],
            "melting_switch_K": self.melting_K,
            "solid_solid_K": self.solid_solid_K,
            "heat_capacity_peak_K": self.cv_peak_K,
            "lindemann_K": self.lindemann_K,
            "ari_energy_labels": self.ari,
            "timings_s": self.timings_s,
        }

    def to_text(self) -> str:
        """Short human-readable report."""
        d = self.to_dict()
        ari = d["ari_energy_labels"]
        ari_text = f"{ari:.3f}" if np.isfinite(ari) else "undefined (one basin)"
        lines = [
            f"{d['system']}: {d['n_frames']} frames, {d['n_basins']} basins, noise {d['noise_fraction']:.1%}, "
            f"silhouette {d['silhouette']:.2f}, ARI vs energy phases {ari_text}",
        ]
        for b in d["basins"]:
            lo, hi = b["T_K_5_95"]
            lines.append(f"  basin {b['basin']}: {b['morphology']:<12s} {b['frames']:5d} frames, T {lo:.0f}-{hi:.0f} K")
        for a, b, t in self.switches:
            lines.append(f"  switch {a} -> {b} ({self.morphology[a]} -> {self.morphology[b]}) at {t:.0f} K")
        if d["valley_ratios"]:
            pairs = ", ".join(f"{k} {v:.2f}" for k, v in d["valley_ratios"].items())
            lines.append(f"  density valley between basins (0 = empty gap, 1 = none): {pairs}")
        lines.append(
            f"  melting: basin switch {d['melting_switch_K']:.0f} K, "
            f"heat-capacity peak {d['heat_capacity_peak_K']:.0f} K, "
            f"Lindemann steepest rise {d['lindemann_K']:.0f} K"
        )
        return "\n".join(lines)

    def save(
        self, out: str | Path, *, n_representatives: int = 3, quench_calculator: Any | None = None, figures: bool = True
    ) -> Path:
        """Write ``report.txt``, ``report.json``, ``basins.nc``, representative XYZ files and figures.

        Parameters
        ----------
        out : str or Path
            Output directory (created).
        n_representatives : int
            Frames written per basin (medoid first).
        quench_calculator : ase Calculator, optional
            When given, each representative is also minimised to its inherent structure
            (``*_quenched.xyz``), labelled by its CNA signature.
        figures : bool
            Write the PNG figures.

        Returns
        -------
        Path
            The directory.
        """
        from ase import Atoms
        from ase.io import write

        from ..data.io import atomic_write_bytes, atomic_write_json, strict_json, write_dataset

        out = Path(out)
        (out / "morphologies").mkdir(parents=True, exist_ok=True)
        cutoff = nearest_neighbour_cutoff(self.frames.positions.values[0])
        cna = default_descriptors(cutoff).descriptors[1]
        summary = self.to_dict()
        symbols = list(self.frames.symbol.values)
        for b, idx in self.representatives(n_representatives).items():
            for rank, f in enumerate(idx):
                atoms = Atoms(symbols, positions=self.frames.positions.values[f])
                atoms.info.update(frame=int(f), basin=b, temperature_K=float(self.temperature[f]))
                name = out / "morphologies" / f"basin{b}_{'medoid' if rank == 0 else f'near{rank}'}"
                write(f"{name}.xyz", atoms, format="extxyz")
                if quench_calculator is not None:
                    q = quench(atoms, quench_calculator)
                    q.info["morphology"] = classify_cna(dict(zip(cna.names, cna(q.positions, q.numbers), strict=True)))
                    write(f"{name}_quenched.xyz", q, format="extxyz")
                    if rank == 0:
                        summary["basins"][b]["medoid_quenched_morphology"] = q.info["morphology"]
                        summary["basins"][b]["medoid_quenched_energy_eV"] = q.info["energy"]
        ds = xr.Dataset(
            {
                "basin": ("frame", self.finder.labels_),
                "basin_smoothed": ("frame", self.smoothed),
                "raw_cluster": ("frame", self.finder.raw_labels_),
                "fragment": ("frame", self.finder.fragment_labels_),
                "energy_phase": ("frame", self.energy_labels),
                "embedding": (("frame", "component"), self.finder.embedding_),
                "lindemann": ("frame", self.lindemann),
                "descriptors": self.descriptors,
                "target_temperature": self.frames.target_temperature,
                "potential_energy": self.frames.potential_energy,
            },
            attrs={"report": strict_json(summary, indent=None)},
        )
        write_dataset(ds, out / "basins.nc")
        atomic_write_json(out / "report.json", summary, indent=2)
        atomic_write_bytes(out / "report.txt", (self.to_text() + "\n").encode())
        if figures:
            from ..plot.basins import save_basin_figures

            save_basin_figures(self, out / "figures")
        return out


_CNA_KEYS = ("cna_421", "cna_422", "cna_555")


def _interior_argmax(grid: np.ndarray, values: np.ndarray, bandwidth_K: float) -> float:
    """Grid temperature of the maximum, ignoring two kernel widths at each end.

    A kernel slope at the end of the data sees one side only; its variance there is several times
    larger and its maximum is often a fluctuation (or an evaporating atom at the hottest frames).
    """
    inside = (grid >= grid.min() + 2 * bandwidth_K) & (grid <= grid.max() - 2 * bandwidth_K)
    if not inside.any() or not np.isfinite(values[inside]).any():
        return float("nan")
    g, v = grid[inside], values[inside]
    return float(g[np.nanargmax(v)])


def analyse_ramp(
    frames: xr.Dataset,
    *,
    descriptors: FrameDescriptor | None = None,
    finder: BasinFinder | None = None,
    smooth_window: int = 11,
    cv_bandwidth_K: float = 25.0,
    lindemann_window: int = 20,
    progress: bool = False,
) -> BasinAnalysis:
    """Find the basins of a heating ramp and read off its transition temperatures.

    Parameters
    ----------
    frames : xarray.Dataset
        A ramp (:func:`surrodyn.md.load_ramp` or :func:`read_frames`), frames in time order.
    descriptors : FrameDescriptor, optional
        Default: :func:`default_descriptors` with the first-shell cutoff of frame 0; must include
        :class:`CNAFractions` (for the morphology labels).
    finder : BasinFinder, optional
        Default ``BasinFinder()``.
    smooth_window : int
        Frames of the running mode of the basin sequence.
    cv_bandwidth_K : float
        Kernel width of the heat capacity.
    lindemann_window : int
        Frames per Lindemann window.
    progress : bool
        Progress bar over descriptor frames.

    Returns
    -------
    BasinAnalysis
    """
    pos = frames.positions.values
    temp = frames.target_temperature.values
    epot = frames.potential_energy.values
    if not np.all(np.isfinite(temp)):
        raise ConfigError("every frame needs a temperature (target_temperature) for a ramp analysis.")
    n_atoms = pos.shape[1]
    numbers = (
        np.array([_atomic_number(s) for s in frames.symbol.values]) if "symbol" in frames else np.zeros(n_atoms, int)
    )
    timings = {}
    t0 = time.process_time()
    desc = descriptors if descriptors is not None else default_descriptors(nearest_neighbour_cutoff(pos[0]))
    x = compute_descriptors(pos, numbers, desc, progress=progress)
    missing = [k for k in _CNA_KEYS if k not in x.feature.values]
    if missing:
        raise ConfigError(f"the descriptors lack {missing}: include CNAFractions to label the basins' morphology.")
    t1 = time.process_time()
    finder = BasinFinder() if finder is None else finder
    finder.fit(x.values)
    t2 = time.process_time()
    timings.update(descriptors=t1 - t0, embedding_clustering=t2 - t1)
    smoothed = smooth_labels(finder.labels_, smooth_window)
    morph = {}
    for b in range(finder.n_basins_):
        m = finder.labels_ == b
        morph[b] = classify_cna({k: float(x.sel(feature=k).values[m].mean()) for k in _CNA_KEYS})
    energy = epot + 1.5 * n_atoms * KB_EV * temp
    if np.all(np.isfinite(epot)):
        grid, cv = heat_capacity(temp, energy, bandwidth_K=cv_bandwidth_K)
        n_phases = max(finder.n_basins_, 1)
        # as many phases as basins, each at least 20 frames long unless the basins are shorter
        elab = energy_phase_labels(temp, epot, n_phases, min_frames=min(20, len(temp) // n_phases))[0]
    else:
        grid, cv, elab = np.array([np.nan]), np.array([np.nan]), np.zeros(len(temp), int)
    lind = lindemann_index(pos, lindemann_window)
    timings["transitions"] = time.process_time() - t2
    return BasinAnalysis(
        frames=frames,
        descriptors=x,
        finder=finder,
        smoothed=smoothed,
        switches=switch_temperatures(smoothed, temp),
        morphology=morph,
        cv_grid_K=grid,
        heat_capacity_eV_K=cv,
        lindemann=lind,
        energy_labels=elab,
        timings_s=timings,
        cv_bandwidth_K=cv_bandwidth_K,
    )


def _atomic_number(symbol: str) -> int:
    from ase.data import atomic_numbers

    return int(atomic_numbers.get(str(symbol), 0))


def summarize(results: list[BasinAnalysis]) -> dict[str, Any]:
    """Mean and spread of the transition temperatures over runs (seeds, ramp rates).

    Parameters
    ----------
    results : list of BasinAnalysis
        Runs of one system.

    Returns
    -------
    dict
        For melting (basin switch), heat-capacity peak, Lindemann and the first solid–solid switch:
        ``values``, ``mean``, ``std`` (ddof 1) in K; plus the basin counts and ARIs.
    """
    out: dict[str, Any] = {"n_runs": len(results)}
    for key, get in {
        "melting_switch_K": lambda r: r.melting_K,
        "heat_capacity_peak_K": lambda r: r.cv_peak_K,
        "lindemann_K": lambda r: r.lindemann_K,
        "solid_solid_K": lambda r: r.solid_solid_K[0] if r.solid_solid_K else float("nan"),
    }.items():
        v = np.array([get(r) for r in results], dtype=float)
        ok = v[np.isfinite(v)]
        out[key] = {
            "values": v.tolist(),
            "mean": float(ok.mean()) if ok.size else float("nan"),
            "std": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
        }
    out["n_basins"] = [r.finder.n_basins_ for r in results]
    out["ari"] = [r.ari for r in results]
    out["noise_fraction"] = [r.finder.noise_fraction_ for r in results]
    return out
