"""Object pose: yaw about z, a small tilt about a horizontal axis, uniform scale, base on z = 0."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..objects.mesh import DefectMesh
from .params import sample


def sample_pose(rng: np.random.Generator, yaw_deg: tuple[float, float], tilt_deg: tuple[float, float],
                scale: tuple[float, float]) -> dict[str, Any]:
    return {"yaw_deg": sample(rng, list(yaw_deg)), "tilt_deg": sample(rng, list(tilt_deg)),
            "tilt_axis_deg": round(float(rng.uniform(0, 360)), 4), "scale": sample(rng, list(scale))}


def pose_matrix(pose: dict[str, Any]) -> np.ndarray:
    """3×3 rotation-and-scale: yaw first, then the tilt (``tilt_deg`` about the horizontal axis at
    ``tilt_axis_deg``); jobs without tilt keys are untilted."""
    yaw = math.radians(pose["yaw_deg"])
    cy, sy = math.cos(yaw), math.sin(yaw)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    t = math.radians(pose.get("tilt_deg", 0.0))
    a = math.radians(pose.get("tilt_axis_deg", 0.0))
    k = np.array([math.cos(a), math.sin(a), 0.0])
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rt = np.eye(3) + math.sin(t) * kx + (1 - math.cos(t)) * kx @ kx  # Rodrigues
    return rt @ rz * float(pose["scale"])


def posed_mesh(dm: DefectMesh, pose: dict[str, Any], lift_from: DefectMesh | None = None) -> DefectMesh:
    """``dm`` in world space: posed, then lifted so its lowest point rests on z = 0 (or, with
    ``lift_from``, by the lift that rests *that* mesh on z = 0: the defect-free twin of an object
    must sit exactly where the object's undamaged faces sit, even when the defect is its lowest part)."""
    rot = pose_matrix(pose).T
    v = dm.vertices @ rot
    v[:, 2] -= (v if lift_from is None else lift_from.vertices @ rot)[:, 2].min()
    return DefectMesh(v, dm.faces, dm.vertex_mask, dm.face_mask)
