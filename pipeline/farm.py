"""The render farm's per-job task: one job, end to end, on the worker that runs it: render →
annotate → clips → mask video in a node-local scratch folder, then publish into the dataset only
what the dataset needs. :func:`run_jobs` runs a shard's jobs as such tasks, one Ray task per job
(:func:`pipeline.render.runner.render_jobs`); ``mmviad render`` calls it.

The scratch folder is a dataset folder of its own (a :class:`~pipeline.layout.Layout` holding this one
job), ``<render.scratch_dir>/<job_id>-<out digest>/``; ``render.scratch_dir`` defaults to an
``mmviad-scratch`` folder under the worker's temp folder. The stages run there exactly as they run on
a dataset (:func:`pipeline.render.job.render_locked`, :func:`pipeline.annotate.annotate_jobs`,
:func:`pipeline.clips.clip_job`), so what a job publishes is byte for byte what the separate
``mmviad render`` / ``annotate`` / ``clips`` stages write.

What is published (:func:`published_files`): the clips (unmarked and marked MP4) and the job's clip
index, the annotation, ``scene.json``, ``meta.json``, the meshes (``object.npz``, ``twin.npz``), the
lossless mask video ``mask.mkv``, and PNG frames as ``render.keep_frames`` asks (``none``; ``mask``:
``mask/`` and ``objmask/``; ``all``: every pass). The job's ``DONE`` marker is published last, so a
task killed while publishing leaves a job without ``DONE``, which the next run renders again.

Apart from the job's lock (``renders/.locks/``) and its logs (``logs/render/``), every write into the
dataset folder goes through :func:`publish_job` and the primitives under it: :func:`put_file` (an
atomic move or copy), :func:`remove_path` and :func:`same_filesystem`; ``DONE`` is put last.

``out`` may also be an object-store URL (``s3://bucket/dataset``, see :mod:`pipeline.store`): then the
task publishes through the :class:`~pipeline.store.Store` (every object appears whole, ``DONE``
last), keeps its lock on the node (in the scratch folder) and uploads its render log and error file
when it ends, whether it succeeded or not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .config import Config
from .io import atomic_copy
from .layout import KEYS, Layout
from .mask_video import write_mask_video
from .outcome import JobOutcome, JobState
from .render.job import PASSES, TWIN, log_path, record_failure, render_locked, with_job_lock
from .store import Store

#: the PNG passes published for each ``render.keep_frames``
KEEP_FRAMES: dict[str, tuple[str, ...]] = {"none": (), "mask": ("mask", "objmask"), "all": PASSES + (TWIN,)}
#: the files of ``renders/<job_id>/`` published whatever ``keep_frames`` says (twin.npz when present)
JOB_FILES = ("meta.json", "scene.json", "object.npz", "twin.npz")


def scratch_base(cfg: Config) -> Path:
    """``render.scratch_dir``, or ``mmviad-scratch`` under the worker's temp folder."""
    return Path(cfg.render.scratch_dir) if cfg.render.scratch_dir else Path(tempfile.gettempdir()) / "mmviad-scratch"


def _digest(out: Path | str) -> str:
    return hashlib.sha256(Store(out).url.encode()).hexdigest()[:12]


def scratch_root(cfg: Config, out: Path | str, job_id: str) -> Path:
    """The job's scratch folder: ``<scratch_dir>/<job_id>-<digest of out>`` (the digest keeps two
    datasets rendered on one node apart; the job's lock keeps two tasks of one dataset apart)."""
    return scratch_base(cfg) / f"{job_id}-{_digest(out)}"


def lock_root(cfg: Config, out: Path | str) -> Path:
    """Where the job locks live: the dataset folder itself, or for an object store (which has no
    locks) a folder on this node, ``<scratch_dir>/locks-<digest of out>``."""
    return scratch_base(cfg) / f"locks-{_digest(out)}" if Store(out).remote else Path(out)


# ---- publishing: the only writes into the dataset folder ---------------------------------------
def same_filesystem(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` (existing folders) are on one filesystem, so a rename moves a file."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def put_file(src: Path, dst: Path, move: bool) -> None:
    """Place ``src`` at ``dst`` atomically: readers see the old file or the whole new one, never a part.

    ``move`` (same filesystem): ``os.replace``, itself atomic. Otherwise :func:`pipeline.io.atomic_copy`
    (a temp name next to ``dst``, flushed to disk, then renamed onto ``dst``)."""
    if not move:
        atomic_copy(src, dst)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def remove_path(path: Path) -> None:
    """Remove a file or a folder tree; nothing when it does not exist."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def published_files(scratch: Layout, dest: Layout, job_id: str, keep_frames: str) -> list[tuple[Path, Path]]:
    """(source in scratch, destination in the dataset) of every file the job publishes, in publishing
    order, ``DONE`` excluded: the render folder's files, the kept frames, the annotation, the clip
    videos, and the clip index after its videos (it marks the job's clips complete)."""
    from .records import read_clip_index

    if keep_frames not in KEEP_FRAMES:
        raise ValueError(f"render.keep_frames: {keep_frames!r} is not one of {', '.join(KEEP_FRAMES)}")
    pairs = []
    src_dir, dst_dir = scratch.render_dir(job_id), dest.render_dir(job_id)
    for name in JOB_FILES:
        if (src_dir / name).exists():
            pairs.append((src_dir / name, dst_dir / name))
    pairs.append((scratch.mask_video(job_id), dest.mask_video(job_id)))
    for kind in KEEP_FRAMES[keep_frames]:
        folder = scratch.frames_dir(job_id, kind)
        if folder.is_dir():
            pairs += [(f, dest.frames_dir(job_id, kind) / f.name) for f in sorted(folder.glob("*.png"))]
    pairs.append((scratch.annotation(job_id), dest.annotation(job_id)))
    index = scratch.clip_index(job_id)
    for c in read_clip_index(index, job_id):
        for rel in (c.video, c.video_marked):
            pairs.append((scratch.resolve(rel), dest.resolve(rel)))
    pairs.append((index, dest.clip_index(job_id)))
    return pairs


def publish_job(scratch: Layout, dest: Layout | Store, job_id: str, keep_frames: str) -> None:
    """Publish a finished job from ``scratch`` into the dataset ``dest``; ``DONE`` last.

    The job's render folder in ``dest`` is removed first: the job is not ``DONE`` there (the caller
    checked, holding the job's lock), so whatever it holds is an unfinished earlier attempt. Then
    every file of :func:`published_files` goes into place with :func:`put_file` (moved when scratch
    and dataset share a filesystem, copied otherwise), and the ``DONE`` marker last. ``dest`` may be
    a :class:`~pipeline.store.Store` of an object store: the same files, uploaded in the same order."""
    if isinstance(dest, Store):
        if not dest.remote:
            return publish_job(scratch, Layout(dest.url), job_id, keep_frames)
        pairs = published_files(scratch, KEYS, job_id, keep_frames)
        dest.remove(KEYS.render_dir(job_id).as_posix())
        for src, key in pairs + [(scratch.done_marker(job_id), KEYS.done_marker(job_id))]:
            dest.put_file(src, key.as_posix())
        return
    dest.root.mkdir(parents=True, exist_ok=True)
    move = same_filesystem(scratch.root, dest.root)
    pairs = published_files(scratch, dest, job_id, keep_frames)
    remove_path(dest.render_dir(job_id))
    for src, dst in pairs:
        put_file(src, dst, move)
    put_file(scratch.done_marker(job_id), dest.done_marker(job_id), move)


# ---- the task ------------------------------------------------------------------------------------
def run_jobs(jobs: list[dict[str, Any]], cfg: Config, out: Path | str, progress: bool = True) -> list[JobOutcome]:
    """Render, annotate, clip and publish ``jobs`` (skipping finished ones), one Ray task per job
    with :func:`run_job` (resources, retries and placement as :func:`pipeline.render.runner.render_jobs`
    gives every task); one result per job, in job order."""
    from .render.runner import render_jobs

    return render_jobs(jobs, cfg, out, progress, task=run_job)


def run_job(job: dict[str, Any], cfg: Config, out: Path | str, env: dict[str, str] | None = None,
            placement: dict[str, Any] | None = None) -> JobOutcome:
    """Render, annotate and clip one job in scratch and publish it into ``out`` (see the module
    docstring); ``skipped`` when it is already ``DONE``. Never raises for a job-level failure: the
    error goes to ``logs/render/<job_id>.error.json`` and the result, as with
    :func:`pipeline.render.job.render_job`. The scratch folder is removed afterwards, also after a
    failure; a leftover of a killed task is removed when the job starts again. ``out`` is a folder
    or an object-store URL (see the module docstring)."""
    store = Store(out)
    out = out if store.remote else Path(out)
    jid = job["job_id"]
    if _is_done(store, jid):
        return JobOutcome(jid, JobState.SKIPPED)
    locks = lock_root(cfg, out)
    return with_job_lock(locks, jid, lambda: _run_locked(job, cfg, out, env, placement),
                         logs=locks if store.remote else None)


def _is_done(store: Store, job_id: str) -> bool:
    return store.exists(KEYS.done_marker(job_id).as_posix())


def prepare_job(job: dict[str, Any], cfg: Config, root: Path, out: Path | str, env: dict[str, str] | None = None,
                placement: dict[str, Any] | None = None) -> JobOutcome:
    """Render, annotate and clip one job into the scratch dataset folder ``root`` and write its mask
    video there: everything :func:`publish_job` takes from it. Logs and errors go to ``out``, and
    the annotation ``out`` already has is carried into scratch first, so that its ``reviewed``
    block survives (:func:`pipeline.annotate.annotate_jobs` keeps it). Raises ``RuntimeError`` when
    annotation or clips fail; a render failure is returned, as :func:`render_locked` returns it."""
    from .annotate import annotate_jobs
    from .clips import clip_job

    jid = job["job_id"]
    scratch, store = Layout(root), Store(out)
    res = render_locked(job, cfg, root, env, placement, logs=root if store.remote else out)
    if res.state is not JobState.DONE:
        return res
    if store.remote:
        key = KEYS.annotation(jid).as_posix()
        if store.exists(key):
            store.get_file(key, scratch.annotation(jid))
    elif Layout(out).annotation(jid).exists():
        scratch.annotation(jid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Layout(out).annotation(jid), scratch.annotation(jid))
    annotated = annotate_jobs([jid], cfg, root, progress=False, force=True)[jid]
    if annotated.state is not JobState.DONE:
        raise RuntimeError(f"annotate: {_status_text(annotated)}")
    clipped = clip_job(job, cfg, root)
    if clipped is not JobState.DONE:
        raise RuntimeError(f"clips: {clipped}")
    write_mask_video(scratch.frames_dir(jid, "mask"), cfg.render.orbit_frames, scratch.mask_video(jid), cfg.render.fps)
    return res


def _status_text(o: JobOutcome) -> str:
    """An outcome as the stage summaries word it: ``done``, ``missing``, ``failed: <reason>``."""
    return f"failed: {o.error}" if o.failed else str(o.state)


def _run_locked(job: dict[str, Any], cfg: Config, out: Path | str, env: dict[str, str] | None,
                placement: dict[str, Any] | None) -> JobOutcome:
    store = Store(out)
    jid = job["job_id"]
    if _is_done(store, jid):  # finished by another process while we waited for the lock
        return JobOutcome(jid, JobState.SKIPPED)
    t0 = time.perf_counter()
    root = scratch_root(cfg, out, jid)
    logs = root if store.remote else Path(out)   # an object store gets the logs when the task ends
    res = JobOutcome(jid, JobState.FAILED)
    try:
        shutil.rmtree(root, ignore_errors=True)   # a killed task's leftover
        root.mkdir(parents=True)
        res = prepare_job(job, cfg, root, out, env, placement)
        if res.state is not JobState.DONE:
            return res
        if _is_done(store, jid):
            # Another task published this job while this one rendered it: a node cut off from Ray
            # (not dead) whose job was rerun elsewhere. Publishing again would first remove the
            # finished job; it is left as it is.
            return JobOutcome(jid, JobState.SKIPPED, time.perf_counter() - t0, res.attempts)
        publish_job(Layout(root), store if store.remote else Layout(out), jid, cfg.render.keep_frames)
        res.seconds = time.perf_counter() - t0
        return res
    except Exception as e:  # one broken job must not stop the shard
        msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        record_failure(logs, jid, msg, res.attempts, traceback.format_exc())
        return JobOutcome(jid, JobState.FAILED, time.perf_counter() - t0, res.attempts, msg, str(log_path(logs, jid)))
    finally:
        if store.remote:
            _upload_logs(Layout(root), store, jid)
        shutil.rmtree(root, ignore_errors=True)


def _upload_logs(scratch: Layout, store: Store, job_id: str) -> None:
    """Best effort: the render log and error file of a task whose output is an object store. A
    successful job's stale error file goes, as :func:`pipeline.render.job.render_locked` removes it
    from a folder."""
    for path, key in ((scratch.log("render", job_id), KEYS.log("render", job_id)),
                      (scratch.error_file("render", job_id), KEYS.error_file("render", job_id))):
        try:
            if path.exists():
                store.put_file(path, key.as_posix())
            elif key == KEYS.error_file("render", job_id):
                store.remove(key.as_posix())
        except OSError:
            pass   # the job's own outcome is what the driver reports
