"""Glue between the planner and the scenery samplers: every look/pose/camera choice of a job, one
job's predicted visibility (:func:`predict_job`, run per object by the planner's process pool), and
the pass over all jobs that turns predictions into intervals and, when a target share is set,
start azimuths (:func:`plan_visibility`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import Config
from ..ids import clip_windows
from ..seeds import rng_for
from .catalog import load_catalog
from .looks import sample_environment, sample_floor, sample_material
from .orbit import camera_frames, sample_camera
from .meshes import build_mesh
from .pose import sample_pose
from .visibility import allocate_counts, clip_flags, predict_pixels, predicted_intervals


def sample_scene(cfg: Config, jid: str) -> dict[str, Any]:
    """The job's ``pose``, ``camera``, ``material``, ``environment`` and ``floor``, each drawn from
    its own sha256-derived generator so that changing one sampler never shifts the others."""
    s = cfg.scene
    cat = load_catalog(s.assets)
    return {
        "pose": sample_pose(rng_for(cfg.seed, jid, "pose"), s.yaw_deg, s.tilt_deg, s.scale),
        "camera": sample_camera(rng_for(cfg.seed, jid, "camera"), s.elevation_deg, s.distance_factor, s.lens_mm,
                                s.jitter_deg, s.jitter_distance, s.center_y, s.fstop),
        "material": sample_material(rng_for(cfg.seed, jid, "material"), cat, s.material_groups),
        "environment": sample_environment(rng_for(cfg.seed, jid, "environment"), cat, s.environments, s.hdri_dir,
                                          s.hdri_share, s.hdri_strength),
        "floor": sample_floor(rng_for(cfg.seed, jid, "floor"), cat, s.floors),
    }


def threshold_px(cfg: Config) -> float:
    """The visibility threshold of the config's frame size (:meth:`~pipeline.config.AnnotateConfig.threshold_px`)."""
    return cfg.annotate.threshold_px(cfg.render.width, cfg.render.height)


def _prediction(cfg: Config, px: np.ndarray) -> dict[str, Any]:
    r, a = cfg.render, cfg.annotate
    iv = predicted_intervals(px, threshold_px(cfg), a.min_len, a.min_gap)
    return {"predicted_intervals": iv, "predicted_clips": clip_flags(iv, r.orbit_frames, r.clip_frames),
            "predicted_px_max": round(float(px.max()) if px.size else 0.0, 2)}


def predict_job(job: dict[str, Any], cfg: Config) -> np.ndarray | str:
    """Predicted defect pixels per frame of one defective job, or the error text if its mesh cannot
    be built (that job then fails alone at render time, not the plan). With a target share the
    orbit is predicted from azimuth 0 (:func:`plan_visibility` then rolls it to the chosen start)."""
    r, vc = cfg.render, cfg.scene.visibility
    start = 0.0 if vc.target_share is not None else None
    try:  # the mesh the render stage writes for Blender
        mesh = build_mesh(job, cfg)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    frames = camera_frames(job["camera"], mesh.vertices, r.width, r.height, r.orbit_frames, start)
    return predict_pixels(mesh, frames, job["camera"]["lens_mm"], r.width, r.height, vc.samples)


def plan_visibility(jobs: list[dict[str, Any]], cfg: Config, pixels: dict[str, np.ndarray | str]) -> None:
    """Add ``job["visibility"]`` to every job (in place) from ``pixels`` (:func:`predict_job` of
    each defective job, by job id); with ``scene.visibility.target_share`` set, also move each
    defective job's start azimuth to a whole-frame offset chosen so that the predicted share of
    clips showing the defect (over all clips) is as close to the target as the objects allow.
    Normal objects show nothing by construction."""
    vc, r = cfg.scene.visibility, cfg.render
    n_clips = len(clip_windows(r.orbit_frames, r.clip_frames))
    empty = {"predicted_intervals": [], "predicted_clips": [0] * n_clips, "predicted_px_max": 0.0}
    if not vc.predict:
        return

    per_job: dict[str, np.ndarray] = {}
    for job in jobs:
        if not job["defect"]:
            job["visibility"] = dict(empty)
            continue
        px = pixels[job["job_id"]]
        if isinstance(px, str):  # a broken mesh fails its own job at render time, not the plan
            job["visibility"] = {**empty, "error": px}
            continue
        per_job[job["job_id"]] = px
        if vc.target_share is None:
            job["visibility"] = _prediction(cfg, px)
    if vc.target_share is None or not per_job:
        return
    step = max(1, r.orbit_frames // vc.candidates)
    shifts = list(range(0, r.orbit_frames, step))
    defective = [j for j in jobs if j["job_id"] in per_job]
    counts = []
    for job in defective:
        px = per_job[job["job_id"]]
        counts.append([sum(_prediction(cfg, np.roll(px, -s))["predicted_clips"]) for s in shifts])
    target = int(round(vc.target_share * n_clips * len(jobs)))
    wanted = allocate_counts([sorted(set(c)) for c in counts], target, rng_for(cfg.seed, "visibility", "plan"))
    for job, c, w in zip(defective, counts, wanted):
        ok = [s for s, k in zip(shifts, c) if k == w]
        s = ok[int(rng_for(cfg.seed, job["job_id"], "camera-start").integers(len(ok)))]
        job["camera"]["start_azimuth_deg"] = round(s * 360.0 / r.orbit_frames, 6)
        job["visibility"] = {**_prediction(cfg, np.roll(per_job[job["job_id"]], -s)),
                             "target_share": vc.target_share}
