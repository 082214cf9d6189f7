"""The job's object in world space, as planning (visibility prediction) and rendering both build it.

One definition below both stages: ``pipeline/scenery/planning.py`` predicts visibility from exactly
the mesh that ``pipeline/render/`` writes for Blender.
"""

from __future__ import annotations

from typing import Any, Optional

from ..config import Config
from ..objects.mesh import DefectMesh
from ..objects.sources import library_mesh, object_mesh
from .pose import posed_mesh


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
