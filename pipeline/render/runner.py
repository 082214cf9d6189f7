"""Run a shard's render jobs as Ray tasks: local Ray by default, a cluster when ``RAY_ADDRESS`` is set.

A task runs one job: :func:`~pipeline.render.job.render_job` by default, or the farm's per-job task
(:func:`pipeline.farm.run_job`: render, annotate and clip in node-local scratch, then publish), which
``mmviad render`` uses. Each task owns one fresh Blender process per job (processes are recycled per job because long-lived
Blender sessions grow in memory). With ``device: gpu`` every task asks Ray for one GPU; Ray sets
``CUDA_VISIBLE_DEVICES`` for the task before Blender starts, so Blender sees exactly that GPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from ..config import Config
from .gpu import gpu_env
from ..layout import KEYS
from ..store import Store, is_url
from ..outcome import JobOutcome, JobState
from .job import render_job


def task_resources(cfg: Config, cores: int) -> tuple[float, int, int]:
    """(CPUs per task, Blender threads, worker count). One Blender using every core is the default:
    measured 1 → 2 threads gives 1.72×, so splitting cores across processes rarely pays.

    With ``device: gpu`` the task's resource is its GPU: it asks Ray for ``render.threads`` CPUs,
    1 when unset. Asking for every core (the CPU default) would fit one task per node however many
    GPUs the node has. ``cores`` is the driver's count, which says nothing about a worker node."""
    r = cfg.render
    if r.workers:
        threads = r.threads or max(1, cores // r.workers)
    else:
        threads = r.threads or cores
    workers = max(1, cores // threads) if not r.workers else r.workers
    cpus = float(r.threads or 1) if r.device == "gpu" else float(min(threads, cores))
    return cpus, threads, workers


def task_placement() -> dict[str, Any]:
    """Where this Ray task runs, for the job's ``meta.json``: the Ray node id, the
    ``CUDA_VISIBLE_DEVICES`` Ray set for it (``None`` where Ray set none) and the start time (Unix s)."""
    import ray

    return {"ray_node_id": ray.get_runtime_context().get_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "started_at": round(time.time(), 3)}


#: what a Ray task runs for one job: ``(job, cfg, out, env, placement) -> JobOutcome``
JobTask = Callable[[dict[str, Any], Config, Path, "dict[str, str] | None", "dict[str, Any] | None"], JobOutcome]


def _remote_render(job: dict[str, Any], cfg_json: dict[str, Any], out: str, task: JobTask = render_job) -> dict[str, Any]:
    placement = task_placement()
    cfg = Config.model_validate(cfg_json)
    # Ray has set CUDA_VISIBLE_DEVICES for this task; pass it on explicitly to Blender, with the
    # kernel-cache folders (pipeline/render/gpu.py).
    env = gpu_env(cfg.render.device, cfg.render.kernel_cache_dir)
    return vars(task(job, cfg, out if is_url(out) else Path(out), env, placement))


def _start_local_ray(ray: Any, cores: int) -> None:
    """Start Ray on this machine without any traffic beyond it.

    Ray's usage-stats reporter is switched off (users can opt in by setting
    ``RAY_USAGE_STATS_ENABLED=1``). Its API server also probes cloud metadata endpoints
    (169.254.169.254) whenever ``~/ray_bootstrap_config.yaml`` is missing, whatever that setting says;
    the Ray processes therefore get a private HOME holding a stub that declares a local provider.
    The driver's own HOME is restored as soon as Ray has started."""
    import tempfile

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray_home = Path(tempfile.gettempdir()) / f"mmviad-ray-home-{os.getuid()}"
    ray_home.mkdir(mode=0o700, exist_ok=True)
    (ray_home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
    home = os.environ.get("HOME")
    os.environ["HOME"] = str(ray_home)
    try:
        ray.init(num_cpus=cores, num_gpus=None, include_dashboard=False, log_to_driver=False, configure_logging=False)
    finally:
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home


def render_jobs(jobs: list[dict[str, Any]], cfg: Config, out: Path | str, progress: bool = True,
                task: JobTask = render_job) -> list[JobOutcome]:
    """Run ``task`` for each of ``jobs`` not yet ``DONE``, one Ray task per job, and return one result
    per job, in job order. ``task`` renders by default; ``mmviad render`` passes the farm's per-job
    task (:func:`pipeline.farm.run_jobs`), which also takes an object-store URL for ``out``."""
    import ray  # imported here: plan/annotate/qa never pay Ray's import cost

    store = Store(out)
    out = store.url if store.remote else Path(store.url)
    results: dict[str, JobOutcome] = {j["job_id"]: JobOutcome(j["job_id"], JobState.SKIPPED) for j in jobs
                                     if store.exists(KEYS.done_marker(j["job_id"]).as_posix())}
    todo = [j for j in jobs if j["job_id"] not in results]
    if todo:
        address = os.environ.get("RAY_ADDRESS")
        cores = os.cpu_count() or 1
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                _start_local_ray(ray, cores)
        if cfg.render.device == "gpu" and not ray.cluster_resources().get("GPU", 0):
            # A task asking for a GPU would wait forever; fail every job loudly instead.
            msg = ("render.device is 'gpu' but the Ray cluster has no GPU "
                   f"({'RAY_ADDRESS=' + address if address else 'local Ray'}); refusing to fall back to the CPU")
            for j in todo:
                store.put_bytes((json.dumps({"job_id": j["job_id"], "error": msg, "attempts": 0}, sort_keys=True,
                                           indent=1) + "\n").encode(),
                                KEYS.error_file("render", j["job_id"]).as_posix())
                results[j["job_id"]] = JobOutcome.failure(j["job_id"], msg)
            return [results[j["job_id"]] for j in jobs]
        cpus, threads, _ = task_resources(cfg, cores)
        cfg_json = cfg.model_dump(mode="json")
        cfg_json["render"]["threads"] = threads
        remote = ray.remote(num_cpus=cpus, num_gpus=1 if cfg.render.device == "gpu" else 0,
                            max_retries=1)(_remote_render)  # Ray-level retry covers a lost worker node
        pending = {remote.remote(j, cfg_json, str(out), task): j["job_id"] for j in todo}
        with tqdm(total=len(jobs), initial=len(results), desc="render", unit="job", disable=not progress) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    jid = pending.pop(ref)
                    try:
                        results[jid] = JobOutcome(**ray.get(ref))
                    except Exception as e:  # the task itself died (worker lost twice)
                        results[jid] = JobOutcome.failure(jid, f"Ray task failed: {type(e).__name__}: {e}")
                    bar.set_postfix_str(f"{jid}: {results[jid].state}")
                    bar.update(1)
    return [results[j["job_id"]] for j in jobs]
