"""Turn a job into a fully resolved scene spec for Blender: mesh file, look, and one camera pose per frame.

Everything geometric is decided here, on the host, so the annotation, the visibility prediction and
Blender all see the same numbers. The spec's shape is :class:`pipeline.scene_spec.SceneSpec`; the
meshes come from :mod:`pipeline.scenery.meshes` (shared with planning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..config import Config
from ..objects import DefectMesh
from ..scene_spec import SENSOR_FIT, SENSOR_WIDTH_MM, Camera, CameraFrame, DepthOfField, Environment, Floor, \
    Material, Paint, Region, RenderSettings, SceneSpec
from ..scenery.meshes import build_mesh, build_meshes, build_twin
from ..scenery.orbit import camera_frames
from ..scenery.spec import resolve_look
from .region import margin_px

__all__ = ["DEFECT_PAINT", "SENSOR_WIDTH_MM", "build_mesh", "build_meshes", "build_twin", "camera_path",
           "scene_spec"]

# No emission: an emissive paint becomes a mesh light and changes light sampling (noise) everywhere.
DEFECT_PAINT = {"base_color": [0.9, 0.0, 0.0], "roughness": 0.5, "emission_strength": 0.0}


def camera_path(job: dict[str, Any], cfg: Config, mesh: DefectMesh) -> list[dict[str, list[float]]]:
    """One full orbit around the object's bounding-box centre (``pipeline/scenery/orbit.py``):
    the job's elevation, a distance fitted to the object's bounds, start azimuth and jitter."""
    r = cfg.render
    return camera_frames(job["camera"], mesh.vertices, r.width, r.height, r.orbit_frames)


def scene_spec(job: dict[str, Any], cfg: Config, mesh: DefectMesh, mesh_path: Path, output: Path,
               twin_path: Optional[Path] = None) -> dict[str, Any]:
    """The JSON that ``blender_scripts/render_job.py`` executes (a :class:`SceneSpec`'s JSON form);
    ``twin_path`` (the defect-free twin's mesh) adds the evidence pass."""
    r = cfg.render
    raw = resolve_look({
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
    cam = raw["camera"]
    spec = SceneSpec(
        job_id=raw["job_id"], mesh=raw["mesh"], output=raw["output"], has_defect=raw["has_defect"],
        marked=raw["marked"], region=Region(**raw["region"]), material=Material.from_json(raw["material"], "material"),
        defect_material=Paint(**raw["defect_material"]), floor=Floor.from_json(raw["floor"], "floor"),
        environment=Environment.from_json(raw["environment"], "environment"),
        camera=Camera(lens_mm=cam["lens_mm"], sensor_width_mm=SENSOR_WIDTH_MM, sensor_fit=SENSOR_FIT,
                      frames=[CameraFrame(**f) for f in cam["frames"]],
                      dof=DepthOfField(**cam["dof"]) if "dof" in cam else None),
        render=RenderSettings(**raw["render"]), pose=raw["pose"], twin_mesh=raw.get("twin_mesh"))
    # The typed spec is checked as Blender will read it (a wrong type fails here, on the host).
    return SceneSpec.from_json(spec.to_json()).to_json()
