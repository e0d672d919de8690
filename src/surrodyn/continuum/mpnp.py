"""Modified Poisson–Nernst–Planck twin of the lattice kMC: dynamics and canonical steady state.

One mobile cation species of site filling ``n = c / c_max`` (``c_max = 1/a³``) moves on a 1D
grid between two blocking metal electrodes, on a uniform compensating background ``theta0``.

Grid
    ``M = nz·refine`` cells of width ``h = a / refine`` fill the region the ions can reach.
    With ``contact="lattice"`` (default) that region is ``[a/2, L - a/2]`` with ``L = (nz+1) a``:
    an ion's closest approach to an electrode is one lattice spacing, as in the kMC, and with
    ``refine=1`` every cell is one kMC layer (no discretisation mismatch: the mean field of the
    kMC's planar averages obeys exactly these equations). ``contact="continuum"`` lets the ions
    fill ``[0, L]`` (``M = (nz+1)·refine`` cells), the textbook continuum boundary.

Flux
    ``J_{i+1/2} = Gamma_h [n_i (1-n_{i+1}) e^{-dU/2} - n_{i+1} (1-n_i) e^{+dU/2}]`` with
    ``dU = q (phi_{i+1} - phi_i) / kT`` and ``Gamma_h = D / h²``, ``D = Gamma a²``,
    ``Gamma = nu0 exp(-Ea/kT)``. For ``refine=1`` this is the kMC's mean hop flux between layers;
    as ``h -> 0`` it is a consistent (Scharfetter–Gummel-like) discretisation of
    ``J = -D [dc/dz + (q/kT) c (1 - c/c_max) dphi/dz]``. Its zeros are Fermi–Dirac profiles,
    so the steady state of the dynamics is exactly the canonical equilibrium of the grid.

Poisson
    Finite volumes: ``eps (phi_{i+1} - 2 phi_i + phi_{i-1}) / h = -q (n_i - theta0) h / a³``, with
    the electrodes (``phi = 0`` at ``z = 0``, ``phi = V`` at ``z = L``) at distance
    ``d = gap + h/2`` from the outer cell centres. For ``refine=1`` and the lattice contact this
    is the kMC's planar Green's function (:func:`surrodyn.kmc.green.parallel_plate_green`).

Time integration is implicit (BDF from SciPy with the exact dense Jacobian) and restarts at
every breakpoint of the voltage and temperature schedules. The total ion number is a linear
invariant of the scheme and is conserved to round-off.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit

from ..errors import ConfigError, SurrodynError, param_error
from ..units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_M, thermal_energy_eV

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from ..kmc.config import KMCConfig

__all__ = ["CONTACTS", "LatticeGrid", "SteadyState", "mpnp_rhs", "solve_mpnp", "steady_state"]

CONTACTS = ("lattice", "continuum")


@dataclass(frozen=True)
class LatticeGrid:
    """The 1D finite-volume grid of the continuum twin and its electrostatics.

    Use :meth:`from_config`; the arrays are read-only.

    Attributes
    ----------
    z_m : ndarray, shape (M,)
        Cell centres (m), measured from the electrode at ``z = 0``.
    h_m : float
        Cell width (m).
    gap_m : float
        Electrode separation ``L`` (m).
    wall_m : float
        Distance from each electrode to the edge of the ion-accessible region (m).
    filling : float
        Background (and mean) site filling ``theta0``.
    green_V : ndarray, shape (M, M)
        Potential (V) at cell i per unit occupancy excess in cell j, both electrodes grounded.
    lever : ndarray, shape (M,)
        ``z_i / L``: the fraction of a charge's image that sits on the electrode at ``z = L``.
    spacing_m : float
        Lattice spacing ``a`` (sets ``c_max = 1/a³``).
    permittivity : float
        Relative permittivity.
    """

    z_m: np.ndarray
    h_m: float
    gap_m: float
    wall_m: float
    filling: float
    green_V: np.ndarray
    lever: np.ndarray
    spacing_m: float
    permittivity: float

    @classmethod
    def from_config(cls, config: KMCConfig, refine: int = 1, contact: str = "lattice") -> LatticeGrid:
        """Build the grid of a kMC configuration.

        Parameters
        ----------
        config : KMCConfig
            The system (lattice, spacing, permittivity, filling).
        refine : int
            Cells per lattice spacing (1: one cell per kMC layer).
        contact : {"lattice", "continuum"}
            Closest approach of the ions to the electrodes: one lattice spacing (as the kMC) or zero.
        """
        if isinstance(refine, bool) or not isinstance(refine, int | np.integer) or refine < 1:
            raise param_error("refine", refine, "an integer >= 1 (cells per lattice spacing)")
        if contact not in CONTACTS:
            raise param_error("contact", contact, f"one of {CONTACTS}")
        a = config.spacing_m
        h = a / refine
        gap = config.gap_m
        if contact == "lattice":
            m, wall = config.nz * refine, a / 2
        else:
            m, wall = (config.nz + 1) * refine, 0.0
        if m > 4000:
            raise param_error("refine", refine, f"a grid of at most 4000 cells (this one has {m})")
        z = wall + (np.arange(m) + 0.5) * h
        # stiffness matrix of -eps d²/dz² per area, Dirichlet electrodes at distance wall + h/2
        d_end = wall + h / 2
        k = np.zeros((m, m))
        idx = np.arange(m)
        k[idx, idx] = 2.0 / h
        k[idx[:-1], idx[:-1] + 1] = -1.0 / h
        k[idx[1:], idx[1:] - 1] = -1.0 / h
        k[0, 0] = 1.0 / h + 1.0 / d_end
        k[-1, -1] = 1.0 / h + 1.0 / d_end
        eps = VACUUM_PERMITTIVITY_F_M * config.permittivity
        # charge per area in cell j per unit occupancy: q h / a³
        rhs_scale = ELEMENTARY_CHARGE_C * h / a**3 / eps
        green = np.linalg.inv(k) * rhs_scale
        green = 0.5 * (green + green.T)
        for arr in (z, green):
            arr.setflags(write=False)
        lever = z / gap
        lever.setflags(write=False)
        return cls(z, h, gap, wall, config.filling, green, lever, a, config.permittivity)

    @property
    def n_cells(self) -> int:
        """Number of cells ``M``."""
        return self.z_m.size

    @property
    def volume_fraction(self) -> float:
        """Ions per area per unit occupancy in one cell, times ``a³`` (= ``h``), over ``a``."""
        return self.h_m / self.spacing_m

    def potential_V(self, occupancy: np.ndarray, voltage_V: np.ndarray | float) -> np.ndarray:
        """Potential at the cell centres (V) for occupancies ``(..., M)`` and voltages ``(...)``."""
        n = np.asarray(occupancy, dtype=float)
        v = np.asarray(voltage_V, dtype=float)[..., None]
        return v * self.lever + (n - self.filling) @ self.green_V.T

    def electrode_charge_C_m2(self, occupancy: np.ndarray, voltage_V: np.ndarray | float) -> np.ndarray:
        """Charge per area on the electrode at ``z = L`` (C/m²), same convention as the kMC.

        ``sigma = eps V / L - (q h / a³) sum_i (n_i - theta0) z_i / L``.
        """
        n = np.asarray(occupancy, dtype=float)
        eps = VACUUM_PERMITTIVITY_F_M * self.permittivity
        induced = -ELEMENTARY_CHARGE_C * self.h_m / self.spacing_m**3 * ((n - self.filling) @ self.lever)
        return eps * np.asarray(voltage_V, dtype=float) / self.gap_m + induced

    def ions_per_area(self, occupancy: np.ndarray) -> np.ndarray:
        """Return the number of ions per m² held by occupancies ``(..., M)``."""
        return np.asarray(occupancy, dtype=float).sum(axis=-1) * self.h_m / self.spacing_m**3


def mpnp_rhs(
    occupancy: np.ndarray,
    grid: LatticeGrid,
    voltage_V: float,
    temperature_K: float,
    cell_rate_Hz: float,
    jacobian: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Time derivative of the cell occupancies (and optionally its exact Jacobian).

    Parameters
    ----------
    occupancy : ndarray, shape (M,)
        Site filling of each cell.
    grid : LatticeGrid
        Grid and electrostatics.
    voltage_V, temperature_K : float
        Applied voltage and temperature.
    cell_rate_Hz : float
        ``Gamma_h = D / h²``.
    jacobian : bool
        Also return ``d(dn/dt)/dn`` (dense, shape (M, M)).

    Returns
    -------
    ndarray or (ndarray, ndarray)
    """
    n = occupancy
    beta = 1.0 / thermal_energy_eV(temperature_K)
    phi = grid.potential_V(n, voltage_V)
    du = beta * np.diff(phi)
    ep, em = np.exp(-0.5 * du), np.exp(0.5 * du)
    left, right = n[:-1], n[1:]
    fwd = left * (1.0 - right) * ep
    bwd = right * (1.0 - left) * em
    flux = cell_rate_Hz * (fwd - bwd)
    dndt = np.zeros_like(n)
    dndt[:-1] -= flux
    dndt[1:] += flux
    if not jacobian:
        return dndt
    m = n.size
    # dJ/dn_i (left), dJ/dn_{i+1} (right), dJ/d(du)
    dj_left = cell_rate_Hz * ((1.0 - right) * ep + right * em)
    dj_right = cell_rate_Hz * (-left * ep - (1.0 - left) * em)
    dj_du = -0.5 * cell_rate_Hz * (fwd + bwd)
    # d(du_i)/dn_j = beta (G[i+1, j] - G[i, j])
    ddu = beta * np.diff(grid.green_V, axis=0)
    djac = dj_du[:, None] * ddu  # (M-1, M)
    idx = np.arange(m - 1)
    djac[idx, idx] += dj_left
    djac[idx, idx + 1] += dj_right
    jac = np.zeros((m, m))
    jac[:-1] -= djac
    jac[1:] += djac
    return dndt, jac


def _segments(config: KMCConfig, t_end: float) -> list[float]:
    cuts = {0.0, float(t_end)}
    for sched in (config.voltage_V, config.temperature_K):
        cuts.update(t for t in sched.times_s if 0.0 < t < t_end)
    return sorted(cuts)


def solve_mpnp(
    config: KMCConfig,
    refine: int = 1,
    contact: Literal["lattice", "continuum"] = "lattice",
    initial_occupancy: np.ndarray | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    max_step_s: float | None = None,
) -> xr.Dataset:
    """Integrate the modified PNP twin of a kMC configuration over its output times.

    Parameters
    ----------
    config : KMCConfig
        The system, its voltage and temperature schedules and its output times (the same as
        for the kMC). Site disorder and the self-image interaction are not part of the mean
        field and are ignored (a warning says so for disorder).
    refine : int
        Cells per lattice spacing (1: the same grid as the kMC layers).
    contact : {"lattice", "continuum"}
        See :class:`LatticeGrid`.
    initial_occupancy : ndarray, optional
        Occupancy of each cell at ``t = 0`` (default: uniform ``theta0``, the kMC's random start).
        Its mean is the conserved filling.
    rtol, atol : float
        Tolerances of the BDF integrator on the occupancies.
    max_step_s : float, optional
        Largest internal time step (default: unlimited).

    Returns
    -------
    xarray.Dataset
        The field schema of :func:`surrodyn.data.kmc_dataset` without the ``replica`` dim:
        ``occupancy``, ``density`` (``c/c0``), ``potential``, ``electrode_charge``, ``current``
        (mean since the previous record, as the kMC reports it), ``voltage``, ``temperature`` on
        dims ``time`` and ``z``; attrs carry the configuration and the solver settings.
    """
    grid = LatticeGrid.from_config(config, refine=refine, contact=contact)
    if config.disorder_eV > 0:
        warnings.warn(
            "the continuum twin's dynamics ignore site-energy disorder (disorder_eV="
            f"{config.disorder_eV}); use steady_state() for the disordered equilibrium.",
            UserWarning,
            stacklevel=2,
        )
    if not config.coulomb:
        raise ConfigError("coulomb=False is not supported by the continuum twin: it is a Poisson–Nernst–Planck model.")
    m = grid.n_cells
    if initial_occupancy is None:
        y0 = np.full(m, grid.filling)
    else:
        y0 = np.asarray(initial_occupancy, dtype=float).copy()
        if y0.shape != (m,):
            raise param_error("initial_occupancy", f"shape {y0.shape}", f"an array of shape ({m},)")
        if np.any(~np.isfinite(y0)) or np.any(y0 < 0) or np.any(y0 >= 1):
            raise param_error("initial_occupancy", "out-of-range values", "finite occupancies in [0, 1)")
    times = np.asarray(config.output_times_s, dtype=float)
    t_end = float(times[-1])
    occ = np.empty((times.size, m))
    # the segments cover (0, t_end]; a record at t = 0 is the initial state
    occ[times == 0.0] = y0
    a2_over_h2 = (config.spacing_m / grid.h_m) ** 2
    y = y0
    nfev = njev = 0
    bounds = _segments(config, t_end)
    for t0, t1 in itertools.pairwise(bounds):
        volt = float(config.voltage_V(t0))
        temp = float(config.temperature_K(t0))
        rate = config.hop_rate_Hz(temp) * a2_over_h2

        def fun(_t: float, yy: np.ndarray, volt: float = volt, temp: float = temp, rate: float = rate) -> np.ndarray:
            return mpnp_rhs(yy, grid, volt, temp, rate)  # type: ignore[return-value]

        def jac(_t: float, yy: np.ndarray, volt: float = volt, temp: float = temp, rate: float = rate) -> np.ndarray:
            return mpnp_rhs(yy, grid, volt, temp, rate, jacobian=True)[1]

        sel = (times > t0) & (times <= t1)
        t_eval = np.union1d(times[sel], [t1])
        kwargs: dict[str, Any] = {}
        if max_step_s is not None:
            kwargs["max_step"] = float(max_step_s)
        sol = solve_ivp(fun, (t0, t1), y, method="BDF", t_eval=t_eval, jac=jac, rtol=rtol, atol=atol, **kwargs)
        if not sol.success:
            raise SurrodynError(f"continuum integration failed on [{t0:.3g}, {t1:.3g}] s: {sol.message}")
        nfev += sol.nfev
        njev += sol.njev
        if sel.any():
            occ[sel] = sol.y[:, : int(sel.sum())].T
        y = sol.y[:, -1]
    return _dataset(config, grid, occ, times, refine, contact, dict(nfev=nfev, njev=njev, rtol=rtol, atol=atol))


def _dataset(
    config: KMCConfig,
    grid: LatticeGrid,
    occ: np.ndarray,
    times: np.ndarray,
    refine: int,
    contact: str,
    stats: dict[str, Any],
) -> xr.Dataset:
    import xarray as xr

    from ..data.schema import config_attrs

    volts = np.asarray(config.voltage_V(times), dtype=float).reshape(times.shape)
    temps = np.asarray(config.temperature_K(times), dtype=float).reshape(times.shape)
    sigma = grid.electrode_charge_C_m2(occ, volts)
    eps = VACUUM_PERMITTIVITY_F_M * config.permittivity
    induced = sigma - eps * volts / grid.gap_m
    # mean ion current since the previous record (Ramo–Shockley), induced charge 0 at the uniform start
    prev = np.concatenate([[0.0], induced[:-1]])
    dt = np.diff(times, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        current = np.where(dt > 0, -(induced - prev) / np.where(dt > 0, dt, 1.0), np.nan)
    dims = ("time", "z")
    ds = xr.Dataset(
        {
            "occupancy": (dims, occ, {"units": "1", "long_name": "ions per site in the cell"}),
            "density": (dims, occ / grid.filling, {"units": "1", "long_name": "c / c0 (normalised by bulk)"}),
            "potential": (dims, grid.potential_V(occ, volts), {"units": "V", "long_name": "mean-field potential"}),
            "electrode_charge": (
                ("time",),
                sigma,
                {"units": "C m-2", "long_name": "surface charge on the electrode at z = L (anode for V > 0)"},
            ),
            "current": (
                ("time",),
                current,
                {"units": "A m-2", "long_name": "mean current density since the previous record (Ramo-Shockley)"},
            ),
            "voltage": (("time",), volts, {"units": "V", "long_name": "applied voltage"}),
            "temperature": (("time",), temps, {"units": "K", "long_name": "temperature"}),
        },
        coords={
            "time": ("time", times, {"units": "s"}),
            "z": ("z", np.asarray(grid.z_m), {"units": "m", "long_name": "distance from the electrode at z = 0"}),
        },
        attrs=config_attrs(config),
    )
    ds.attrs.update(
        title="surrodyn continuum twin (lattice modified Poisson-Nernst-Planck)",
        model="lattice-mpnp",
        refine=int(refine),
        contact=contact,
        density_normalisation="density = occupancy / filling (c / c0)",
        solver="scipy BDF, exact dense Jacobian",
        solver_rtol=float(stats["rtol"]),
        solver_atol=float(stats["atol"]),
        solver_nfev=int(stats["nfev"]),
        ignored="disorder_eV, self_image, rate_rule (mean field of the symmetric rule)",
    )
    return ds


# ---------------------------------------------------------------------------- steady state
@dataclass(frozen=True)
class SteadyState:
    """Canonical mean-field equilibrium of the continuum twin.

    Attributes
    ----------
    z_m : ndarray
        Cell centres (m).
    occupancy : ndarray
        Fermi–Dirac site filling of each cell.
    potential_V : ndarray
        Mean-field potential (V).
    chemical_potential_eV : float
        The chemical potential fixed by the total ion number (eV, relative to the grounded
        electrode, without the site energies).
    electrode_charge_C_m2 : float
        Charge per area on the electrode at ``z = L``.
    filling : float
        ``theta0``.
    iterations : int
        Newton iterations used.
    residual_V : float
        Largest Poisson residual at convergence, expressed as a potential (V).
    """

    z_m: np.ndarray
    occupancy: np.ndarray
    potential_V: np.ndarray
    chemical_potential_eV: float
    electrode_charge_C_m2: float
    filling: float
    iterations: int
    residual_V: float

    @property
    def density(self) -> np.ndarray:
        """``c / c0`` of each cell."""
        return self.occupancy / self.filling


def _fd(mu: float, x: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disorder-averaged Fermi–Dirac filling and its derivative ``n(1-n)`` at energies ``x`` (kT)."""
    arg = mu - x[:, None] - nodes[None, :]
    s = expit(arg)  # logistic, accurate down to the smallest doubles
    return s @ weights, (s * (1.0 - s)) @ weights


def _softplus_sum(mu: float, x: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> float:
    return float((np.logaddexp(0.0, mu - x[:, None] - nodes[None, :]) @ weights).sum())


def _solve_mu(x: np.ndarray, target: float, nodes: np.ndarray, weights: np.ndarray) -> float:
    """Chemical potential (kT) with ``sum_i n_i(mu) = target``; monotone, bracketed Newton."""
    m = x.size
    mean = target / m
    logit = math.log(mean / (1.0 - mean))
    lo = float(x.min() + nodes.min()) + logit
    hi = float(x.max() + nodes.max()) + logit
    mu = 0.5 * (lo + hi)
    for _ in range(200):
        n, w = _fd(mu, x, nodes, weights)
        g = float(n.sum()) - target
        if g > 0:
            hi = mu
        else:
            lo = mu
        dg = float(w.sum())
        step = g / dg if dg > 0 else math.inf
        nxt = mu - step
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - mu) <= 1e-15 * max(1.0, abs(mu)) or hi - lo <= 1e-15 * max(1.0, abs(mu)):
            return nxt
        mu = nxt
    return mu


def steady_state(
    config: KMCConfig,
    voltage_V: float | None = None,
    temperature_K: float | None = None,
    refine: int = 1,
    contact: Literal["lattice", "continuum"] = "lattice",
    include_disorder: bool = True,
    tol_V: float = 1e-12,
    max_iter: int = 200,
) -> SteadyState:
    """Solve the canonical finite-cell Poisson–Fermi–Dirac equilibrium directly (no time stepping).

    ``n_i = < 1 / (1 + exp(q phi_i / kT + E / kT - mu)) >_E`` with ``phi`` the self-consistent
    potential of the grid's Poisson problem and ``mu`` fixed by the total ion number
    ``sum_i n_i = M theta0``. Solved by Newton's method on ``phi``: the Jacobian
    ``A + (q/kT) (diag(w) - w wᵀ / sum w)``, ``w = n (1 - n)``, is symmetric positive definite
    (the problem is the minimum of a convex functional), and a backtracking line search on that
    functional makes the iteration converge from the linear potential at any voltage.

    Parameters
    ----------
    config : KMCConfig
        The system.
    voltage_V, temperature_K : float, optional
        State to solve for (default: the schedules' values at the last output time).
    refine, contact
        Grid, as for :func:`solve_mpnp`.
    include_disorder : bool
        Average the Fermi–Dirac occupancy over the Gaussian site-energy distribution
        (``disorder_eV``; 96-point Gauss–Hermite, relative error < 1e-10 for disorder up to
        2.3 kT). The dynamics of :func:`solve_mpnp` do not model disorder, so compare those with
        ``include_disorder=False``.
    tol_V : float
        Convergence threshold on the Newton step (V).
    max_iter : int
        Iteration limit.

    Returns
    -------
    SteadyState
    """
    grid = LatticeGrid.from_config(config, refine=refine, contact=contact)
    t_last = config.output_times_s[-1]
    volt = float(config.voltage_V(t_last)) if voltage_V is None else float(voltage_V)
    temp = float(config.temperature_K(t_last)) if temperature_K is None else float(temperature_K)
    if not (math.isfinite(volt)):
        raise param_error("voltage_V", voltage_V, "a finite voltage")
    if not (math.isfinite(temp) and temp > 0):
        raise param_error("temperature_K", temperature_K, "a positive temperature in K")
    kt = thermal_energy_eV(temp)
    beta = 1.0 / kt
    sigma_hat = config.disorder_eV / kt if include_disorder else 0.0
    if sigma_hat > 0:
        xg, wg = np.polynomial.hermite_e.hermegauss(96)
        nodes, weights = sigma_hat * xg, wg / wg.sum()
    else:
        nodes, weights = np.zeros(1), np.ones(1)
    m = grid.n_cells
    target = m * grid.filling
    # A = G^{-1}: phi_ion = G (n - theta0)  <=>  A phi_ion = n - theta0
    a_mat = np.linalg.inv(grid.green_V)
    a_mat = 0.5 * (a_mat + a_mat.T)
    applied = volt * np.asarray(grid.lever)

    def objective(phi: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        x = beta * phi
        mu = _solve_mu(x, target, nodes, weights)
        n, w = _fd(mu, x, nodes, weights)
        ion = phi - applied
        # convex dual functional; its gradient is the Poisson residual A(phi - phi_a) - (n - theta0)
        val = (
            0.5 * ion @ a_mat @ ion
            + grid.filling * phi.sum()
            + (_softplus_sum(mu, x, nodes, weights) - mu * target) / beta
        )
        return val, mu, n, w

    phi = applied.copy()
    val, mu, n, w = objective(phi)
    it = 0
    step_norm = math.inf
    for it in range(1, max_iter + 1):  # noqa: B007
        grad = a_mat @ (phi - applied) - (n - grid.filling)
        sw = float(w.sum())
        hess = a_mat + beta * (np.diag(w) - np.outer(w, w) / sw)
        try:
            step = -cho_solve(cho_factor(hess), grad)
        except np.linalg.LinAlgError:  # pragma: no cover - SPD by construction
            step = -np.linalg.solve(hess, grad)
        step_norm = float(np.max(np.abs(step)))
        slope = float(grad @ step)
        t = 1.0
        # cap a step at 10 kT per cell before the line search
        if step_norm > 10 * kt:
            t = 10 * kt / step_norm
        while True:
            cand = phi + t * step
            cval, cmu, cn, cw = objective(cand)
            if cval <= val + 1e-4 * t * slope + 1e-13 * abs(val) or t < 1e-10:
                break
            t *= 0.5
        phi, val, mu, n, w = cand, cval, cmu, cn, cw
        if t * step_norm <= tol_V and t == 1.0:
            break
    else:
        raise SurrodynError(
            f"steady_state did not converge in {max_iter} Newton iterations (last step {step_norm:.3g} V)."
        )
    residual = a_mat @ (phi - applied) - (n - grid.filling)
    # the residual in units of occupancy; as a potential: G @ residual
    res_v = float(np.max(np.abs(grid.green_V @ residual)))
    return SteadyState(
        z_m=np.asarray(grid.z_m),
        occupancy=n,
        potential_V=phi,
        chemical_potential_eV=float(mu * kt),
        electrode_charge_C_m2=float(grid.electrode_charge_C_m2(n, volt)),
        filling=grid.filling,
        iterations=it,
        residual_V=res_v,
    )
