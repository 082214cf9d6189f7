"""Defect synthesis on any triangle mesh: crack, scratch, concavity, bulge, broken, hole.

Planning (:func:`choose_defect`) draws every random choice from an explicit ``numpy.random.Generator``
and returns fully resolved :class:`DefectParams` (stored in the job JSON); applying them
(:func:`apply_defect`) is deterministic. The defect is centred on a vertex of the outer surface that
an orbit camera sees (ray cast), and its size is calibrated so that the marked surface is the drawn
fraction of the mesh area (the ``defect_area`` range, 1-7 % in Anomaly-ShapeNet).

What the mask means (the face mask is what Blender paints red):

- **bulge, concavity, crack, scratch** move vertices. ``vertex_mask`` is exactly the set of moved
  vertices and ``face_mask`` the faces with at least one moved vertex (every face whose shape
  changed). Crack and scratch first refine the mesh along their path (edges halved at their
  midpoints, conforming, see :func:`geometry.refine`) so that a narrow groove has vertices across
  it; those new vertices either moved (in the mask) or lie exactly on the original surface. No other
  vertex moves. Bulge and concavity are smooth swellings and dents (depth at most
  :data:`BULGE_RATIO` × radius, a C¹ falloff to zero at the rim); every vertex within the radius
  moves, so on a thin wall both of its faces move together, as a dented sheet does.
- **hole, broken** remove material with an exact boolean difference (manifold3d) on a watertight mesh:
  a cylinder bored along the inward normal (through a thin wall, or a blind bore into a solid), or a
  noise-displaced ball that takes a chunk off a rim or edge. ``face_mask`` is every new or re-cut face
  (the bore wall, the fracture surface, the triangles split along the cut) plus a rim band of original
  faces within ``rim`` of the new geometry, because that band is what a camera sees around an opening;
  ``vertex_mask`` is the vertices of those faces. Every vertex outside the mask is an original vertex
  at its exact original position (``DefectMesh.origin`` maps each vertex to the input mesh, -1 = new).
  A mesh that is not watertight gets an open cut instead (faces removed, rim band marked).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..ids import DEFECT_TYPES
from . import csg
from .geometry import (MeshMemo, boundary_keys, connected_patch, is_visible, local_frame, mean_edge, mesh_ray_hits,
                       orbit_facing, per_mesh, refine)
from .mesh import DefectMesh

SUPPORTED = DEFECT_TYPES
DISPLACING = ("bulge", "concavity", "crack", "scratch")
REMOVING = ("hole", "broken")

# Shape constants per type (sizes relative to the normalized object, largest extent 1).
CRACK_WIDTH = (0.006, 0.011)      # half-width of the groove
SCRATCH_WIDTH = (0.003, 0.006)
CRACK_DEPTH_RATIO = (1.5, 2.5)    # depth / half-width: a narrow, deep V
SCRATCH_DEPTH_RATIO = (0.35, 0.6)  # a shallow U
THIN_AREA_SCALE = 0.4             # crack and scratch: this × the drawn share (a groove is thin)
MAX_PATH = {"crack": 0.75, "scratch": 0.9}   # longest main polyline
MAX_WIDEN = 1.8                   # a groove too long for its share gets at most this much wider
BULGE_RATIO = 0.3                 # bulge/concavity depth ≤ this × radius: a swelling, not a knob
THIN_WALL = 0.25                  # a hole bores through a wall thinner than this with a cavity behind
GROOVE_FACING = 0.8               # groove centres: best cosine to the orbit camera at least this
GROOVE_SPREAD = 0.4               # a groove stays where the surface normal is within 66° of the centre's
REFINE_LEVELS = 3                 # at most 3 halvings of the edge length along a groove
RIM_FACTOR = 0.35                 # rim band width / opening radius
HOLE_MAX = 0.09                   # largest hole radius (a puncture, not a cut-away)
BROKEN_MAX = 0.22                 # largest radius of the chunk that breaks off
CALIBRATION_STEPS = 6


@dataclass(frozen=True)
class DefectParams:
    """Resolved parameters of one defect (chosen at plan time, stored in the job).

    ``radius``: footprint radius (bulge, concavity, hole, broken) or groove half-width (crack, scratch).
    ``depth``: displacement depth along the normal, or the bore depth of a hole.
    ``paths``: crack/scratch polylines in the local tangent frame at the centre (see :func:`local_frame`).
    ``noise_seed``: the fracture shape of ``broken``. ``rim``: the band marked around an opening."""
    kind: str
    center: int
    radius: float
    depth: float
    paths: tuple = ()
    noise_seed: int = 0
    rim: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["radius"], d["depth"], d["rim"] = round(self.radius, 6), round(self.depth, 6), round(self.rim, 6)
        d["paths"] = [[[round(float(x), 6) for x in pt] for pt in path] for path in self.paths]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = "defect_params") -> "DefectParams":
        names = {f.name for f in fields(cls)}
        extra = set(d) - names
        if extra:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        if d.get("kind") not in SUPPORTED:
            raise ValueError(f"{where}.kind: {d.get('kind')!r} is not one of {', '.join(SUPPORTED)}")
        paths = tuple(tuple((float(p[0]), float(p[1])) for p in path) for path in d.get("paths", ()))
        try:
            return cls(kind=d["kind"], center=int(d["center"]), radius=float(d["radius"]), depth=float(d["depth"]),
                       paths=paths, noise_seed=int(d.get("noise_seed", 0)), rim=float(d.get("rim", 0.0)))
        except KeyError as e:
            raise ValueError(f"{where}: missing field {e.args[0]!r}") from None


# ----------------------------------------------------------------------------------------- choosing


def _sharp_vertices(mesh: trimesh.Trimesh, angle_deg: float = 35.0) -> np.ndarray:
    sharp = np.zeros(len(mesh.vertices), bool)
    edges = mesh.face_adjacency_edges[mesh.face_adjacency_angles > np.radians(angle_deg)]
    sharp[edges.ravel()] = True
    return sharp


def _hole_fits(mesh: trimesh.Trimesh, vertex: int) -> bool:
    """A hole needs a wall with a cavity behind it (a puncture one can see into) or a thick solid;
    not a handle or a thin fin with open air behind it."""
    t1, t2 = _thickness(mesh, vertex)
    return (t2 is not None and t1 < THIN_WALL) or t1 >= 0.15


def _center_tiers(mesh: trimesh.Trimesh, kind: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The vertices a defect centre may take (``ok``), and the candidate vertex ids in order of
    preference: sharp rim vertices for ``broken``, vertices away from sharp edges otherwise (for a
    groove, first those facing the low orbit squarely)."""
    v, n = mesh.vertices, mesh.vertex_normals
    lo, hi = mesh.bounds
    h = float(hi[2] - lo[2])
    ok = (orbit_facing(n) > 0.45) & (v[:, 2] > lo[2] + 0.08 * h)
    sharp = _sharp_vertices(mesh)
    if kind == "broken":
        tiers = [ok & sharp & (v[:, 2] > lo[2] + 0.5 * h), ok & sharp, ok]
    else:
        near_sharp = sharp.copy()
        near_sharp[mesh.edges_unique[sharp[mesh.edges_unique].any(axis=1)].ravel()] = True
        tiers = [ok & ~near_sharp, ok]
        if kind in ("crack", "scratch"):
            # A groove is thin: seen at a grazing angle it is a sliver of a pixel or two. Prefer a
            # surface that faces the low orbit squarely (a side wall rather than a crown).
            tiers.insert(0, tiers[0] & (orbit_facing(n) > GROOVE_FACING))
    return ok, [np.flatnonzero(t) for t in tiers]


def _pick_center(mesh: trimesh.Trimesh, kind: str, rng: np.random.Generator) -> int:
    """A vertex on the outer surface that the orbit camera facing it can see (ray cast); for a hole,
    one where a puncture fits (:func:`_hole_fits`), when the first 48 candidates hold one."""
    n = mesh.vertex_normals
    lo, hi = mesh.bounds
    scale = float(np.max(hi - lo))
    ok, tiers = per_mesh(mesh, f"center-tiers-{kind}", lambda: _center_tiers(mesh, kind))  # same for every object
    seen = None
    for cands in tiers:
        if cands.size < 8:
            continue
        for i in rng.permutation(cands)[:48]:
            if is_visible(mesh, int(i), scale):
                if kind != "hole" or _hole_fits(mesh, int(i)):
                    return int(i)
                seen = int(i) if seen is None else seen
    if seen is not None:
        return seen
    fallback = np.flatnonzero(ok)
    if fallback.size:
        return int(fallback[rng.integers(fallback.size)])
    return int(np.argmax(orbit_facing(n)))


def _thickness(mesh: trimesh.Trimesh, center: int) -> tuple[float, float | None]:
    """Distances along the inward normal to the first surface hit (wall thickness, or the far side of
    a solid) and to the next one (the opposite wall across a cavity), if any."""
    n = mesh.vertex_normals[center]
    scale = float(np.max(mesh.extents))
    hits = mesh_ray_hits(mesh, mesh.vertices[center] - 1e-4 * scale * n, -n, eps=1e-6 * scale)
    if hits.size == 0:
        return scale, None
    return float(hits[0]), (float(hits[1]) if hits.size > 1 else None)


def _polyline(rng: np.random.Generator, length: float, heading: float, wiggle: float, steps: int = 10) -> np.ndarray:
    ang = heading + np.cumsum(rng.normal(0.0, wiggle, steps))
    seg = length / steps
    pts = np.vstack([[0.0, 0.0], np.cumsum(np.stack([np.cos(ang), np.sin(ang)], 1) * seg, axis=0)])
    return pts


def _crack_paths(rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """Unit-length-scale paths (main length 1), centred on the origin. A crack is a jagged main
    fracture with 1-3 branches that fork off at acute angles; a scratch is 1-3 nearly straight,
    nearly parallel strokes."""
    heading = float(rng.uniform(0, np.pi))
    if kind == "crack":
        main = _polyline(rng, 1.0, heading, 0.3, steps=16)
        main -= main[len(main) // 2]
        paths = [main]
        for _ in range(int(rng.integers(1, 4))):  # 1-3 branches
            k = int(rng.integers(3, len(main) - 3))
            seg = main[k + 1] - main[k]
            base = float(np.arctan2(seg[1], seg[0]))
            br = _polyline(rng, float(rng.uniform(0.2, 0.4)), base + float(rng.choice([-1, 1]) * rng.uniform(0.4, 0.9)),
                           0.35, steps=7)
            paths.append(br + main[k])
        return paths
    strokes = int(rng.integers(1, 4))
    gap = float(rng.uniform(0.02, 0.05))
    normal = np.array([-np.sin(heading), np.cos(heading)])
    paths = []
    for s in range(strokes):
        p = _polyline(rng, float(rng.uniform(0.6, 1.0)), heading + float(rng.normal(0, 0.03)), 0.015)
        p -= p[len(p) // 2]
        paths.append(p + normal * gap * (s - (strokes - 1) / 2) + rng.normal(0, 0.03, 2))
    return paths


def _params_at(kind: str, center: int, size: float, base: dict[str, Any], mesh: trimesh.Trimesh) -> DefectParams:
    """The parameters for one calibration ``size`` (radius, or main path length for crack/scratch)."""
    if kind in ("bulge", "concavity"):
        depth = min(base["depth"], BULGE_RATIO * size)
        if kind == "concavity":
            # A dent must not reach the far side: when the wall behind moves with it (it lies within
            # the radius), the opposite wall across a cavity; otherwise the back of the solid.
            t1, t2 = base["thickness"], base["second"]
            if t1 < size:
                if t2 is not None:
                    depth = min(depth, 0.5 * (t2 - t1))
            else:
                depth = min(depth, 0.5 * t1)
        return DefectParams(kind, center, size, depth)
    if kind in ("crack", "scratch"):
        width = base["width"]
        length = size
        if length > MAX_PATH[kind]:  # too long: widen instead, up to a limit (a groove stays narrow)
            width = min(width * length / MAX_PATH[kind], MAX_WIDEN * width)
            length = MAX_PATH[kind]
        paths = tuple(tuple(map(tuple, p * length)) for p in base["unit_paths"])
        depth = min(base["depth_ratio"] * width, base["depth"], 0.45 * base["thickness"])
        return DefectParams(kind, center, width, depth, paths=paths)
    t1, t2 = base["thickness"], base["second"]
    if kind == "hole":
        # A puncture, not a cut through the part: at most HOLE_MAX wide, and well inside the width
        # of the part there (the cavity behind a wall, or the solid's depth).
        size = min(size, HOLE_MAX, 0.4 * (t2 if t2 is not None and t1 < THIN_WALL else t1))
        if t2 is not None and t1 < THIN_WALL:  # a wall with a cavity behind it: bore through it
            depth = t1 + min(0.5 * (t2 - t1), 2.0 * size)
        else:                                   # a solid: a blind bore
            depth = min(0.5 * t1, 3.0 * size)
        return DefectParams(kind, center, size, depth, rim=RIM_FACTOR * size)
    size = min(size, BROKEN_MAX)
    return DefectParams(kind, center, size, 0.0, noise_seed=base["noise_seed"], rim=RIM_FACTOR * size)


def choose_defect(mesh: trimesh.Trimesh, kind: str, rng: np.random.Generator,
                  area_range: tuple[float, float], depth_range: tuple[float, float],
                  groove_scale: float = 1.0) -> DefectParams:
    """Pick a visible centre, a shape and a size whose marked area is a fraction drawn from
    ``area_range`` of the surface (× :data:`THIN_AREA_SCALE` for crack and scratch; calibrated by
    applying the defect), and a depth drawn from ``depth_range`` × the object's height (a cap for
    cracks and scratches, whose depth follows their width). ``groove_scale`` widens cracks and
    scratches (their half-width ranges) for low render resolutions, where a thin groove would be
    narrower than a pixel."""
    if kind not in SUPPORTED:
        raise ValueError(f"unknown defect type {kind!r} (have: {', '.join(SUPPORTED)})")
    center = _pick_center(mesh, kind, rng)
    h = float(mesh.extents[2])
    target = float(rng.uniform(*area_range))
    depth = float(rng.uniform(*depth_range)) * h
    edge = mean_edge(mesh)
    t1, t2 = _thickness(mesh, center)
    base: dict[str, Any] = {"depth": depth, "thickness": t1, "second": t2}
    if kind in ("crack", "scratch"):
        target *= THIN_AREA_SCALE
        lo_w, hi_w = CRACK_WIDTH if kind == "crack" else SCRATCH_WIDTH
        width = float(rng.uniform(lo_w, hi_w)) * groove_scale
        ratio = CRACK_DEPTH_RATIO if kind == "crack" else SCRATCH_DEPTH_RATIO
        base.update(width=width, depth_ratio=float(rng.uniform(*ratio)), unit_paths=_crack_paths(rng, kind))
        total = sum(float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) for p in base["unit_paths"])
        fine = edge / 2 ** _levels(edge, width)
        size = target * float(mesh.area) / (total * (2 * width + 2 * fine))
    elif kind == "broken":
        base["noise_seed"] = int(rng.integers(0, 2**31 - 1))
        size = float(np.sqrt(target * float(mesh.area) / (2.0 * np.pi)))
    elif kind == "hole":
        size = float(np.sqrt(target * float(mesh.area) / (np.pi * (1 + RIM_FACTOR) ** 2)))
    else:
        size = float(np.sqrt(target * float(mesh.area) / np.pi))
    best: tuple[float, DefectParams] | None = None
    for _ in range(CALIBRATION_STEPS):
        # rounded as stored in the job, so that planning and rendering cut the very same defect
        params = DefectParams.from_json(_params_at(kind, center, size, base, mesh).to_json())
        frac = area_fraction(mesh, apply_defect(mesh, params))
        err = abs(np.log(max(frac, 1e-9) / target))
        if best is None or err < best[0]:
            best = (err, params)
        if err < 0.1:
            break
        size *= float(np.clip(np.sqrt(target / frac) if frac > 0 else 2.0, 0.5, 2.0))
    assert best is not None
    return best[1]


def area_fraction(base: trimesh.Trimesh, dm: DefectMesh) -> float:
    """Area of the marked faces (on the defective mesh) / area of the original surface."""
    tri = dm.vertices[dm.faces[dm.face_mask]]
    a = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    return float(a / base.area)


# ----------------------------------------------------------------------------------------- applying


def _polyline_distance(uv: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from 2-D points to a polyline, and the relative arc position (0..1) of the closest point."""
    a, b = path[:-1], path[1:]
    ab = b - a
    L = np.linalg.norm(ab, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(L)])
    # (points × segments) arrays, x and y apart: no (P, S, 2) temporaries (the hot loop of a groove)
    u, w = uv[:, 0:1], uv[:, 1:2]
    t = np.clip(((u - a[:, 0]) * ab[:, 0] + (w - a[:, 1]) * ab[:, 1]) / np.maximum(L ** 2, 1e-18), 0, 1)
    dx = u - (a[:, 0] + t * ab[:, 0])
    dy = w - (a[:, 1] + t * ab[:, 1])
    d = np.sqrt(dx * dx + dy * dy)
    k = np.argmin(d, axis=1)
    rows = np.arange(len(uv))
    s = (cum[k] + t[rows, k] * L[k]) / max(cum[-1], 1e-18)
    return d[rows, k], s


def _levels(edge: float, half_width: float) -> int:
    """Edge halvings needed for about 1.5 edges per groove half-width."""
    return int(np.clip(np.ceil(np.log2(max(edge / (half_width / 1.5), 1.0))), 0, REFINE_LEVELS))


def _path_distance(points: np.ndarray, c: np.ndarray, t: np.ndarray, b: np.ndarray,
                   paths: list[np.ndarray], limit: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Distance in the tangent plane at ``c`` from ``points`` to the nearest path, and the taper
    (thinner towards the path ends) at the closest point. A point outside every path's bounding
    box grown by ``limit`` is farther than ``limit`` from them all: it gets ``inf`` (taper 0)
    without measuring, so pass the largest distance the caller tells apart."""
    rel = points - c
    uv = np.stack([rel @ t, rel @ b], axis=1)
    best = np.full(len(points), np.inf)
    taper = np.zeros(len(points))
    for path in paths:
        near = np.flatnonzero(((uv >= path.min(axis=0) - limit) & (uv <= path.max(axis=0) + limit)).all(axis=1))
        d, s = _polyline_distance(uv[near], path)
        closer = d < best[near]
        best[near[closer]] = d[closer]
        taper[near[closer]] = np.clip(np.minimum(s, 1 - s)[closer] / 0.15, 0.3, 1.0)
    return best, taper


def _groove(mesh: trimesh.Trimesh, p: DefectParams) -> DefectMesh:
    """Crack (V groove) or scratch (shallow U): refine along the paths, then sink the vertices
    within the half-width along their (interpolated original) normals. All the work happens on the
    faces near the defect; the rest of the mesh is copied as it is."""
    v = np.array(mesh.vertices, dtype=float)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    nrm = np.array(mesh.vertex_normals, dtype=float)
    c = v[p.center]
    n0, t, b = local_frame(nrm[p.center])
    paths = [np.asarray(x, dtype=float) for x in p.paths]
    reach = max(float(np.linalg.norm(x, axis=1).max()) for x in paths) + p.radius
    edge = mean_edge(mesh)
    # The local piece: faces along the paths, with a wide margin so that refinement (which may
    # spread a few rings past its selection to stay conforming) never reaches its border.
    cen = v[faces].mean(axis=1)
    local = np.linalg.norm(cen - c, axis=1) < reach + 8 * edge
    d_all, _ = _path_distance(cen[local], c, t, b, paths, p.radius + 8 * edge)
    local[np.flatnonzero(local)[d_all > p.radius + 8 * edge]] = False
    f, rest = faces[local], faces[~local]
    border = boundary_keys(f)
    origin = np.arange(len(v))
    for level in range(_levels(edge, p.radius)):
        margin = 2.5 * edge / 2 ** level
        near = (np.linalg.norm(v - c, axis=1) < reach + margin) & (nrm @ n0 > GROOVE_SPREAD - 0.1)
        select = near[f].all(axis=1)
        d, _ = _path_distance(v[f[select]].mean(axis=1), c, t, b, paths, p.radius + margin)
        select[select] = d < p.radius + margin
        if not select.any():
            break
        v, f, nrm, parent = refine(v, f, nrm, select)
        origin = np.where(parent >= 0, origin[np.maximum(parent, 0)], -1)
    if not np.isin(border, boundary_keys(f), assume_unique=True).all():
        raise RuntimeError(f"{p.kind} refinement reached the border of its local patch (object too small "
                           f"for a groove of {p.radius:.4f}?)")
    dist = np.linalg.norm(v - c, axis=1)
    patch = connected_patch(f, (dist < reach) & (nrm @ n0 > GROOVE_SPREAD), p.center)
    idx = np.flatnonzero(patch)
    best, taper = _path_distance(v[idx], c, t, b, paths, p.radius)
    x = np.minimum(best / p.radius, 1.0)
    prof = (1 - x) if p.kind == "crack" else (1 - x ** 2)
    w = np.zeros(len(v))
    # where the surface turns away from the centre's normal the groove fades out instead of ending
    # in a step at the patch border
    turn = np.clip((nrm[idx] @ n0 - GROOVE_SPREAD) / 0.2, 0.0, 1.0)
    w[idx] = np.where(x < 1, prof * taper * turn * turn * (3 - 2 * turn), 0.0)
    moved = w > 1e-6
    v[moved] -= p.depth * w[moved, None] * nrm[moved]
    f = np.vstack([rest, f])
    return DefectMesh(v, f, moved, moved[f].any(axis=1), origin=origin)


def _dent(mesh: trimesh.Trimesh, p: DefectParams) -> DefectMesh:
    """Bulge (+) or concavity (−): a local push along the centre's normal, ``(1 − r²)²`` of the
    distance ``r`` from the centre (in radii). Every vertex within the radius moves (the front face,
    and on a thin wall the face behind it, so the wall keeps its thickness), and the push falls to
    zero with a zero slope at the radius: it blends into the surface with no seam or step."""
    v = np.array(mesh.vertices, dtype=float)
    n0, _, _ = local_frame(mesh.vertex_normals[p.center])
    r = np.linalg.norm(v - v[p.center], axis=1) / p.radius
    w = np.where(r < 1, (1 - np.minimum(r, 1) ** 2) ** 2, 0.0)
    moved = w > 1e-6
    sign = 1.0 if p.kind == "bulge" else -1.0
    v[moved] += sign * p.depth * w[moved, None] * n0
    f = np.asarray(mesh.faces)
    return DefectMesh(v, f, moved, moved[f].any(axis=1), origin=np.arange(len(v)))


def _cutter(mesh: trimesh.Trimesh, p: DefectParams) -> trimesh.Trimesh:
    c = np.asarray(mesh.vertices[p.center], dtype=float)
    n0, _, _ = local_frame(mesh.vertex_normals[p.center])
    if p.kind == "hole":
        outside = 0.5 * p.radius
        length = p.depth + outside
        cyl = trimesh.creation.cylinder(radius=p.radius, height=length, sections=48)
        cyl.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], n0))
        cyl.apply_translation(c + n0 * (outside - length / 2))
        return cyl
    # A lumpy ball (low frequencies) with sharp creases (ridged high frequencies): the fracture
    # surface it leaves is jagged and faceted, not a smooth scoop.
    ball = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    g = np.random.default_rng(p.noise_seed)
    u = ball.vertices / np.linalg.norm(ball.vertices, axis=1, keepdims=True)
    bump = np.zeros(len(u))
    for _ in range(5):
        k = g.normal(size=3)
        bump += g.uniform(0.05, 0.1) * np.sin(float(g.uniform(2, 4)) * (u @ (k / np.linalg.norm(k))) + g.uniform(0, 2 * np.pi))
    for _ in range(9):
        k = g.normal(size=3)
        phase = u @ (k / np.linalg.norm(k)) * float(g.uniform(7, 16)) + g.uniform(0, 2 * np.pi)
        bump -= g.uniform(0.02, 0.045) * np.abs(np.sin(phase))
    stretch = np.diag(g.uniform(0.8, 1.25, 3))
    ball = trimesh.Trimesh((u * (1.0 + bump)[:, None]) @ stretch * p.radius, ball.faces, process=False)
    ball.apply_translation(c + 0.15 * p.radius * n0)
    return ball


def _face_keys(f: np.ndarray, nv: int) -> np.ndarray:
    s = np.sort(f, axis=1).astype(np.int64)
    return (s[:, 0] * nv + s[:, 1]) * nv + s[:, 2]


def _rim_band(vertices: np.ndarray, faces: np.ndarray, seeds: np.ndarray, rim: float) -> np.ndarray:
    """Faces with a vertex within ``rim`` of a seed vertex."""
    near = np.zeros(len(vertices), bool)
    if seeds.any() and rim > 0:
        d, _ = cKDTree(vertices[seeds]).query(vertices, k=1, distance_upper_bound=rim)
        near = np.isfinite(d)
    near |= seeds
    return near[faces].any(axis=1)


def _remove(mesh: trimesh.Trimesh, p: DefectParams) -> DefectMesh:
    orig_v = np.asarray(mesh.vertices, dtype=float)
    cutter = _cutter(mesh, p)
    if mesh.is_volume:
        res = csg.difference(mesh, [cutter])
        v = np.array(res.vertices, dtype=float)
        f = np.asarray(res.faces, dtype=np.int64)
        tree = per_mesh(mesh, "vertex_tree", lambda: cKDTree(orig_v))
        origin = csg.match_vertices(orig_v, v, tol=1e-9 * float(np.max(mesh.extents)), tree=tree)
        v[origin >= 0] = orig_v[origin[origin >= 0]]
        of = origin[f]
        nv = len(orig_v)
        changed = (of < 0).any(axis=1)
        changed[~changed] = ~np.isin(_face_keys(of[~changed], nv), _face_keys(np.asarray(mesh.faces), nv))
        seeds = np.zeros(len(v), bool)
        seeds[f[changed].ravel()] = True
    else:  # open cut: drop the faces inside the cutter, keep every remaining vertex where it was
        inside = cutter.contains(mesh.triangles_center)
        keep_f = np.asarray(mesh.faces)[~inside]
        used = np.unique(keep_f)
        remap = -np.ones(len(orig_v), np.int64)
        remap[used] = np.arange(len(used))
        v, f, origin = orig_v[used], remap[keep_f], used.astype(np.int64)
        boundary = np.zeros(len(orig_v), bool)
        boundary[np.asarray(mesh.faces)[inside].ravel()] = True
        seeds = boundary[used]
        changed = np.zeros(len(f), bool)
    face_mask = changed | _rim_band(v, f, seeds, p.rim)
    vertex_mask = np.zeros(len(v), bool)
    vertex_mask[f[face_mask].ravel()] = True
    return DefectMesh(v, f, vertex_mask, face_mask, origin=origin)


def apply_defect(mesh: trimesh.Trimesh, params: DefectParams) -> DefectMesh:
    """The defective mesh with its exact masks (see the module docstring for what they mean)."""
    if not 0 <= params.center < len(mesh.vertices):
        raise ValueError(f"defect_params.center {params.center} is out of range for a mesh of "
                         f"{len(mesh.vertices)} vertices")
    if not (params.radius > 0 and np.isfinite(params.depth)):
        raise ValueError(f"defect_params: radius must be > 0 and depth finite (got {params.radius}, {params.depth})")
    if params.kind not in SUPPORTED:
        raise ValueError(f"unknown defect type {params.kind!r} (have: {', '.join(SUPPORTED)})")
    return _CUTS.get(mesh, json.dumps(params.to_json(), sort_keys=True), lambda: _read_only(_cut(mesh, params)))


# The last cuts: planning cuts a defect at each calibration step and again, with the chosen
# parameters, to predict the orbit's visibility (and the render stage a third time). The same mesh
# and parameters give the same cut, so the last few are kept (a few MB each).
_CUTS = MeshMemo(8)


def _cut(mesh: trimesh.Trimesh, params: DefectParams) -> DefectMesh:
    if params.kind in ("crack", "scratch"):
        return _groove(mesh, params)
    if params.kind in ("bulge", "concavity"):
        return _dent(mesh, params)
    return _remove(mesh, params)


def _read_only(dm: DefectMesh) -> DefectMesh:
    """A shared cut must not be changed in place by one of its users."""
    for a in (dm.vertices, dm.faces, dm.vertex_mask, dm.face_mask, dm.origin):
        if a is not None:
            a.flags.writeable = False
    return dm
