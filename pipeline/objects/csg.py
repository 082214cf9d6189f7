"""Exact CSG on watertight triangle meshes with manifold3d (double precision, ``Mesh64``).

Manifold keeps every triangle that a boolean does not cut, so callers can recover which geometry
is original (see :func:`match_vertices`) and which was created by the operation.
"""

from __future__ import annotations

from typing import Sequence

import manifold3d
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from .geometry import per_mesh


class CSGError(ValueError):
    """A boolean that manifold3d could not do (input not a closed manifold, or an empty result)."""


def to_manifold(mesh: trimesh.Trimesh, what: str = "mesh") -> manifold3d.Manifold:
    """A watertight trimesh → ``Manifold``; raise :class:`CSGError` when it is not a valid volume."""
    m = manifold3d.Manifold(manifold3d.Mesh64(vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
                                              tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C")))
    if m.status() != manifold3d.Error.NoError or m.is_empty():
        raise CSGError(f"{what} is not a closed manifold volume (manifold3d: {m.status()})")
    return m


def from_manifold(m: manifold3d.Manifold) -> trimesh.Trimesh:
    out = m.to_mesh64()
    v = np.asarray(out.vert_properties, dtype=np.float64)[:, :3]
    return trimesh.Trimesh(v, np.asarray(out.tri_verts, dtype=np.int64), process=False)


def union(meshes: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    """Boolean union of closed meshes (one part is returned unchanged)."""
    if len(meshes) == 1:
        return meshes[0]
    ms = [to_manifold(m, f"part {i}") for i, m in enumerate(meshes)]
    return from_manifold(manifold3d.Manifold.batch_boolean(ms, manifold3d.OpType.Add))


def difference(a: trimesh.Trimesh, cutters: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    """``a`` minus every cutter."""
    m = per_mesh(a, "manifold", lambda: to_manifold(a))  # Manifolds are immutable: safe to share
    for i, c in enumerate(cutters):
        m = m - to_manifold(c, f"cutter {i}")
    if m.is_empty():
        raise CSGError("the difference is empty")
    return from_manifold(m)


def refine(mesh: trimesh.Trimesh, edge: float) -> trimesh.Trimesh:
    """Split edges (conformingly, so the mesh stays watertight) until no edge is much longer than ``edge``."""
    return from_manifold(to_manifold(mesh).refine_to_length(float(edge)))


def match_vertices(original: np.ndarray, result: np.ndarray, tol: float = 1e-9,
                   tree: cKDTree | None = None) -> np.ndarray:
    """For each ``result`` vertex, the index of the ``original`` vertex at the same position (within
    ``tol``), or -1 for a vertex the operation created. ``tree``: a prebuilt ``cKDTree(original)``."""
    # The bound only prunes the search (a vertex within tol is found exactly as without it).
    bound = 2.0 * tol if tol > 0 else np.inf
    d, i = (tree if tree is not None else cKDTree(original)).query(result, k=1, distance_upper_bound=bound)
    return np.where(d <= tol, i, -1).astype(np.int64)
