"""plan: resolve every random choice of every job and write ``<out>/jobs.jsonl``.

The file depends only on the config (and the object library): same config → byte-identical file,
whatever machine or shard count renders it later. Each job draws from its own sha256-derived seeds,
so adding a job never changes another job.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config import Config
from .config import config_dict
from .ids import GOOD, job_id, validate_id
from .io import atomic_write_text, dumps, iter_jsonl, write_jsonl
from .layout import Layout
from .paths import ASSETS
from .plan_cache import ObjectCache, run_objects
from .records import Job, check, parse
from .scenery.planning import plan_visibility, predict_job, sample_scene
from .seeds import cycles_seed, derive_seed, rng_for

#: the fields every job must have, in the order problems are reported (the :class:`~pipeline.records.Job` record's)
JOB_FIELDS: tuple[str, ...] = tuple(k for k, f in Job.model_fields.items() if f.is_required())


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




@dataclass(frozen=True)
class ObjectSlot:
    """One object of the plan: its category, index and label, and — for a catalog whose choice
    depends on the order of earlier choices (Anomaly-ShapeNet files) — the object already resolved."""
    category: str
    index: int
    label: str
    group: str
    resolved: Optional[tuple[Optional[str], dict[str, Any]]] = None


# A worker's catalog, built once per config (only catalogs whose resolve() is pure are used here).
_CATALOGS: dict[str, Any] = {}


def _catalog(cfg: Config) -> Any:
    from .objects.sources import catalog

    key = dumps(config_dict(cfg))
    if key not in _CATALOGS:
        _CATALOGS.clear()
        _CATALOGS[key] = catalog(cfg)
    return _CATALOGS[key]


def plan_object(cfg: Config, slot: ObjectSlot) -> dict[str, Any]:
    """One object's jobs (every random choice resolved; no shard, no visibility yet) and, when
    visibility is predicted, each defective job's predicted defect pixels per frame (or the error
    text of a mesh that cannot be built). The expensive part of planning: the defect is cut here
    and the orbit ray cast. A pure function of the config and the slot (see :func:`object_key`)."""
    defect, obj = slot.resolved or _catalog(cfg).resolve(slot.category, slot.index, slot.label)
    jobs, pixels = [], {}
    for t in range(cfg.objects.trajectories_per_object):
        jid = job_id(slot.category, slot.index, defect, t)
        job = {
            "job_id": jid, "category": slot.category, "group": slot.group, "object_index": slot.index,
            "defect": defect, "trajectory": t, "object": obj,
            **sample_scene(cfg, jid),  # pose, camera, material, environment, floor
            "seeds": {"cycles": cycles_seed(cfg.seed, jid), "qa": derive_seed(cfg.seed, jid, "qa")},
        }
        jobs.append(job)
        if defect and cfg.scene.visibility.predict:
            px = predict_job(job, cfg)
            pixels[jid] = px if isinstance(px, str) else [float(x) for x in px]
    return {"jobs": jobs, "pixels": pixels}


def _object_config(cfg: Config) -> dict[str, Any]:
    """The part of the config that :func:`plan_object` reads. Left out: what only decides which
    slots exist and their labels (in the slot itself), the shard count, the visible-clip target
    (only whether one is set changes the predicted orbit), and render/annotate settings other than
    the frame size and orbit length."""
    d = config_dict(cfg)
    objects = {k: v for k, v in d["objects"].items()
               if k not in ("categories", "objects_per_category", "normal_share", "defects")}
    vis = {k: v for k, v in d["scene"]["visibility"].items() if k not in ("target_share", "candidates")}
    vis["start_from_zero"] = d["scene"]["visibility"]["target_share"] is not None
    return {"seed": d["seed"], "objects": objects, "scene": {**d["scene"], "visibility": vis},
            "render": {k: d["render"][k] for k in ("width", "height", "orbit_frames")}}


def object_key(cfg: Config, slot: ObjectSlot, sources: str, config: dict[str, Any] | None = None) -> str:
    """sha256 of everything :func:`plan_object` depends on: the planning code and object sources
    (``sources``, :func:`sources_digest`), the config part it reads (``config``: a precomputed
    :func:`_object_config`), and the slot."""
    return hashlib.sha256(dumps({"sources": sources, "config": config or _object_config(cfg),
                                 "slot": [slot.category, slot.index, slot.label, slot.group, slot.resolved]}
                                ).encode()).hexdigest()


def plan_jobs(cfg: Config, progress: bool = True, cache_dir: Path | None = None,
              workers: int | None = None) -> list[dict[str, Any]]:
    """All jobs of a config in a stable order (category, object index, trajectory).

    Objects are planned in ``workers`` processes (default: one per core); with ``cache_dir`` each
    object's result is kept there, so an interrupted plan resumes where it stopped. The jobs do
    not depend on either."""
    from .objects.sources import catalog

    cat_source = catalog(cfg)  # unknown categories fail before anything is written
    oc = cfg.objects
    slots = [(cat, i) for cat in oc.categories for i in range(oc.objects_per_category)]
    n_normal = int(round(oc.normal_share * len(slots)))
    labels = [GOOD] * n_normal + allocate(dict(sorted(oc.defects.items())), len(slots) - n_normal)
    order = rng_for(cfg.seed, "allocation", "plan").permutation(len(slots))
    labels = [labels[i] for i in order]
    units = [ObjectSlot(cat, idx, label, cat_source.group(cat),
                        None if cat_source.pure else cat_source.resolve(cat, idx, label))
             for (cat, idx), label in zip(slots, labels)]

    sources = sources_digest(cfg)
    part = _object_config(cfg)
    keys = [object_key(cfg, u, sources, part) for u in units]
    cache = ObjectCache(cache_dir)
    results = run_objects(plan_object, cfg, units, keys, cache, lambda u: u.category, workers, progress)
    jobs = [job for r in results for job in r["jobs"]]
    pixels = {jid: px if isinstance(px, str) else np.asarray(px, dtype=float)
              for r in results for jid, px in r["pixels"].items()}
    plan_visibility(jobs, cfg, pixels)
    for i, job in enumerate(jobs):
        job["shard"] = shard_of(i, cfg.num_shards)
    cache.prune(set(keys))
    # The planner's own output meets the contract the later stages check (a planning bug stops here).
    return [parse(Job, job, f"plan: job {job['job_id']}").to_json() for job in jobs]


_PACKAGE = Path(__file__).resolve().parent


def _module_file(root: Path, name: str) -> Optional[Path]:
    """The source of module ``name`` (dotted, its first part the package at ``root``), if it is one."""
    parts = name.split(".")[1:]
    for p in (root.joinpath(*parts, "__init__.py"), root.joinpath(*parts).with_suffix(".py") if parts else None):
        if p is not None and p.is_file():
            return p
    return None


def module_closure(root: Path, start: str) -> set[Path]:
    """The source files of module ``start`` and of every module of the package at ``root`` that it
    imports, directly or through others: every ``import`` statement counts, also one inside a
    function (planning imports some modules lazily), and importing ``a.b.c`` runs ``a/__init__.py``
    and ``a/b/__init__.py`` too. Found by reading the sources (``ast``), so nothing is imported."""
    import ast

    pkg = root.name
    todo, seen, files = [start], set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:k]) for k in range(1, len(parts))]  # the packages above it
        path = _module_file(root, name)
        if path is None:
            continue
        files.add(path)
        here = parts if path.name == "__init__.py" else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == pkg]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                if base.split(".")[0] != pkg:
                    continue
                todo.append(base)
                todo += [f"{base}.{a.name}" for a in node.names if _module_file(root, f"{base}.{a.name}")]
    return files


def planning_files() -> list[Path]:
    """Every source file planning can run: the import closure of this module (:func:`module_closure`),
    sorted. Hashed into the plan fingerprint and the per-object cache keys."""
    return sorted(module_closure(_PACKAGE, __name__))


def sources_digest(cfg: Config) -> str:
    """sha256 of the planning code and the inputs a plan reads besides the config: the look specs,
    the object sources (library specs, or the names, sizes and times of a loaded dataset's files)
    and HDRI files."""
    h = hashlib.sha256()
    files = planning_files()
    looks = Path(cfg.scene.assets) if cfg.scene.assets else ASSETS
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
        rel = f.relative_to(_PACKAGE) if f.is_relative_to(_PACKAGE) else f.name
        h.update(f"{rel}\0".encode() + f.read_bytes())
    for f in listed:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def plan_fingerprint(cfg: Config) -> str:
    """sha256 of everything a plan depends on: the resolved config and :func:`sources_digest`."""
    return hashlib.sha256((dumps(config_dict(cfg)) + "\n" + sources_digest(cfg)).encode()).hexdigest()


def write_plan(cfg: Config, out: Path, progress: bool = True, workers: int | None = None) -> Path:
    """Write ``<out>/jobs.jsonl`` (atomically; unchanged bytes if it already matches) and its
    fingerprint (``jobs.fingerprint``), written last. Per-object results are cached in
    ``<out>/.plan-cache/`` so an interrupted plan resumes (:mod:`pipeline.plan_cache`)."""
    layout = Layout(out)
    path = layout.jobs()
    jobs = plan_jobs(cfg, progress, cache_dir=layout.plan_cache(), workers=workers)
    text = "".join(dumps(j) + "\n" for j in jobs)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_jsonl(path, jobs)
    atomic_write_text(layout.jobs_fingerprint(), plan_fingerprint(cfg) + "\n")
    return path


def ensure_plan(cfg: Config, out: Path, progress: bool = True) -> Path:
    """The plan of ``cfg`` in ``out``: reuse ``jobs.jsonl`` when its fingerprint still matches (planning
    builds meshes and cuts defects, seconds per object), else plan again. A file edited by hand under
    an unchanged config is used as it is, and validated when loaded."""
    layout = Layout(out)
    path, fp = layout.jobs(), layout.jobs_fingerprint()
    if path.exists() and fp.exists() and fp.read_text().strip() == plan_fingerprint(cfg):
        return path
    return write_plan(cfg, out, progress)


def check_job(job: dict[str, Any]) -> None:
    """Raise ``ValueError("<field>: <problem>")`` for a job record that the later stages cannot use
    (a hand-edited ``jobs.jsonl``): missing fields, wrong types, unknown defect or object source.
    The rules are the :class:`~pipeline.records.Job` record's; the first problem is reported."""
    _, found = check(Job, job)
    if not found:
        return
    missing = [p.split(":", 1)[0] for p in found if p.endswith(": missing") and p.split(":", 1)[0] in JOB_FIELDS]
    if missing:
        raise ValueError(f"{missing[0]}: missing field" + (f" (also {', '.join(missing[1:])})" if missing[1:] else ""))
    raise ValueError(found[0])


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
