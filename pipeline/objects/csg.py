"""Exact CSG on watertight triangle meshes with manifold3d (double precision, ``Mesh64``).

Manifold keeps every triangle that a boolean does not cut, so callers can recover which geometry
is original (see :func:`match_vertices`) and which was created by the operation.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Sequence

import manifold3d
import numpy as np
import trimesh
from scipy.spatial import cKDTree


class CSGError(ValueError):
    """A boolean that manifold3d could not do (input not a closed manifold, or an empty result)."""


def to_manifold(mesh: trimesh.Trimesh, what: str = "mesh") -> manifold3d.Manifold:
    """A watertight trimesh → ``Manifold``; raise :class:`CSGError` when it is not a valid volume."""
    m = manifold3d.Manifold(manifold3d.Mesh64(vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
                                              tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C")))
    if m.status() != manifold3d.Error.NoError or m.is_empty():
        raise CSGError(f"{what} is not a closed manifold volume (manifold3d: {m.status()})")
    return m


# Per-mesh results that are costly to rebuild (the Manifold of a library mesh is converted ~7 times
# per object while a defect is calibrated): keyed by the mesh object and checked against its
# content hash (trimesh tracks changes to its arrays), so a changed mesh is converted again.
_MEMO: "OrderedDict[tuple[int, str], tuple[trimesh.Trimesh, int, Any]]" = OrderedDict()
_MEMO_SIZE = 16


def per_mesh(mesh: trimesh.Trimesh, what: str, build: Callable[[], Any]) -> Any:
    """``build()`` for ``mesh``, computed once while the mesh and its content stay the same."""
    key, h = (id(mesh), what), hash(mesh)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is mesh and hit[1] == h:
        _MEMO.move_to_end(key)
        return hit[2]
    value = build()
    _MEMO[key] = (mesh, h, value)  # holding the mesh keeps its id from being reused
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return value


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
    d, i = (tree if tree is not None else cKDTree(original)).query(result, k=1)
    return np.where(d <= tol, i, -1).astype(np.int64)
