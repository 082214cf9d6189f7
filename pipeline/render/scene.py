"""Turn a job into a fully resolved scene spec for Blender: mesh file, look, and one camera pose per frame.

Everything geometric is decided here, on the host, so the annotation, the visibility prediction and
Blender all see the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from ..config import Config
from ..objects import DefectMesh
from ..objects.sources import object_mesh
from ..plan import orbit_azimuths

# No emission: an emissive paint becomes a mesh light and changes light sampling (noise) everywhere.
DEFECT_PAINT = {"base_color": [0.9, 0.0, 0.0], "roughness": 0.5, "emission_strength": 0.0}
SENSOR_WIDTH_MM = 36.0  # Blender's default sensor, fit horizontally


def build_mesh(job: dict[str, Any], cfg: Config) -> DefectMesh:
    """The job's object in world space: normalized mesh with its defect → pose (yaw, scale), base on z = 0."""
    dm = object_mesh(job, cfg)  # procedural library or a loaded (Anomaly-ShapeNet) mesh, normalized
    yaw = math.radians(job["pose"]["yaw_deg"])
    rot = trimesh.transformations.rotation_matrix(yaw, [0, 0, 1])[:3, :3]
    v = dm.vertices @ rot.T * job["pose"]["scale"]
    v[:, 2] -= v[:, 2].min()
    return DefectMesh(v, dm.faces, dm.vertex_mask, dm.face_mask)


def vertical_fov(cfg: Config, lens_mm: float) -> float:
    sensor_h = SENSOR_WIDTH_MM * cfg.render.height / cfg.render.width
    return 2.0 * math.atan(sensor_h / (2.0 * lens_mm))


def camera_path(job: dict[str, Any], cfg: Config, mesh: DefectMesh) -> list[dict[str, list[float]]]:
    """One full orbit: a circle at the job's elevation around the object's bounding-sphere centre.

    The distance is ``distance_factor`` × the distance at which the bounding sphere just fits the
    vertical field of view, so every object fills the frame the same way whatever its size."""
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    center = (lo + hi) / 2.0
    radius = float(np.linalg.norm(hi - lo) / 2.0)
    cam = job["camera"]
    fit = radius / math.sin(vertical_fov(cfg, cam["lens_mm"]) / 2.0)
    dist = cam["distance_factor"] * fit / 2.2  # 2.2: factors near 1.2–1.5 × fit look right; keep config ranges readable
    el = math.radians(cam["elevation_deg"])
    frames = []
    for az in orbit_azimuths(cam["start_azimuth_deg"], cfg.render.orbit_frames):
        loc = center + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        frames.append({"location": [round(float(x), 6) for x in loc],
                       "target": [round(float(x), 6) for x in center]})
    return frames


def scene_spec(job: dict[str, Any], cfg: Config, mesh: DefectMesh, mesh_path: Path, output: Path) -> dict[str, Any]:
    """The JSON that ``blender_scripts/render_job.py`` executes."""
    r = cfg.render
    return {
        "job_id": job["job_id"],
        "mesh": str(mesh_path),
        "output": str(output),
        "has_defect": mesh.has_defect,
        "marked": r.marked,
        "material": job["material"],
        "defect_material": DEFECT_PAINT,
        "floor": job["floor"],
        "environment": job["environment"],
        "camera": {"lens_mm": job["camera"]["lens_mm"], "frames": camera_path(job, cfg, mesh)},
        "render": {"width": r.width, "height": r.height, "samples": r.samples, "denoise": r.denoise,
                   "fps": r.fps, "device": r.device, "threads": r.threads, "persistent_data": r.persistent_data,
                   "seed": job["seeds"]["cycles"]},
    }
