"""Glue between the planner and the scenery samplers: every look/pose/camera choice of a job, and
the visibility pass over all jobs (prediction, and start azimuths when a target share is set)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from ..config import Config
from ..io import dumps
from ..seeds import rng_for
from .catalog import load_catalog
from .looks import sample_environment, sample_floor, sample_material
from .orbit import camera_frames, sample_camera
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


# Predictions are pure functions of the job's geometry; repeated planning in one process reuses them.
_CACHE: dict[str, np.ndarray] = {}


def threshold_px(cfg: Config) -> float:
    a, r = cfg.annotate, cfg.render
    return max(float(a.min_visible_px), a.min_visible_frac * r.width * r.height)


def _prediction(cfg: Config, px: np.ndarray) -> dict[str, Any]:
    r, a = cfg.render, cfg.annotate
    iv = predicted_intervals(px, threshold_px(cfg), a.min_len, a.min_gap)
    return {"predicted_intervals": iv, "predicted_clips": clip_flags(iv, r.orbit_frames, r.clip_frames),
            "predicted_px_max": round(float(px.max()) if px.size else 0.0, 2)}


def _predict_one(job: dict[str, Any], cfg: Config, start: float | None) -> np.ndarray | str:
    """Predicted defect pixels per frame of one job, or the error text if its mesh cannot be built."""
    from ..render.scene import build_mesh  # late: render.scene imports the planner

    r, vc = cfg.render, cfg.scene.visibility
    try:
        mesh = build_mesh(job, cfg)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    frames = camera_frames(job["camera"], mesh.vertices, r.width, r.height, r.orbit_frames, start)
    return predict_pixels(mesh, frames, job["camera"]["lens_mm"], r.width, r.height, vc.samples)


def _predict_all(jobs: list[dict[str, Any]], cfg: Config, start: float | None,
                 progress: bool = True) -> list[np.ndarray | str]:
    """Predictions in job order; spread over one process per core when there are enough jobs
    (each is about a second of numpy ray casting). The results do not depend on the pool."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    workers = min(os.cpu_count() or 1, max(1, len(jobs) // 4))
    fn = partial(_predict_one, cfg=cfg, start=start)
    if workers <= 1:
        return [fn(j) for j in tqdm(jobs, desc="visibility", unit="job",
                                          disable=not progress or len(jobs) < 16)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=4), total=len(jobs), desc="visibility", unit="job",
                         disable=not progress))


def plan_visibility(jobs: list[dict[str, Any]], cfg: Config, progress: bool = True) -> None:
    """Add ``job["visibility"]`` to every job (in place); with ``scene.visibility.target_share`` set,
    also move each defective job's start azimuth to a whole-frame offset chosen so that the
    predicted share of clips showing the defect (over all clips) is as close to the target as the
    objects allow. Normal objects show nothing by construction."""
    vc, r = cfg.scene.visibility, cfg.render
    n_clips = r.orbit_frames // r.clip_frames
    empty = {"predicted_intervals": [], "predicted_clips": [0] * n_clips, "predicted_px_max": 0.0}
    if not vc.predict:
        return

    per_job: dict[str, np.ndarray] = {}
    start = 0.0 if vc.target_share is not None else None
    keys = {}
    for job in jobs:
        if not job["defect"]:
            job["visibility"] = dict(empty)
            continue
        keys[job["job_id"]] = dumps([job["category"], job["object"], job["pose"], job["camera"], start, r.width,
                                     r.height, r.orbit_frames, vc.samples, str(cfg.objects.source.library)])
    todo = {k: j for j in jobs if (k := keys.get(j["job_id"])) is not None and k not in _CACHE}
    if len(_CACHE) + len(todo) > 4096:
        _CACHE.clear()
    for key, result in zip(todo, _predict_all(list(todo.values()), cfg, start, progress)):
        _CACHE[key] = result
    for job in jobs:
        key = keys.get(job["job_id"])
        if key is None:
            continue
        if isinstance(_CACHE[key], str):  # a broken mesh fails its own job at render time, not the plan
            job["visibility"] = {**empty, "error": _CACHE[key]}
            continue
        per_job[job["job_id"]] = _CACHE[key]
        if vc.target_share is None:
            job["visibility"] = _prediction(cfg, per_job[job["job_id"]])
    if vc.target_share is None or not per_job:
        return
    step = max(1, r.orbit_frames // vc.candidates)
    shifts = list(range(0, r.orbit_frames, step))
    defective = [j for j in jobs if j["defect"]]
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
