"""plan: resolve every random choice of every job and write ``<out>/jobs.jsonl``.

The file depends only on the config (and the object library): same config → byte-identical file,
whatever machine or shard count renders it later. Each job draws from its own sha256-derived seeds,
so adding a job never changes another job.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .config import Config
from .ids import DEFECT_TYPES, GOOD, job_id, validate_id
from .io import dumps, iter_jsonl, write_jsonl
from .seeds import cycles_seed, derive_seed, rng_for

JOB_FIELDS = ("job_id", "shard", "category", "group", "object_index", "defect", "trajectory", "object",
              "pose", "camera", "material", "environment", "floor", "seeds")


def allocate(weights: dict[str, float], total: int) -> list[str]:
    """Exact counts per key proportional to ``weights`` (largest remainder), in key order."""
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    quota = w / w.sum() * total
    counts = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return [k for k, c in zip(keys, counts) for _ in range(c)]


def shard_of(index: int, num_shards: int) -> int:
    """Round-robin over the stable job order, so shards are balanced across categories."""
    return index % num_shards


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _material(rng: np.random.Generator) -> dict[str, Any]:
    """A plain Principled material. Hues avoid red so the red defect paint stays distinguishable."""
    hue = float(rng.uniform(0.08, 0.92))
    sat = float(rng.uniform(0.15, 0.6))
    val = float(rng.uniform(0.45, 0.85))
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    metallic = float(rng.choice([0.0, 0.0, 0.0, 1.0]))
    return {"name": "metal" if metallic else "plastic", "base_color": [round(r, 4), round(g, 4), round(b, 4)],
            "roughness": round(float(rng.uniform(0.25, 0.6)), 4), "metallic": metallic}


def _environment(rng: np.random.Generator) -> dict[str, Any]:
    return {"kind": "sky", "sun_elevation_deg": round(float(rng.uniform(25, 65)), 3),
            "sun_rotation_deg": round(float(rng.uniform(0, 360)), 3),
            "strength": round(float(rng.uniform(0.02, 0.05)), 4),
            "sun_strength": round(float(rng.uniform(1.0, 2.0)), 4)}


def _floor(rng: np.random.Generator) -> dict[str, Any]:
    base = float(rng.uniform(0.25, 0.6))
    tint = rng.uniform(-0.05, 0.05, size=3)
    a = [round(float(np.clip(base + t, 0, 1)), 4) for t in tint]
    b = [round(float(np.clip(x * 0.75, 0, 1)), 4) for x in a]
    return {"kind": "checker", "color_a": a, "color_b": b, "scale": round(float(rng.uniform(4, 12)), 3),
            "roughness": round(float(rng.uniform(0.5, 0.9)), 4)}


def plan_jobs(cfg: Config) -> list[dict[str, Any]]:
    """All jobs of a config in a stable order (category, object index, trajectory)."""
    from .objects.sources import catalog  # objects import config; keep plan importable on its own

    cat_source = catalog(cfg)  # unknown categories fail before anything is written
    oc = cfg.objects
    slots = [(cat, i) for cat in oc.categories for i in range(oc.objects_per_category)]
    n_normal = int(round(oc.normal_share * len(slots)))
    labels = [GOOD] * n_normal + allocate(dict(sorted(oc.defects.items())), len(slots) - n_normal)
    order = rng_for(cfg.seed, "allocation", "plan").permutation(len(slots))
    labels = [labels[i] for i in order]

    jobs: list[dict[str, Any]] = []
    for (cat, idx), label in tqdm(list(zip(slots, labels)), desc="plan", unit="object", disable=len(slots) < 8):
        defect, obj = cat_source.resolve(cat, idx, label)
        group = cat_source.group(cat)
        for t in range(oc.trajectories_per_object):
            jid = job_id(cat, idx, defect, t)
            pose_rng = rng_for(cfg.seed, jid, "pose")
            cam_rng = rng_for(cfg.seed, jid, "camera")
            jobs.append({
                "job_id": jid, "category": cat, "group": group, "object_index": idx,
                "defect": defect, "trajectory": t, "object": obj,
                "pose": {"yaw_deg": round(_uniform(pose_rng, cfg.scene.yaw_deg), 4),
                         "scale": round(_uniform(pose_rng, cfg.scene.scale), 4)},
                "camera": {"elevation_deg": round(_uniform(cam_rng, cfg.scene.elevation_deg), 4),
                           "distance_factor": round(_uniform(cam_rng, cfg.scene.distance_factor), 4),
                           "start_azimuth_deg": round(float(cam_rng.uniform(0, 360)), 4),
                           "lens_mm": cfg.scene.lens_mm},
                "material": _material(rng_for(cfg.seed, jid, "material")),
                "environment": _environment(rng_for(cfg.seed, jid, "environment")),
                "floor": _floor(rng_for(cfg.seed, jid, "floor")),
                "seeds": {"cycles": cycles_seed(cfg.seed, jid), "qa": derive_seed(cfg.seed, jid, "qa")},
            })
    for i, job in enumerate(jobs):
        job["shard"] = shard_of(i, cfg.num_shards)
    return jobs


def write_plan(cfg: Config, out: Path) -> Path:
    """Write ``<out>/jobs.jsonl`` (atomically; unchanged bytes if it already matches)."""
    path = Path(out) / "jobs.jsonl"
    jobs = plan_jobs(cfg)
    text = "".join(dumps(j) + "\n" for j in jobs)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_jsonl(path, jobs)
    return path


def _number(job: dict[str, Any], key: str, field: str, lo: float | None = None) -> None:
    v = job[key].get(field) if isinstance(job.get(key), dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key}.{field}: expected a finite number, got {v!r}")
    if lo is not None and v <= lo:
        raise ValueError(f"{key}.{field}: must be > {lo}, got {v!r}")


def check_job(job: dict[str, Any]) -> None:
    """Raise ``ValueError("<field>: <problem>")`` for a job record that the later stages cannot use
    (a hand-edited ``jobs.jsonl``): missing fields, wrong types, unknown defect or object source."""
    missing = [k for k in JOB_FIELDS if k not in job]
    if missing:
        raise ValueError(f"{missing[0]}: missing field" + (f" (also {', '.join(missing[1:])})" if missing[1:] else ""))
    validate_id(job["category"], "category")
    if not isinstance(job["group"], str) or not job["group"]:
        raise ValueError(f"group: expected a non-empty string, got {job['group']!r}")
    if job["defect"] is not None and job["defect"] not in DEFECT_TYPES:
        raise ValueError(f"defect: {job['defect']!r} is not null or one of {', '.join(DEFECT_TYPES)}")
    for k in ("object_index", "trajectory", "shard"):
        if isinstance(job[k], bool) or not isinstance(job[k], int) or job[k] < 0:
            raise ValueError(f"{k}: expected a non-negative integer, got {job[k]!r}")
    for k in ("object", "pose", "camera", "material", "environment", "floor", "seeds"):
        if not isinstance(job[k], dict):
            raise ValueError(f"{k}: expected an object, got {type(job[k]).__name__}")
    if job["object"].get("source") not in ("procedural", "anomaly_shapenet"):
        raise ValueError(f"object.source: {job['object'].get('source')!r} is not procedural or anomaly_shapenet")
    dp = job["object"].get("defect_params")
    if dp is not None and (not isinstance(dp, dict) or dp.get("kind") != job["defect"]):
        raise ValueError(f"object.defect_params: kind {dp.get('kind') if isinstance(dp, dict) else dp!r} does not "
                         f"match defect {job['defect']!r}")
    _number(job, "pose", "yaw_deg")
    _number(job, "pose", "scale", 0.0)
    for f in ("elevation_deg", "start_azimuth_deg"):
        _number(job, "camera", f)
    _number(job, "camera", "distance_factor", 0.0)
    _number(job, "camera", "lens_mm", 0.0)
    c = job["seeds"].get("cycles")
    if isinstance(c, bool) or not isinstance(c, int) or c < 0:
        raise ValueError(f"seeds.cycles: expected a non-negative integer, got {c!r}")


def load_jobs(path: Path, shard: int | None = None, num_shards: int | None = None,
              errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read and validate jobs; ``num_shards`` re-shards the stable order round-robin.

    A line that is not JSON or has no valid ``job_id`` fails the whole file (the problem cannot be
    pinned on one job). Any other problem (:func:`check_job`) raises ``ValueError`` naming
    ``<path>:<line>: <field>`` — or, when ``errors`` is given, is stored there as
    ``{job_id: message}`` and the job is still returned, so the caller can fail it alone."""
    jobs = []
    seen: set[str] = set()
    for lineno, job in enumerate(iter_jsonl(path), 1):
        if not isinstance(job, dict) or "job_id" not in job:
            raise ValueError(f"{path}:{lineno}: job_id: missing (every line must be a job object)")
        validate_id(job["job_id"], f"{path}:{lineno}: job_id")
        if job["job_id"] in seen:
            raise ValueError(f"{path}:{lineno}: job_id: {job['job_id']!r} appears twice")
        seen.add(job["job_id"])
        try:
            check_job(job)
        except ValueError as e:
            if errors is None:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            errors[job["job_id"]] = f"{path}:{lineno}: {e}"
        jobs.append(job)
    if num_shards:
        for i, job in enumerate(jobs):
            job["shard"] = shard_of(i, num_shards)
    if shard is not None:
        jobs = [j for j in jobs if j.get("shard") == shard]
    return jobs


def orbit_azimuths(start_deg: float, frames: int) -> np.ndarray:
    """Camera azimuth (radians) per frame: one full turn over ``frames`` frames."""
    return np.radians(start_deg) + 2.0 * math.pi * np.arange(frames) / frames
