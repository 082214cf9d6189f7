"""Surfaces of revolution from a 2-D profile (vases, bowls, cups, bottles)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import trimesh


def resample_profile(points: Sequence[Sequence[float]], count: int) -> np.ndarray:
    """Resample a polyline ``[(r, z), ...]`` to ``count`` points evenly spaced by arc length.

    Even spacing gives a vertex density that a defect can be carved into anywhere on the surface.
    """
    p = np.asarray(points, dtype=float)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], count)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def revolve_profile(profile: Sequence[Sequence[float]], sections: int = 96, samples: int = 96) -> trimesh.Trimesh:
    """Revolve a closed-on-axis profile (first and last ``r`` = 0) into a watertight mesh."""
    p = np.asarray(profile, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
        raise ValueError("profile must be a list of at least three [r, z] points")
    if abs(p[0, 0]) > 1e-9 or abs(p[-1, 0]) > 1e-9:
        raise ValueError("profile must start and end on the axis (r = 0) to be watertight")
    if (p[:, 0] < 0).any():
        raise ValueError("profile radii must be >= 0")
    line = resample_profile(p, samples)
    mesh = trimesh.creation.revolve(line, sections=sections)
    mesh.merge_vertices()
    mesh.remove_unreferenced_vertices()
    return mesh


def normalize(mesh: trimesh.Trimesh, height: float = 1.0) -> trimesh.Trimesh:
    """Scale so the largest extent is ``height``, centre on the z axis, rest the base on z = 0."""
    m = mesh.copy()
    lo, hi = m.bounds
    m.apply_translation([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    m.apply_scale(height / float(np.max(hi - lo)))
    return m
