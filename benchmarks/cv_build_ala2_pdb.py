"""Build the alanine dipeptide PDB shipped as ``surrodyn/md/data/alanine_dipeptide.pdb``.

    python benchmarks/cv_build_ala2_pdb.py            # rewrites the shipped file
    python benchmarks/cv_build_ala2_pdb.py --out x.pdb

ACE-ALA-NME (22 atoms). The ten heavy atoms are placed from ideal internal coordinates (bond
lengths and angles of Engh & Huber 1991, planar trans peptide bonds, L-alanine) with the backbone
at phi = -80°, psi = +150° (the C7eq/β region, phi < 0); OpenMM's ``Modeller.addHydrogens``
adds the twelve hydrogens; the structure is then minimised with amber14-all (no cutoff, HBonds
constraints, Reference platform, so the result is deterministic; it ends in C7eq, φ ≈ -75°,
ψ ≈ +54°) and written with
``PDBFile.writeFile`` under OpenMM's standard residue and atom names. The script checks that
the result is L-alanine, still has phi < 0, and that the amber14 and amber99sb + OBC templates
both match.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as u

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "surrodyn" / "md" / "data" / "alanine_dipeptide.pdb"

# ideal geometry, Å and degrees (Engh & Huber 1991; methyl carbons of the caps like CA)
B_N_CA, B_CA_C, B_C_N, B_C_O, B_CA_CB, B_CH3_C = 1.458, 1.525, 1.329, 1.231, 1.521, 1.520
A_N_CA_C, A_CA_C_N, A_C_N_CA, A_CA_C_O, A_N_CA_CB = 111.2, 116.2, 121.7, 120.1, 110.5


def place(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float) -> np.ndarray:
    """Position of d with |cd| = bond, angle b-c-d = angle, dihedral a-b-c-d = torsion (NeRF)."""
    angle, torsion = np.radians(angle), np.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d2 = bond * np.array([-np.cos(angle), np.sin(angle) * np.cos(torsion), np.sin(angle) * np.sin(torsion)])
    return c + d2[0] * bc + d2[1] * m + d2[2] * n


def dihedral(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> float:
    """IUPAC dihedral angle in degrees."""
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - b0 @ b1 * b1, b2 - b2 @ b1 * b1
    return float(np.degrees(np.arctan2(np.cross(b1, v) @ w, v @ w)))


def heavy_atoms(phi: float, psi: float) -> list[tuple[str, str, np.ndarray]]:
    """(residue, atom name, position in Å) of the ten heavy atoms."""
    ch3 = np.zeros(3)
    c0 = np.array([B_CH3_C, 0.0, 0.0])
    a = np.radians(A_CA_C_N)
    n1 = c0 + B_C_N * np.array([-np.cos(a), np.sin(a), 0.0])
    o0 = place(n1, ch3, c0, B_C_O, A_CA_C_O, 180.0)  # in the peptide plane, opposite N
    ca = place(ch3, c0, n1, B_N_CA, A_C_N_CA, 180.0)  # omega = 180
    c1 = place(c0, n1, ca, B_CA_C, A_N_CA_C, phi)
    cb = place(c0, n1, ca, B_CA_CB, A_N_CA_CB, phi - 120.0)  # L-alanine: C(-1)-N-CA-CB = phi - 120°
    n2 = place(n1, ca, c1, B_C_N, A_CA_C_N, psi)
    o1 = place(n2, ca, c1, B_C_O, A_CA_C_O, 180.0)
    ch3b = place(ca, c1, n2, B_N_CA, A_C_N_CA, 180.0)  # omega = 180
    return [
        ("ACE", "CH3", ch3), ("ACE", "C", c0), ("ACE", "O", o0),
        ("ALA", "N", n1), ("ALA", "CA", ca), ("ALA", "CB", cb), ("ALA", "C", c1), ("ALA", "O", o1),
        ("NME", "N", n2), ("NME", "C", ch3b),
    ]  # fmt: skip


def build(phi: float, psi: float) -> tuple[app.Topology, np.ndarray]:
    """Topology and minimised positions (nm) of ACE-ALA-NME."""
    top = app.Topology()
    chain = top.addChain("A")
    residues: dict[str, app.Residue] = {}
    pos = []
    for resname, name, xyz in heavy_atoms(phi, psi):
        if resname not in residues:
            residues[resname] = top.addResidue(resname, chain, str(len(residues) + 1))
        element = app.Element.getBySymbol(name[0])
        top.addAtom(name, element, residues[resname])
        pos.append(xyz / 10.0)
    top.createStandardBonds()
    ff = app.ForceField("amber14-all.xml")
    modeller = app.Modeller(top, np.array(pos) * u.nanometer)
    random.seed(0)  # addHydrogens starts some hydrogens from Python's global random module
    modeller.addHydrogens(ff, platform=openmm.Platform.getPlatformByName("Reference"))
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(modeller.positions)
    context.applyConstraints(1e-8)
    openmm.LocalEnergyMinimizer.minimize(context, 0.1, 0)
    state = context.getState(positions=True, energy=True)
    print(f"minimised potential energy: {state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole):.3f} kJ/mol")
    return modeller.topology, state.getPositions(asNumpy=True).value_in_unit(u.nanometer)


def check(path: Path) -> None:
    """Backbone torsions, chirality and both force fields' templates on the written file."""
    pdb = app.PDBFile(str(path))
    idx = {(a.residue.name, a.name): a.index for a in pdb.topology.atoms()}
    x = pdb.getPositions(asNumpy=True).value_in_unit(u.angstrom)
    phi = dihedral(*(x[idx[k]] for k in [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C")]))
    psi = dihedral(*(x[idx[k]] for k in [("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]))
    # L-alanine is (S): seen with HA pointing away, N -> C -> CB runs counterclockwise, i.e. the triple
    # product (N - CA) . ((C - CA) x (CB - CA)) is positive (as for every residue of OpenMM's villin test.pdb)
    ca = x[idx["ALA", "CA"]]
    chirality = (x[idx["ALA", "N"]] - ca) @ np.cross(x[idx["ALA", "C"]] - ca, x[idx["ALA", "CB"]] - ca)
    print(f"phi = {phi:.1f}°, psi = {psi:.1f}°, atoms = {pdb.topology.getNumAtoms()}, CA chirality {chirality:+.3f} Å³")
    if pdb.topology.getNumAtoms() != 22 or not phi < 0:
        raise SystemExit("the structure is not a 22-atom dipeptide in the phi < 0 basin")
    if not chirality > 0:
        raise SystemExit("CA has the D configuration")
    for files in (["amber14-all.xml"], ["amber99sb.xml", "amber99_obc.xml"]):
        app.ForceField(*files).createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
        print(f"templates of {' + '.join(files)} match")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--phi", type=float, default=-80.0, help="initial phi before minimisation (degrees)")
    ap.add_argument("--psi", type=float, default=150.0, help="initial psi before minimisation (degrees)")
    args = ap.parse_args()
    top, pos = build(args.phi, args.psi)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("REMARK   1 ACE-ALA-NME BUILT BY BENCHMARKS/CV_BUILD_ALA2_PDB.PY (SURRODYN), AMBER14 MINIMUM\n")
        app.PDBFile.writeFile(top, pos * u.nanometer, fh, keepIds=True)
    text = args.out.read_text().splitlines(keepends=True)
    args.out.write_text("".join(line for line in text if not line.startswith("REMARK   1 CREATED WITH OPENMM")))
    print(f"wrote {args.out}")
    check(args.out)


if __name__ == "__main__":
    main()
