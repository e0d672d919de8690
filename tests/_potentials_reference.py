"""An independent, deliberately naive PyTorch implementation of G2/G4/G5/ANI for isolated structures.

Written straight from Behler's equations with dense (N, N, N) tensors, no neighbour list and no
hand-derived derivatives: autograd through it is the check on the numba kernel's values and pair
Jacobians, and on the chain rule of :func:`surrodyn.potentials.predict_batch`.
"""

from __future__ import annotations

import math

import torch

from surrodyn.potentials import SymmetryFunctions


def _fc(r: torch.Tensor, rc: float) -> torch.Tensor:
    return torch.where(r < rc, 0.5 * (torch.cos(math.pi * r / rc) + 1.0), torch.zeros_like(r))


def torch_fingerprints(pos: torch.Tensor, species: torch.Tensor, sf: SymmetryFunctions) -> torch.Tensor:
    """Fingerprints ``(N, n_features)`` of an isolated structure, differentiable in ``pos``."""
    n = pos.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    R = pos[None, :, :] - pos[:, None, :]  # R[i, j] = r_j - r_i
    r = torch.sqrt((R * R).sum(-1) + eye.to(pos.dtype))  # 1 on the diagonal keeps sqrt differentiable
    off = ~eye
    n_el = len(sf.elements)
    cols = []
    rad = sf.radial
    fc = _fc(r, rad.cutoff_A) * off
    for e in range(n_el):
        mask = (species[None, :] == e) & off
        for eta, rs in zip(rad.eta_per_A2, rad.rs_A, strict=True):
            cols.append((torch.exp(-eta * (r - rs) ** 2) * fc * mask).sum(1))
    ang = sf.angular
    if ang is not None:
        rc = ang.cutoff_A
        fa = _fc(r, rc) * off  # fa[i, j]
        rij, rik = r[:, :, None], r[:, None, :]
        cos = (R[:, :, None, :] * R[:, None, :, :]).sum(-1) / (rij * rik)
        rjk = r[None, :, :]
        distinct = off[:, :, None] & off[:, None, :] & off[None, :, :]
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)[None, :, :]
        f3 = fa[:, :, None] * fa[:, None, :]
        if ang.kind == "ANI":
            # arccos on purpose (the kernel never takes it); 0.95 keeps it differentiable
            theta = torch.acos(0.95 * cos.clamp(-1.0, 1.0))
        if ang.kind == "G4":
            f3 = f3 * _fc(rjk, rc)
        for a in range(n_el):
            for b in range(a, n_el):
                sj, sk = species[None, :, None], species[None, None, :]
                pair = ((sj == a) & (sk == b)) | ((sj == b) & (sk == a))
                mask = (distinct & upper & pair).to(pos.dtype)
                if ang.kind == "ANI":
                    for eta, zeta, ts, rs in zip(ang.eta_per_A2, ang.zeta, ang.theta_s, ang.rs_A, strict=True):
                        ang_part = 2.0 ** (1 - zeta) * (1 + torch.cos(theta - ts)) ** zeta
                        term = ang_part * torch.exp(-eta * ((rij + rik) / 2 - rs) ** 2) * f3
                        cols.append((term * mask).sum((1, 2)))
                    continue
                for eta, zeta, lam in zip(ang.eta_per_A2, ang.zeta, ang.lambda_, strict=True):
                    s2 = rij**2 + rik**2 + (rjk**2 if ang.kind == "G4" else 0.0)
                    term = 2.0 ** (1 - zeta) * (1 + lam * cos).clamp(min=0) ** zeta * torch.exp(-eta * s2) * f3
                    cols.append((term * mask).sum((1, 2)))
    return torch.stack(cols, dim=1)
