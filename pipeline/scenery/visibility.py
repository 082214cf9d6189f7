"""Predict per-frame defect visibility before rendering, by ray casting the defect faces from the
planned camera path (plain numpy Möller–Trumbore; no embree or rtree needed), and pick start
azimuths so that the share of clips showing the defect meets a configured target.

Predicted pixels of a frame = Σ over visible sampled defect faces of ``area · cos θ / d² · f_px²``
(the face's projected area in pixels), scaled up by the sampled fraction of the defect area. A face
counts when it faces the camera, projects inside the frame, and the segment from the camera to its
centre hits no other front-facing triangle (on a closed mesh the first hit is always front-facing).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..intervals import clip_local, visible_intervals
from ..objects.mesh import DefectMesh
from .orbit import focal_px

EPS = 1e-6


def defect_samples(mesh: DefectMesh, max_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(face ids, centres, unit normals, areas × weight) of an evenly strided subset of defect faces;
    weights make the sampled area sum to the whole defect area."""
    ids = np.flatnonzero(mesh.face_mask)
    tri = mesh.vertices[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    if ids.size == 0:
        return ids, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    pick = ids[np.linspace(0, ids.size - 1, min(max_samples, ids.size)).round().astype(int)]
    pick = np.unique(pick)
    w = area[ids].sum() / max(area[pick].sum(), 1e-12)
    normals = cross[pick] / np.maximum(np.linalg.norm(cross[pick], axis=1, keepdims=True), 1e-12)
    return pick, tri[pick].mean(axis=1), normals, area[pick] * w


def _basis(loc: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = target - loc
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r = r / np.linalg.norm(r) if np.linalg.norm(r) > 1e-9 else np.array([1.0, 0.0, 0.0])
    return f, r, np.cross(r, f)


def _occluded(origin: np.ndarray, points: np.ndarray, own: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """For each point, does the segment origin → point hit any triangle of ``tri`` (excluding the
    point's own face id ``own`` in the ids carried in ``tri``'s index) strictly before the point?"""
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


def predict_pixels(mesh: DefectMesh, frames: Sequence[dict[str, Any]], lens_mm: float, width: int, height: int,
                   max_samples: int = 96) -> np.ndarray:
    """Predicted defect pixels per frame (float array, one value per camera pose)."""
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
        # samples' projected bounding box.
        front = np.flatnonzero(np.einsum("tc,tc->t", tri_n, cam - tri_c) > 0)
        # Project each vertex once (not each triangle corner), then gather per triangle.
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


def clip_flags(intervals: Sequence[Sequence[int]], orbit_frames: int, clip_frames: int) -> list[int]:
    """1 for each clip of the orbit whose clip-local visible intervals are non-empty, else 0."""
    n = orbit_frames // clip_frames
    return [int(bool(clip_local(list(map(tuple, intervals)), c * clip_frames, (c + 1) * clip_frames)))
            for c in range(n)]


def predicted_intervals(pixels: np.ndarray, threshold: float, min_len: int, min_gap: int) -> list[list[int]]:
    return [list(x) for x in visible_intervals(pixels, threshold, min_len, min_gap)]


def allocate_counts(options: list[list[int]], target_total: int, rng: np.random.Generator) -> list[int]:
    """Choose one achievable visible-clip count per job so the sum is as close as possible to
    ``target_total``: start from each job's minimum and hand out the remainder in proportion to each
    job's headroom, with the fractional parts decided in a seeded order."""
    lo = np.array([min(o) for o in options])
    hi = np.array([max(o) for o in options])
    need = int(np.clip(target_total, lo.sum(), hi.sum())) - int(lo.sum())
    room = hi - lo
    if need <= 0 or room.sum() == 0:
        return [int(x) for x in lo]
    share = room * need / room.sum()
    give = np.floor(share).astype(int)
    order = rng.permutation(len(options))
    frac = (share - give)[order]
    for j in order[np.argsort(-frac, kind="stable")][: need - int(give.sum())]:
        give[j] += 1
    want = lo + give
    # A job's achievable counts may have holes (e.g. {0, 2}); take the nearest achievable one, then
    # repair the total one step at a time (seeded job order) while that brings it closer.
    got = [int(min(o, key=lambda c, w=w: (abs(c - w), c))) for o, w in zip(options, want)]
    goal = int(lo.sum()) + need
    for _ in range(sum(len(o) for o in options)):
        diff = goal - sum(got)
        if diff == 0:
            break
        best = None
        for j in order:
            steps = [c for c in options[j] if (c - got[j]) * diff > 0]
            if steps:
                c = min(steps, key=lambda c, j=j: abs(c - got[j]))
                if abs(diff - (c - got[j])) < abs(diff) and (best is None or abs(c - got[j]) < abs(best[1] - got[best[0]])):
                    best = (j, c)
        if best is None:
            break
        got[best[0]] = best[1]
    return got
