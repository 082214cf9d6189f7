"""Small geometric helpers for defect synthesis: ray casting, local frames, connected patches."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# The cameras orbit at 15-35 degrees of elevation (manifests); 25 is the middle of that range.
CAMERA_ELEVATION_DEG = 25.0


# Per-mesh values that are costly to rebuild and used for every object of a category (the
# library mesh's Manifold, KD-tree, triangle edges, sharp vertices): keyed by the mesh object and
# checked against its content hash (trimesh tracks changes to its arrays), so a changed mesh gets
# fresh values.
_MEMO: "OrderedDict[tuple[int, str], tuple[trimesh.Trimesh, int, Any]]" = OrderedDict()
_MEMO_SIZE = 64


def per_mesh(mesh: trimesh.Trimesh, what: str, build: Callable[[], Any]) -> Any:
    """``build()`` for ``mesh``, computed once while the mesh and its content stay the same (treat
    the value as read-only)."""
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


def triangle_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(v0, v1 - v0, v2 - v0)`` of ``(T, 3, 3)`` triangles, as :func:`ray_hits` uses them."""
    return triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]


def mesh_edges(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`triangle_edges` of the mesh's triangles, computed once per mesh."""
    return per_mesh(mesh, "triangle_edges", lambda: triangle_edges(mesh.triangles))


def ray_hits(triangles: np.ndarray, origin: np.ndarray, direction: np.ndarray, eps: float = 1e-9,
             edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Sorted distances ``t > eps`` at which the ray ``origin + t * direction`` hits ``triangles``
    (Möller-Trumbore, vectorized over the triangles; both faces count). ``edges``: the triangles'
    :func:`triangle_edges` when the caller has them already."""
    v0, e1, e2 = edges if edges is not None else triangle_edges(triangles)
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-14
    inv = np.zeros_like(det)
    inv[ok] = 1.0 / det[ok]
    s = origin - v0
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    w = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > eps)
    return np.sort(t[hit])


def camera_direction(normal: np.ndarray, elevation_deg: float = CAMERA_ELEVATION_DEG) -> np.ndarray:
    """Direction to an orbit camera at the azimuth the surface normal faces."""
    el = np.radians(elevation_deg)
    h = np.asarray(normal[:2], dtype=float)
    hn = np.linalg.norm(h)
    h = h / hn if hn > 1e-9 else np.array([1.0, 0.0])
    return np.array([np.cos(el) * h[0], np.cos(el) * h[1], np.sin(el)])


def orbit_facing(normals: np.ndarray, elevation_deg: float = CAMERA_ELEVATION_DEG) -> np.ndarray:
    """For each unit normal, the best cosine to any camera of the orbit (same elevation, any azimuth)."""
    el = np.radians(elevation_deg)
    return np.linalg.norm(normals[:, :2], axis=1) * np.cos(el) + normals[:, 2] * np.sin(el)


def is_visible(mesh: trimesh.Trimesh, vertex: int, scale: float) -> bool:
    """True when nothing blocks the ray from the vertex towards the orbit camera facing it."""
    n = mesh.vertex_normals[vertex]
    d = camera_direction(n)
    if float(n @ d) < 0.25:
        return False
    origin = mesh.vertices[vertex] + 1e-3 * scale * n
    return ray_hits(mesh.triangles, origin, d, edges=mesh_edges(mesh)).size == 0


def local_frame(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, t, b): ``t`` horizontal where possible, ``b`` = n × t (roughly up the surface)."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    ref = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.95 else np.array([1.0, 0.0, 0.0])
    t = np.cross(ref, n)
    t /= np.linalg.norm(t)
    return n, t, np.cross(n, t)


def connected_patch(mesh: trimesh.Trimesh, candidate: np.ndarray, center: int) -> np.ndarray:
    """The part of the boolean vertex set ``candidate`` connected (through mesh edges inside it) to ``center``."""
    cand = candidate.copy()
    cand[center] = True
    e = mesh.edges_unique
    keep = cand[e[:, 0]] & cand[e[:, 1]]
    e = e[keep]
    n = len(mesh.vertices)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return cand & (labels == labels[center])


def face_area_fraction(mesh_area_faces: np.ndarray, face_mask: np.ndarray, total: float) -> float:
    return float(mesh_area_faces[face_mask].sum() / total) if total > 0 else 0.0


def mean_edge(mesh: trimesh.Trimesh) -> float:
    return float(mesh.edges_unique_length.mean())
