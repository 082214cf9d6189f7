"""plan: resolve every random choice of every job and write ``<out>/jobs.jsonl``.

The file depends only on the config (and the object library): same config → byte-identical file,
whatever machine or shard count renders it later. Each job draws from its own sha256-derived seeds,
so adding a job never changes another job.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .ids import GOOD, job_id, validate_id
from .io import dumps, iter_jsonl, write_jsonl
from .objects import ObjectLibrary
from .objects.defects import choose_defect
from .scenery.planning import plan_visibility, sample_scene
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


@lru_cache(maxsize=256)
def _base_mesh(library_root: str, category: str):
    return ObjectLibrary(library_root or None).get(category).build()


def plan_jobs(cfg: Config) -> list[dict[str, Any]]:
    """All jobs of a config in a stable order (category, object index, trajectory)."""
    lib = ObjectLibrary(cfg.objects.source.library)
    root = str(cfg.objects.source.library or "")
    oc = cfg.objects
    slots = [(cat, i) for cat in oc.categories for i in range(oc.objects_per_category)]
    for cat in oc.categories:
        lib.get(cat)  # unknown categories fail before anything is written
    n_normal = int(round(oc.normal_share * len(slots)))
    labels = [GOOD] * n_normal + allocate(dict(sorted(oc.defects.items())), len(slots) - n_normal)
    order = rng_for(cfg.seed, "allocation", "plan").permutation(len(slots))
    labels = [labels[i] for i in order]

    jobs: list[dict[str, Any]] = []
    for (cat, idx), label in zip(slots, labels):
        spec = lib.get(cat)
        defect = None if label == GOOD else label
        obj_key = f"{cat}-{idx:04d}-{label}"
        obj: dict[str, Any] = {"source": spec.kind, "spec": spec.source, "defect_params": None}
        if defect:
            mesh = _base_mesh(root, cat)
            p = choose_defect(mesh, defect, rng_for(cfg.seed, obj_key, "defect"), oc.defect_area, oc.defect_depth)
            obj["defect_params"] = {"kind": p.kind, "center": p.center, "radius": round(p.radius, 6),
                                    "depth": round(p.depth, 6)}
        for t in range(oc.trajectories_per_object):
            jid = job_id(cat, idx, defect, t)
            jobs.append({
                "job_id": jid, "category": cat, "group": spec.group, "object_index": idx,
                "defect": defect, "trajectory": t, "object": obj,
                **sample_scene(cfg, jid),  # pose, camera, material, environment, floor
                "seeds": {"cycles": cycles_seed(cfg.seed, jid), "qa": derive_seed(cfg.seed, jid, "qa")},
            })
    plan_visibility(jobs, cfg)
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


def load_jobs(path: Path, shard: int | None = None, num_shards: int | None = None) -> list[dict[str, Any]]:
    """Read and validate jobs; ``num_shards`` re-shards the stable order round-robin."""
    jobs = []
    for lineno, job in enumerate(iter_jsonl(path), 1):
        missing = [k for k in JOB_FIELDS if k not in job]
        if missing:
            raise ValueError(f"{path}:{lineno}: job is missing field(s) {', '.join(missing)}")
        validate_id(job["job_id"], f"{path}:{lineno}: job_id")
        jobs.append(job)
    if num_shards:
        for i, job in enumerate(jobs):
            job["shard"] = shard_of(i, num_shards)
    if shard is not None:
        jobs = [j for j in jobs if j["shard"] == shard]
    return jobs


def orbit_azimuths(start_deg: float, frames: int) -> np.ndarray:
    """Camera azimuth (radians) per frame: one full turn over ``frames`` frames."""
    return np.radians(start_deg) + 2.0 * math.pi * np.arange(frames) / frames
