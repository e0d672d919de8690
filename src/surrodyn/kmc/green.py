"""Green's function of the lattice Laplacian between two grounded metal planes.

The lattice has ``nx × ny`` sites per layer (periodic) and ``nz`` layers; the electrodes are
the ghost planes ``z = -1`` and ``z = nz``. With a dimensionless Green's function ``g`` solving
the discrete Poisson equation ``sum_nb [g(r) - g(r+e)] = delta_{r,r'}``, a charge ``q`` at
``r'`` creates the potential ``q g(r, r') / (eps a)`` at ``r``.

The Dirichlet function is built by images: a periodic box of height ``P = 2(nz+1)`` holds each
charge and its negative mirror image through ``z = -1``,

    G_D(dx, dy, z, z') = Gp(dx, dy, z - z') - Gp(dx, dy, z + z' + 2),

with ``Gp`` the periodic lattice Green's function from one 3D FFT of the lattice Laplacian.
The image pair is neutral, so the k = 0 mode needs no background. The mean field of the kMC
therefore equals the same-grid discrete 1D Poisson equation exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GreenTable",
    "parallel_plate_green",
    "periodic_green",
]


def periodic_green(nx: int, ny: int, p: int) -> np.ndarray:
    """Periodic lattice Green's function on an ``nx × ny × p`` box.

    Parameters
    ----------
    nx, ny, p : int
        Box size in sites.

    Returns
    -------
    ndarray, shape (nx, ny, p)
        ``Gp`` with ``sum_nb [Gp(r) - Gp(r+e)] = delta_{r,0} - 1/(nx ny p)`` and zero mean.
    """
    kx = 2 * np.pi * np.fft.fftfreq(nx)
    ky = 2 * np.pi * np.fft.fftfreq(ny)
    kz = 2 * np.pi * np.fft.fftfreq(p)
    lam = (
        2 * (1 - np.cos(kx))[:, None, None] + 2 * (1 - np.cos(ky))[None, :, None] + 2 * (1 - np.cos(kz))[None, None, :]
    )
    lam[0, 0, 0] = 1.0
    gk = 1.0 / lam
    gk[0, 0, 0] = 0.0
    g = np.fft.ifftn(gk).real
    # exact symmetries of the lattice Green's function: remove round-off asymmetry
    g = 0.5 * (g + np.roll(g[::-1, :, :], 1, axis=0))
    g = 0.5 * (g + np.roll(g[:, ::-1, :], 1, axis=1))
    g = 0.5 * (g + np.roll(g[:, :, ::-1], 1, axis=2))
    return np.ascontiguousarray(g)


def parallel_plate_green(nz: int) -> np.ndarray:
    """Planar (lateral-sum) Green's function of the 1D discrete Poisson problem.

    Parameters
    ----------
    nz : int
        Number of layers between the ghost electrode planes ``-1`` and ``nz``.

    Returns
    -------
    ndarray, shape (nz, nz)
        ``(z_< + 1)(nz - z_>) / (nz + 1)``: the potential (in units of ``q/(eps a)`` per site
        of lateral area) at layer ``z`` of a unit sheet of charge per site at layer ``z'``.
        The planar average of :meth:`GreenTable.dirichlet` is this divided by ``nx·ny``.
    """
    z = np.arange(nz)
    lo = np.minimum.outer(z, z)
    hi = np.maximum.outer(z, z)
    return (lo + 1) * (nz - hi) / (nz + 1)


class GreenTable:
    """Tabulated Dirichlet-slab lattice Green's function.

    Parameters
    ----------
    nx, ny, nz : int
        Lattice size (sites); electrodes at ghost planes ``-1`` and ``nz``.

    Attributes
    ----------
    periodic : ndarray, shape (nx, ny, 2(nz+1))
        The periodic table ``Gp`` (float64).
    period : int
        ``P = 2(nz+1)``.
    """

    def __init__(self, nx: int, ny: int, nz: int) -> None:
        self.nx, self.ny, self.nz = int(nx), int(ny), int(nz)
        self.period = 2 * (self.nz + 1)
        self.periodic = periodic_green(self.nx, self.ny, self.period)

    @property
    def flat(self) -> np.ndarray:
        """The full periodic table flattened in C order (index ``(dx*ny + dy)*P + dz``)."""
        return self.periodic.reshape(-1)

    @property
    def folded(self) -> np.ndarray:
        """The periodic table folded by its symmetries, as the kernels index it.

        ``Gp`` is even in each offset and periodic, so ``0 <= dx <= nx/2``, ``0 <= dy <= ny/2``
        and ``0 <= dz <= nz+1`` hold all its values: shape ``(nx//2+1, ny//2+1, nz+2)``, about
        eight times smaller than the full table, which keeps it in cache for large lattices.
        """
        return np.ascontiguousarray(self.periodic[: self.nx // 2 + 1, : self.ny // 2 + 1, : self.nz + 2])

    def dirichlet(self, dx: np.ndarray, dy: np.ndarray, z: np.ndarray, zp: np.ndarray) -> np.ndarray:
        """Evaluate ``G_D`` for lateral offsets and layer indices (broadcasting).

        Parameters
        ----------
        dx, dy : array_like of int
            Lateral offsets (any integers; taken modulo the box).
        z, zp : array_like of int
            Layer indices in ``[-1, nz]`` (the electrode planes give 0).

        Returns
        -------
        ndarray
            Dimensionless Green's function values.
        """
        dx = np.mod(dx, self.nx)
        dy = np.mod(dy, self.ny)
        z = np.asarray(z)
        zp = np.asarray(zp)
        g = self.periodic
        return g[dx, dy, np.mod(z - zp, self.period)] - g[dx, dy, np.mod(z + zp + 2, self.period)]

    def full(self) -> np.ndarray:
        """Dense ``G_D[x, y, z, x', y', z']`` for small lattices (tests and references).

        Returns
        -------
        ndarray, shape (nx*ny*nz, nx*ny*nz)
            Site-by-site matrix in the site order ``(x*ny + y)*nz + z``.
        """
        x, y, z = np.meshgrid(np.arange(self.nx), np.arange(self.ny), np.arange(self.nz), indexing="ij")
        x, y, z = x.ravel(), y.ravel(), z.ravel()
        return self.dirichlet(x[:, None] - x[None, :], y[:, None] - y[None, :], z[:, None], z[None, :])
