"""Small geometric helpers for defect synthesis: ray casting, local frames, connected patches."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# The cameras orbit at 15-35 degrees of elevation (manifests); 25 is the middle of that range.
CAMERA_ELEVATION_DEG = 25.0


def ray_hits(triangles: np.ndarray, origin: np.ndarray, direction: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Sorted distances ``t > eps`` at which the ray ``origin + t * direction`` hits ``triangles``
    (Möller-Trumbore, vectorized over the triangles; both faces count)."""
    v0, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
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
    return ray_hits(mesh.triangles, origin, d).size == 0


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
