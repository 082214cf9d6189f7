"""Turn a job into a fully resolved scene spec for Blender: mesh file, look, and one camera pose per frame.

Everything geometric is decided here, on the host, so the annotation, the visibility prediction and
Blender all see the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional


from ..config import Config
from ..objects import DefectMesh
from ..objects.sources import library_mesh, object_mesh
from ..scenery.orbit import camera_frames
from ..scenery.pose import posed_mesh
from ..scenery.spec import resolve_look
from .region import margin_px

# No emission: an emissive paint becomes a mesh light and changes light sampling (noise) everywhere.
DEFECT_PAINT = {"base_color": [0.9, 0.0, 0.0], "roughness": 0.5, "emission_strength": 0.0}
SENSOR_WIDTH_MM = 36.0  # Blender's default sensor, fit horizontally


def build_mesh(job: dict[str, Any], cfg: Config) -> DefectMesh:
    """The job's object in world space: normalized mesh with its defect (procedural library or a loaded
    Anomaly-ShapeNet mesh) → pose (yaw, tilt, scale), base on z = 0."""
    return posed_mesh(object_mesh(job, cfg), job["pose"])


def build_twin(job: dict[str, Any], cfg: Config, obj: DefectMesh) -> Optional[DefectMesh]:
    """The defect-free twin of a defective job's object, posed exactly like the object (same
    rotation and lift, so every face the defect left alone coincides); ``None`` for a normal object.
    ``obj`` is the job's object before posing (:func:`~pipeline.objects.sources.object_mesh`), whose
    lift the twin takes.

    Only the procedural library keeps the mesh a defect was applied to; an Anomaly-ShapeNet sample
    has no defect-free original (the config refuses ``annotate.evidence: twin`` for it)."""
    source = job["object"]
    if not source.get("defect_params"):
        return None
    if source.get("source") == "anomaly_shapenet":
        raise ValueError(f"job {job['job_id']}: an anomaly_shapenet object has no defect-free twin")
    base = library_mesh(str(cfg.objects.source.library or ""), job["category"])
    return posed_mesh(DefectMesh.normal(base.vertices, base.faces), job["pose"], lift_from=obj)


def build_meshes(job: dict[str, Any], cfg: Config, twin: bool) -> tuple[DefectMesh, Optional[DefectMesh]]:
    """:func:`build_mesh` and, when ``twin``, :func:`build_twin`, applying the defect once."""
    obj = object_mesh(job, cfg)
    return posed_mesh(obj, job["pose"]), build_twin(job, cfg, obj) if twin else None


def vertical_fov(cfg: Config, lens_mm: float) -> float:
    sensor_h = SENSOR_WIDTH_MM * cfg.render.height / cfg.render.width
    return 2.0 * math.atan(sensor_h / (2.0 * lens_mm))


def camera_path(job: dict[str, Any], cfg: Config, mesh: DefectMesh) -> list[dict[str, list[float]]]:
    """One full orbit around the object's bounding-box centre (``pipeline/scenery/orbit.py``):
    the job's elevation, a distance fitted to the object's bounds, start azimuth and jitter."""
    r = cfg.render
    return camera_frames(job["camera"], mesh.vertices, r.width, r.height, r.orbit_frames)


def scene_spec(job: dict[str, Any], cfg: Config, mesh: DefectMesh, mesh_path: Path, output: Path,
               twin_path: Optional[Path] = None) -> dict[str, Any]:
    """The JSON that ``blender_scripts/render_job.py`` executes; ``twin_path`` (the defect-free twin's
    mesh) adds the evidence pass."""
    r = cfg.render
    return resolve_look({
        "job_id": job["job_id"],
        "mesh": str(mesh_path),
        **({"twin_mesh": str(twin_path)} if twin_path is not None else {}),
        "output": str(output),
        "has_defect": mesh.has_defect,
        "marked": r.marked,
        "region": {"margin_px": margin_px(r.region_margin, r.width), "scope": r.region_scope},
        "material": job["material"],
        "defect_material": DEFECT_PAINT,
        "floor": job["floor"],
        "environment": job["environment"],
        "camera": {"lens_mm": job["camera"]["lens_mm"], "frames": camera_path(job, cfg, mesh)},
        "render": {"width": r.width, "height": r.height, "samples": r.samples, "denoise": r.denoise,
                   "fps": r.fps, "device": r.device, "threads": r.threads, "persistent_data": r.persistent_data,
                   "seed": job["seeds"]["cycles"]},
    }, job, cfg, mesh)
