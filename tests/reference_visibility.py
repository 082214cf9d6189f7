"""The reference visibility caster: the planner's original plain-numpy Möller–Trumbore ray caster,
kept here (not in the package) only so tests can check the Embree path of
``pipeline/scenery/visibility.py`` against it. It tests every front-facing triangle whose projected
bounding box overlaps the samples, one frame at a time: exact in float64 and about 50× slower. It
ignores back faces (the Embree path, like the rendered mask, lets a back face hide a sample).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pipeline.objects.mesh import DefectMesh
from pipeline.scenery.orbit import focal_px
from pipeline.scenery.visibility import defect_samples

EPS = 1e-6


def _basis(loc: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = target - loc
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r = r / np.linalg.norm(r) if np.linalg.norm(r) > 1e-9 else np.array([1.0, 0.0, 0.0])
    return f, r, np.cross(r, f)


def _occluded(origin: np.ndarray, points: np.ndarray, own: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """For each point, does the segment origin → point hit any triangle of ``tri`` (other than the
    point's own face, ``own``) strictly before the point?"""
    if len(tri) == 0 or len(points) == 0:
        return np.zeros(len(points), bool)
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    d = points - origin                                   # (K, 3) segment directions, t in (0, 1)
    p = np.cross(d[:, None, :], e2[None])                 # (K, T, 3)
    det = np.einsum("ktc,tc->kt", p, e1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origin - v0                                       # (T, 3)
    u = np.einsum("ktc,tc->kt", p, s) * inv
    q = np.cross(s, e1)                                   # (T, 3)
    v = np.einsum("kc,tc->kt", d, q) * inv
    t = np.einsum("tc,tc->t", e2, q)[None, :] * inv
    hit = ok & (u >= -EPS) & (v >= -EPS) & (u + v <= 1 + EPS) & (t > EPS) & (t < 1 - 1e-4)
    hit &= ~own
    return hit.any(axis=1)


def reference_pixels(mesh: DefectMesh, frames: Sequence[dict[str, Any]], lens_mm: float, width: int, height: int,
                     max_samples: int = 96) -> np.ndarray:
    """Predicted defect pixels per frame, by the reference caster (same model as the package's)."""
    ids, centres, normals, areas = defect_samples(mesh, max_samples)
    out = np.zeros(len(frames))
    if ids.size == 0:
        return out
    fpx = focal_px(width, lens_mm)
    verts, faces = mesh.vertices, mesh.faces
    tri_all = verts[faces]
    tri_n = np.cross(tri_all[:, 1] - tri_all[:, 0], tri_all[:, 2] - tri_all[:, 0])
    tri_c = tri_all.mean(axis=1)
    for i, fr in enumerate(frames):
        cam, tgt = np.asarray(fr["location"], float), np.asarray(fr["target"], float)
        f, r, up = _basis(cam, tgt)
        view = centres - cam
        depth = view @ f
        dist = np.linalg.norm(view, axis=1)
        cos = -(np.einsum("kc,kc->k", normals, view)) / dist
        x = (view @ r) / depth * fpx + width / 2
        y = (view @ up) / depth * fpx + height / 2
        cand = (cos > 0) & (depth > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
        if not cand.any():
            continue
        # Occluder candidates: front-facing triangles whose projected bounding box overlaps the
        # samples' projected bounding box (on a closed mesh the first hit is always front-facing).
        front = np.flatnonzero(np.einsum("tc,tc->t", tri_n, cam - tri_c) > 0)
        rel = verts - cam
        vd = rel @ f
        vok = vd > 1e-6
        safe = np.where(vok, vd, 1.0)
        vx = (rel @ r) / safe * fpx + width / 2
        vy = (rel @ up) / safe * fpx + height / 2
        fi = faces[front]
        keep = vok[fi].all(axis=1)
        tx, ty = vx[fi], vy[fi]
        xs, ys = x[cand], y[cand]
        keep &= (tx.max(1) >= xs.min()) & (tx.min(1) <= xs.max()) & (ty.max(1) >= ys.min()) & (ty.min(1) <= ys.max())
        tri_ids = front[keep]
        own = tri_ids[None, :] == ids[cand][:, None]
        occ = _occluded(cam, centres[cand], own, tri_all[tri_ids])
        vis = np.flatnonzero(cand)[~occ]
        out[i] = float(np.sum(areas[vis] * cos[vis] / dist[vis] ** 2) * fpx * fpx)
    return out
