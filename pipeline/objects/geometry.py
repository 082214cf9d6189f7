"""Small geometric helpers for defect synthesis: ray casting, local frames, connected patches."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# The cameras orbit low, at 8-22 degrees of elevation (scene.elevation_deg's default); defect
# centres are chosen for a camera in the middle of that range.
CAMERA_ELEVATION_DEG = 15.0


class MeshMemo:
    """Values computed from a mesh, kept while the mesh object and its content stay the same: keyed
    by the mesh object and checked against its content hash (trimesh tracks changes to its arrays),
    so a changed mesh gets fresh values. At most ``size`` values, least recently used dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._memo: "OrderedDict[tuple[int, str], tuple[trimesh.Trimesh, int, Any]]" = OrderedDict()

    def get(self, mesh: trimesh.Trimesh, what: str, build: Callable[[], Any]) -> Any:
        """``build()`` for ``mesh`` and ``what``, computed once (treat the value as read-only)."""
        key, h = (id(mesh), what), hash(mesh)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is mesh and hit[1] == h:
            self._memo.move_to_end(key)
            return hit[2]
        value = build()
        self._memo[key] = (mesh, h, value)  # holding the mesh keeps its id from being reused
        while len(self._memo) > self.size:
            self._memo.popitem(last=False)
        return value


# Per-mesh values that are costly to rebuild and used for every object of a category (the
# library mesh's Manifold, KD-tree, triangle edges, sharp vertices).
_PER_MESH = MeshMemo(64)


def per_mesh(mesh: trimesh.Trimesh, what: str, build: Callable[[], Any]) -> Any:
    """``build()`` for ``mesh``, computed once while the mesh and its content stay the same (treat
    the value as read-only)."""
    return _PER_MESH.get(mesh, what, build)


def triangle_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(v0, v1 - v0, v2 - v0)`` of ``(T, 3, 3)`` triangles, as :func:`ray_hits` uses them."""
    return triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]


def mesh_edges(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`triangle_edges` of the mesh's triangles, computed once per mesh."""
    return per_mesh(mesh, "triangle_edges", lambda: triangle_edges(mesh.triangles))


def ray_hits(triangles: np.ndarray, origin: np.ndarray, direction: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Sorted distances ``t > eps`` at which the ray ``origin + t * direction`` hits ``triangles``
    (Möller-Trumbore, vectorized over the triangles; both faces count)."""
    return _edge_hits(triangle_edges(triangles), origin, direction, eps)


def _edge_hits(edges: tuple[np.ndarray, np.ndarray, np.ndarray], origin: np.ndarray, direction: np.ndarray,
               eps: float) -> np.ndarray:
    """:func:`ray_hits` of triangles given as their :func:`triangle_edges`."""
    v0, e1, e2 = edges
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


def _bounding_spheres(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    tri = np.asarray(mesh.triangles)
    centre = tri.mean(axis=1)
    return centre, np.sqrt(((tri - centre[:, None]) ** 2).sum(axis=2).max(axis=1))


def mesh_ray_hits(mesh: trimesh.Trimesh, origin: np.ndarray, direction: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """:func:`ray_hits` against the mesh's triangles, testing only those whose bounding sphere
    (grown by 1 %) the ray passes: the same hits for a fraction of the work (a ray crosses a few
    hundred of a mesh's ~40k triangles)."""
    v0, e1, e2 = mesh_edges(mesh)
    centre, radius = per_mesh(mesh, "bounding_spheres", lambda: _bounding_spheres(mesh))
    d = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    w = centre - origin
    along = w @ d
    reach = 1.01 * radius + 1e-6
    near = np.flatnonzero((np.einsum("ij,ij->i", w, w) - along ** 2 <= reach ** 2) & (along >= -reach))
    return _edge_hits((v0[near], e1[near], e2[near]), origin, direction, eps)


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
    return mesh_ray_hits(mesh, origin, d).size == 0


def local_frame(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, t, b): ``t`` horizontal where possible, ``b`` = n × t (roughly up the surface)."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    ref = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.95 else np.array([1.0, 0.0, 0.0])
    t = np.cross(ref, n)
    t /= np.linalg.norm(t)
    return n, t, np.cross(n, t)


def connected_patch(faces: np.ndarray, candidate: np.ndarray, center: int) -> np.ndarray:
    """The part of the boolean vertex set ``candidate`` connected (through edges of ``faces`` inside
    it) to ``center``."""
    cand = candidate.copy()
    cand[center] = True
    f = np.asarray(faces, dtype=np.int64)
    a, b = f.ravel(), f[:, [1, 2, 0]].ravel()  # every face edge (an edge twice is still one link)
    keep = cand[a] & cand[b]
    n = len(cand)
    g = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return cand & (labels == labels[center])


def face_area_fraction(mesh_area_faces: np.ndarray, face_mask: np.ndarray, total: float) -> float:
    return float(mesh_area_faces[face_mask].sum() / total) if total > 0 else 0.0


def mean_edge(mesh: trimesh.Trimesh) -> float:
    return float(mesh.edges_unique_length.mean())


# Edge keys: an undirected edge (a, b), a < b, as the one integer a·2³² + b. Sorting keys sorts the
# edges lexicographically, and np.unique on keys is several times faster than on (a, b) rows.
_KEY_SHIFT = 32


def edge_keys(faces: np.ndarray) -> np.ndarray:
    """The key of each face's edges ab, bc, ca, in that order (``3F`` keys); vertex ids must be < 2³¹."""
    f = np.asarray(faces, dtype=np.int64)
    a, b = f.ravel(), f[:, [1, 2, 0]].ravel()
    return (np.minimum(a, b) << _KEY_SHIFT) | np.maximum(a, b)


def edge_ends(keys: np.ndarray) -> np.ndarray:
    """``(E, 2)`` vertex ids (a < b) of edge keys."""
    return np.stack([keys >> _KEY_SHIFT, keys & ((1 << _KEY_SHIFT) - 1)], axis=1)


def boundary_keys(faces: np.ndarray) -> np.ndarray:
    """Sorted keys of the edges that only one face has (the border of an open patch)."""
    keys, counts = np.unique(edge_keys(faces), return_counts=True)
    return keys[counts == 1]


def refine(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, select: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split the selected faces 1 → 4 at their edge midpoints, keeping the mesh conforming (no
    T-junctions): a neighbour with one split edge is halved, one with two split edges is split
    fully (repeated until no face has exactly two). Returns (vertices, faces, normals, parent)
    where new vertices come after the old ones, lie exactly at edge midpoints (so an unmoved
    refined surface is the original surface), get the normalized mean of their edge's end normals,
    and ``parent`` is the old index of each vertex or -1 for a new one. Face orientation is kept."""
    f = np.asarray(faces, dtype=np.int64)
    keys, inv = np.unique(edge_keys(f), return_inverse=True)
    uniq = edge_ends(keys)
    inv = inv.reshape(-1, 3)                       # face → its edges (ab, bc, ca)
    split = np.zeros(len(uniq), bool)
    split[inv[np.asarray(select, bool)].ravel()] = True
    while True:
        k = split[inv].sum(axis=1)
        two = k == 2
        if not two.any():
            break
        split[inv[two].ravel()] = True
    nv = len(vertices)
    mid_id = -np.ones(len(uniq), np.int64)
    mids = np.flatnonzero(split)
    mid_id[mids] = nv + np.arange(mids.size)
    a, b = uniq[mids, 0], uniq[mids, 1]
    v_new = np.vstack([vertices, 0.5 * (vertices[a] + vertices[b])])
    n_mid = normals[a] + normals[b]
    n_mid /= np.maximum(np.linalg.norm(n_mid, axis=1, keepdims=True), 1e-12)
    n_new = np.vstack([normals, n_mid])
    m = mid_id[inv]                                # (F, 3) midpoint ids of ab, bc, ca (-1: not split)
    k = split[inv].sum(axis=1)
    out = [f[k == 0]]
    full = k == 3
    A, B, C = f[full, 0], f[full, 1], f[full, 2]
    m0, m1, m2 = m[full, 0], m[full, 1], m[full, 2]
    out += [np.stack(t, axis=1) for t in ((A, m0, m2), (m0, B, m1), (m2, m1, C), (m0, m1, m2))]
    for j in range(3):                             # one split edge j: halve from the opposite corner
        one = (k == 1) & (m[:, j] >= 0)
        p, q, r = f[one, j], f[one, (j + 1) % 3], f[one, (j + 2) % 3]
        mm = m[one, j]
        out += [np.stack((p, mm, r), axis=1), np.stack((mm, q, r), axis=1)]
    parent = np.concatenate([np.arange(nv), -np.ones(mids.size, np.int64)])
    return v_new, np.vstack(out), n_new, parent
