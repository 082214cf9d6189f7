"""Defect synthesis on any triangle mesh. Each defect is seeded, changes geometry only inside its
mask, and returns the exact per-vertex and per-face mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from .mesh import DefectMesh

SUPPORTED = ("bulge", "concavity")


@dataclass(frozen=True)
class DefectParams:
    """Resolved parameters of one defect (chosen at plan time, stored in the job)."""
    kind: str
    center: int          # index of the centre vertex
    radius: float        # world units
    depth: float         # world units; displacement along the vertex normal


def choose_defect(mesh: trimesh.Trimesh, kind: str, rng: np.random.Generator,
                  area_range: tuple[float, float], depth_range: tuple[float, float]) -> DefectParams:
    """Pick a centre on the outer side surface (normals mostly horizontal, away from the rim and
    the base, so that an orbiting camera sees it) and a size as a fraction of the surface area."""
    if kind not in SUPPORTED:
        raise ValueError(f"defect type {kind!r} is not implemented yet (have: {', '.join(SUPPORTED)})")
    n = mesh.vertex_normals
    z = mesh.vertices[:, 2]
    zlo, zhi = z.min(), z.max()
    h = zhi - zlo
    v = mesh.vertices
    outward = np.einsum("ij,ij->i", n[:, :2], v[:, :2]) > 0.5 * np.linalg.norm(v[:, :2], axis=1)
    ok = outward & (np.abs(n[:, 2]) < 0.6) & (z > zlo + 0.15 * h) & (z < zhi - 0.15 * h)
    candidates = np.flatnonzero(ok)
    if candidates.size == 0:
        candidates = np.arange(len(mesh.vertices))
    center = int(candidates[rng.integers(len(candidates))])
    area = float(rng.uniform(*area_range)) * float(mesh.area)
    radius = float(np.sqrt(area / np.pi))
    depth = float(rng.uniform(*depth_range)) * h
    depth = min(depth, 0.8 * radius)  # keep the dent smooth and the surface non-self-intersecting
    return DefectParams(kind=kind, center=center, radius=radius, depth=depth)


def apply_defect(mesh: trimesh.Trimesh, params: DefectParams) -> DefectMesh:
    """Displace vertices within ``radius`` of the centre with a smooth (C1) falloff.

    Bulge pushes outward along the vertex normal, concavity inward. The vertex mask is exactly the
    set of moved vertices; the face mask is the faces whose three vertices all moved.
    """
    v = np.array(mesh.vertices, dtype=float)
    if not 0 <= params.center < len(v):
        raise ValueError(f"defect_params.center {params.center} is out of range for a mesh of {len(v)} vertices")
    if not (params.radius > 0 and np.isfinite(params.depth)):
        raise ValueError(f"defect_params: radius must be > 0 and depth finite (got {params.radius}, {params.depth})")
    nrm = np.array(mesh.vertex_normals, dtype=float)
    c = v[params.center]
    d = np.linalg.norm(v - c, axis=1)
    inside = (d < params.radius) & (np.einsum("ij,j->i", nrm, nrm[params.center]) > 0.2)
    w = np.zeros(len(v))
    w[inside] = (1.0 - (d[inside] / params.radius) ** 2) ** 2
    sign = 1.0 if params.kind == "bulge" else -1.0
    v[inside] += sign * params.depth * w[inside, None] * nrm[inside]
    moved = inside & (w > 0)
    faces = np.asarray(mesh.faces)
    face_mask = moved[faces].all(axis=1)
    return DefectMesh(v, faces, moved, face_mask)
