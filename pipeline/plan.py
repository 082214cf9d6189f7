"""plan: resolve every random choice of every job and write ``<out>/jobs.jsonl``.

The file depends only on the config (and the object library): same config → byte-identical file,
whatever machine or shard count renders it later. Each job draws from its own sha256-derived seeds,
so adding a job never changes another job.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .config import Config
from .config import config_dict
from .ids import DEFECT_TYPES, GOOD, job_id, validate_id
from .io import atomic_write_text, dumps, iter_jsonl, write_jsonl
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




def plan_jobs(cfg: Config, progress: bool = True) -> list[dict[str, Any]]:
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
    for (cat, idx), label in tqdm(list(zip(slots, labels)), desc="plan", unit="object",
                             disable=not progress or len(slots) < 8):
        defect, obj = cat_source.resolve(cat, idx, label)
        group = cat_source.group(cat)
        for t in range(oc.trajectories_per_object):
            jid = job_id(cat, idx, defect, t)
            jobs.append({
                "job_id": jid, "category": cat, "group": group, "object_index": idx,
                "defect": defect, "trajectory": t, "object": obj,
                **sample_scene(cfg, jid),  # pose, camera, material, environment, floor
                "seeds": {"cycles": cycles_seed(cfg.seed, jid), "qa": derive_seed(cfg.seed, jid, "qa")},
            })
    plan_visibility(jobs, cfg, progress)
    for i, job in enumerate(jobs):
        job["shard"] = shard_of(i, cfg.num_shards)
    return jobs


_PACKAGE = Path(__file__).resolve().parent


def plan_fingerprint(cfg: Config) -> str:
    """sha256 of everything a plan depends on: the resolved config, the planning code, and the
    object sources (library specs, or the names and sizes of a loaded dataset's files)."""
    h = hashlib.sha256(dumps(config_dict(cfg)).encode())
    files = [_PACKAGE / "plan.py", _PACKAGE / "seeds.py", _PACKAGE / "ids.py",
             *sorted((_PACKAGE / "objects").glob("*.py")), *sorted((_PACKAGE / "scenery").glob("*.py"))]
    looks = Path(cfg.scene.assets) if cfg.scene.assets else _PACKAGE.parent / "assets"
    for sub in ("materials", "environments", "floors"):
        files += sorted((looks / sub).glob("*.yaml"))
    src = cfg.objects.source
    listed: list[Path] = []  # large inputs: names, sizes and times rather than contents
    if src.kind == "procedural":
        from .objects.library import DEFAULT_LIBRARY

        files += sorted(Path(src.library or DEFAULT_LIBRARY).glob("*.yaml"))
    else:
        listed += sorted(p for p in Path(src.root).rglob("*") if p.is_file())
    if cfg.scene.hdri_dir:
        listed += sorted(p for p in Path(cfg.scene.hdri_dir).iterdir() if p.is_file())
    for f in files:
        h.update(f"{f.name}\0".encode() + f.read_bytes())
    for f in listed:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def write_plan(cfg: Config, out: Path, progress: bool = True) -> Path:
    """Write ``<out>/jobs.jsonl`` (atomically; unchanged bytes if it already matches) and its
    fingerprint (``jobs.fingerprint``), written last."""
    path = Path(out) / "jobs.jsonl"
    jobs = plan_jobs(cfg, progress)
    text = "".join(dumps(j) + "\n" for j in jobs)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_jsonl(path, jobs)
    atomic_write_text(Path(out) / "jobs.fingerprint", plan_fingerprint(cfg) + "\n")
    return path


def ensure_plan(cfg: Config, out: Path, progress: bool = True) -> Path:
    """The plan of ``cfg`` in ``out``: reuse ``jobs.jsonl`` when its fingerprint still matches (planning
    builds meshes and cuts defects, seconds per object), else plan again. A file edited by hand under
    an unchanged config is used as it is, and validated when loaded."""
    path = Path(out) / "jobs.jsonl"
    fp = Path(out) / "jobs.fingerprint"
    if path.exists() and fp.exists() and fp.read_text().strip() == plan_fingerprint(cfg):
        return path
    return write_plan(cfg, out, progress)


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
