"""The mesh primitives planning runs thousands of times, checked against plain reference versions:
integer edge keys against lexicographic unique rows, the border and the connected patch against
a walk over the edges, the vectorized point–polyline distance against a point-by-point loop; and
the cut memo (a shared cut is read-only, a changed mesh gets a fresh one)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import trimesh

from pipeline.objects.defects import _polyline_distance, apply_defect, choose_defect
from pipeline.objects.geometry import (boundary_keys, connected_patch, edge_ends, edge_keys, mesh_ray_hits, ray_hits,
                                      refine)
from pipeline.objects.sources import library_mesh


def _random_faces(rng: np.random.Generator, n_faces: int, n_vertices: int) -> np.ndarray:
    f = np.stack([rng.choice(n_vertices, 3, replace=False) for _ in range(n_faces)])
    return f.astype(np.int64)


def _edges(faces: np.ndarray) -> list[tuple[int, int]]:
    return [tuple(sorted((int(f[i]), int(f[(i + 1) % 3])))) for f in faces for i in range(3)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_keys_sort_and_invert_like_unique_rows(seed):
    faces = _random_faces(np.random.default_rng(seed), 300, 60)
    rows = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    want, want_inv = np.unique(rows, axis=0, return_inverse=True)
    keys, inv = np.unique(edge_keys(faces), return_inverse=True)
    assert np.array_equal(edge_ends(keys), want)
    assert np.array_equal(inv.ravel(), want_inv.ravel())


def test_boundary_keys_are_the_edges_of_one_face():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    faces = np.asarray(mesh.faces)[:200]  # an open patch of a closed surface
    counts = Counter(_edges(faces))
    want = sorted(e for e, n in counts.items() if n == 1)
    assert want and [tuple(e) for e in edge_ends(boundary_keys(faces)).tolist()] == want
    assert boundary_keys(np.asarray(mesh.faces)).size == 0  # closed: no border


def test_connected_patch_is_what_a_walk_over_the_edges_reaches():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    faces = np.asarray(mesh.faces)
    v = np.asarray(mesh.vertices)
    cand = (np.abs(v[:, 2]) > 0.3)  # two caps: only the one holding the centre is its patch
    center = int(np.argmax(v[:, 2]))
    links: dict[int, set[int]] = {}
    for a, b in _edges(faces):
        if cand[a] and cand[b]:
            links.setdefault(a, set()).add(b)
            links.setdefault(b, set()).add(a)
    seen, todo = {center}, [center]
    while todo:
        for nb in links.get(todo.pop(), ()):
            if nb not in seen:
                seen.add(nb)
                todo.append(nb)
    got = connected_patch(faces, cand, center)
    assert set(np.flatnonzero(got).tolist()) == seen
    assert 0 < got.sum() < cand.sum()


def test_refine_keeps_the_surface_conforming():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    select = v[f].mean(axis=1)[:, 0] > 0.5
    v2, f2, _, parent = refine(v, f, np.asarray(mesh.vertex_normals), select)
    assert len(f2) > len(f) and boundary_keys(f2).size == 0  # closed and without T-junctions
    assert np.array_equal(v2[parent >= 0], v)


def test_culled_ray_hits_equal_testing_every_triangle():
    mesh = library_mesh("", "cup1")
    rng = np.random.default_rng(3)
    n = mesh.vertex_normals
    hits = 0
    for i in rng.choice(len(mesh.vertices), 60, replace=False):  # the planner's two kinds of ray, and random ones
        for o, d in ((mesh.vertices[i] + 1e-3 * n[i], rng.normal(size=3)), (mesh.vertices[i] - 1e-4 * n[i], -n[i])):
            want = ray_hits(mesh.triangles, o, d)
            assert np.array_equal(mesh_ray_hits(mesh, o, d), want)
            hits += want.size
    assert hits > 60


def test_polyline_distance_matches_a_point_by_point_loop():
    rng = np.random.default_rng(5)
    path = np.cumsum(rng.normal(size=(7, 2)), axis=0)
    uv = rng.normal(size=(50, 2)) * 3
    d, s = _polyline_distance(uv, path)
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    for i, p in enumerate(uv):
        best = None
        for j, (a, ab) in enumerate(zip(path[:-1], seg)):
            t = min(max(float((p - a) @ ab / (ab @ ab)), 0.0), 1.0)
            dist = float(np.linalg.norm(p - (a + t * ab)))
            if best is None or dist < best[0]:
                best = (dist, (lengths[:j].sum() + t * lengths[j]) / lengths.sum())
        assert d[i] == pytest.approx(best[0], abs=1e-12) and s[i] == pytest.approx(best[1], abs=1e-12)


def test_a_cut_is_shared_read_only_and_fresh_for_a_changed_mesh():
    base = library_mesh("", "cup1").copy()
    p = choose_defect(base, "crack", np.random.default_rng(0), (0.02, 0.03), (0.05, 0.1))
    first = apply_defect(base, p)
    assert apply_defect(base, p) is first  # the calibration's last cut serves the prediction
    with pytest.raises(ValueError):
        first.vertices[0, 0] = 1.0
    base.vertices = base.vertices + [1.0, 0.0, 0.0]  # trimesh tracks the change: the old cut is stale
    again = apply_defect(base, p)
    assert again is not first
    assert again.vertices[:, 0].mean() == pytest.approx(first.vertices[:, 0].mean() + 1.0, abs=1e-3)
