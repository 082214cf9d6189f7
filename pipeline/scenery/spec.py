"""Resolve a job's relative look choices into absolute values for the Blender scene spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import Config
from ..objects.mesh import DefectMesh
from .looks import place_floor, resolve_hdri, resolve_lights


def resolve_look(spec: dict[str, Any], job: dict[str, Any], cfg: Config, mesh: DefectMesh) -> dict[str, Any]:
    """Complete ``spec`` in place (and return it): environment lights at absolute positions and
    powers (and the file of a Blender-shipped HDRI), the floor placed below the object and sized
    for the orbit, depth of field, extra render settings."""
    v = mesh.vertices
    lo, hi = v.min(axis=0), v.max(axis=0)
    center, radius = (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0)
    cams = np.array([f["location"] for f in spec["camera"]["frames"]], dtype=float)
    spec["environment"] = {**resolve_hdri(job["environment"]), "lights": resolve_lights(job["environment"], center, radius)}
    spec["floor"] = place_floor(job["floor"], v, cams)
    if job["camera"].get("fstop"):
        # Depth of field focused on the object's centre (Blender tracks it per frame).
        spec["camera"]["dof"] = {"fstop": job["camera"]["fstop"], "focus": [round(float(x), 6) for x in center]}
    spec["pose"] = job["pose"]
    spec["render"].update({"adaptive_threshold": cfg.render.adaptive_threshold, "profile": cfg.render.profile})
    return spec
