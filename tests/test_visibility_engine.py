"""The Embree visibility caster against the reference numpy caster (tests/reference_visibility.py).

Tolerance (docs/performance.md): on every frame the predicted defect pixels agree within 2 % of the
orbit's peak, and the predicted visible intervals are equal. The two differ only where a crack or
dent folds the surface over itself: Embree, like the rendered mask, counts a back face in front of
a sample as hiding it, while the reference tests front-facing faces only (here 1.5 % of the peak
on one default-config crack, 0 on the other eleven orbits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Config, load_config
from pipeline.objects.sources import object_mesh
from pipeline.plan import plan_jobs
from pipeline.scenery.orbit import camera_frames
from pipeline.scenery.planning import threshold_px
from pipeline.scenery.pose import posed_mesh
from pipeline.scenery.visibility import predict_pixels, predicted_intervals
from reference_visibility import reference_pixels

ROOT = Path(__file__).resolve().parents[1]
PEAK_TOLERANCE = 0.02
EVERY = 5  # every fifth frame (10° steps): the reference caster takes seconds per orbit


def _default() -> Config:
    return load_config(ROOT / "manifests" / "default.yaml")


def _paper() -> Config:
    """Three categories of the paper config (1920×1080, local defects, its visibility threshold)."""
    base = load_config(ROOT / "manifests" / "mmviad.yaml").model_dump()
    base["objects"].update(categories=["bottle1", "cap3", "vase7"], objects_per_category=2, normal_share=0.0)
    return Config.model_validate(base)


CASES = {"default": _default, "paper": _paper}
_JOBS: dict[str, tuple[Config, list[dict]]] = {}


def _jobs(which: str) -> tuple[Config, list[dict]]:
    if which not in _JOBS:
        cfg = CASES[which]()
        _JOBS[which] = cfg, [j for j in plan_jobs(cfg, progress=False, workers=1) if j["defect"]]
    return _JOBS[which]


def test_the_cases_cover_every_defect_type():
    kinds = {j["defect"] for which in CASES for j in _jobs(which)[1]}
    assert kinds == {"crack", "scratch", "concavity", "bulge", "broken", "hole"}


@pytest.mark.parametrize("which,i", [("default", i) for i in range(6)] + [("paper", i) for i in range(6)])
def test_embree_agrees_with_the_reference_caster(which, i):
    cfg, jobs = _jobs(which)
    job = jobs[i]
    r = cfg.render
    mesh = posed_mesh(object_mesh(job, cfg), job["pose"])
    frames = camera_frames(job["camera"], mesh.vertices, r.width, r.height, r.orbit_frames)[::EVERY]
    args = (mesh, frames, job["camera"]["lens_mm"], r.width, r.height, cfg.scene.visibility.samples)
    fast, ref = predict_pixels(*args), reference_pixels(*args)
    assert ref.max() > threshold_px(cfg), f"{job['job_id']}: the defect never shows; a vacuous comparison"
    assert np.abs(fast - ref).max() <= PEAK_TOLERANCE * ref.max(), job["job_id"]
    a = cfg.annotate
    assert predicted_intervals(fast, threshold_px(cfg), a.min_len, a.min_gap) == \
        predicted_intervals(ref, threshold_px(cfg), a.min_len, a.min_gap), job["job_id"]


def test_a_back_face_in_front_of_the_defect_hides_it_as_in_the_render():
    """The one deliberate difference from the reference: a face turned away from the camera still
    blocks the view (Cycles' first hit, and so the mask, would be that face)."""
    import trimesh

    from pipeline.objects.mesh import DefectMesh

    box = trimesh.creation.box((1.0, 1.0, 1.0))
    defect = box.face_normals[:, 0] > 0.9                      # the +x side, seen from +x
    # one large triangle at x = 2 whose normal points back at the box (away from the camera)
    wall = np.array([[2.0, -3.0, -3.0], [2.0, 0.0, 3.0], [2.0, 3.0, -3.0]])
    v = np.vstack([box.vertices, wall])
    f = np.vstack([box.faces, [[8, 9, 10]]])
    normal = np.cross(wall[1] - wall[0], wall[2] - wall[0])
    assert normal[0] < 0                                       # back-facing for a camera on +x
    mesh = DefectMesh(v, f, np.zeros(len(v), bool), np.append(defect, False))
    frames = [{"location": [5.0, 0.0, 0.0], "target": [0.0, 0.0, 0.0]}]
    assert predict_pixels(mesh, frames, 35.0, 320, 180)[0] == 0
    assert reference_pixels(mesh, frames, 35.0, 320, 180)[0] > 1000
