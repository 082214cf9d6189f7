"""Render one job end to end on the host side: mesh → scene spec → Blender (retried in a fresh
process) → verified outputs moved into place → DONE marker last.

Layout: ``<out>/renders/<job_id>/{unmarked,marked,mask,objmask}/NNNN.png``, ``meta.json``, ``object.npz``,
``scene.json``, ``DONE``; with ``annotate.evidence: twin`` a defective job also has ``twin/NNNN.png``
and ``twin.npz`` (the defect-free twin, see ``pipeline/evidence.py``). Work happens in
``<out>/renders/.staging/<job_id>`` so a crash never leaves a folder that looks complete.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..config import Config
from ..io import read_json, write_json
from ..layout import Layout
from ..outcome import JobOutcome, JobState
from .blender import run_blender
from .composite import composite_marked
from .gpu import EXIT_CONFIG, fatal_reason
from .scene import build_meshes, scene_spec

PASSES = ("unmarked", "marked", "mask", "objmask")
TWIN = "twin"   # the defect-free twin's frames (annotate.evidence: twin, defective objects only)


def _rss_mb() -> float | None:
    """Resident memory of this (long-lived Ray worker) process, to show it stays flat across jobs."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def job_dir(out: Path, job_id: str) -> Path:
    """``renders/<job_id>`` (:meth:`pipeline.layout.Layout.render_dir`)."""
    return Layout(out).render_dir(job_id)


def is_done(out: Path, job_id: str) -> bool:
    return Layout(out).is_done(job_id)


def log_path(out: Path, job_id: str) -> Path:
    """``logs/render/<job_id>.log`` (:meth:`pipeline.layout.Layout.log`)."""
    return Layout(out).log("render", job_id)


def error_path(out: Path, job_id: str) -> Path:
    """``logs/render/<job_id>.error.json`` (:meth:`pipeline.layout.Layout.error_file`)."""
    return Layout(out).error_file("render", job_id)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its CRC: the last 8 bytes of a complete PNG


def _png_complete(path: Path) -> bool:
    """A PNG that starts with the signature and ends with the IEND chunk (not cut short by a full disk)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, os.SEEK_END)
            if f.tell() < 16:
                return False
            f.seek(-8, os.SEEK_END)
            return head == PNG_SIGNATURE and f.read(8) == PNG_END
    except OSError:
        return False


def _verify(stage: Path, frames: int, twin: bool = False) -> None:
    """Every pass has exactly ``frames`` complete PNGs and meta.json exists."""
    if not (stage / "meta.json").exists():
        raise RuntimeError("Blender exited without writing meta.json")
    for p in PASSES + ((TWIN,) if twin else ()):
        names = sorted(x.name for x in (stage / p).glob("*.png"))
        expected = [f"{i:04d}.png" for i in range(frames)]
        if names != expected:
            raise RuntimeError(f"{p}/ has {len(names)} frames, expected {frames}")
        broken = [n for n in names if not _png_complete(stage / p / n)]
        if broken:
            raise RuntimeError(f"{p}/{broken[0]}: truncated or not a PNG ({len(broken)} such frame(s))")


def record_failure(out: Path, job_id: str, msg: str, attempts: int = 0, tb: str | None = None) -> None:
    """Best effort: append the one-line error to ``logs/render/<job_id>.log`` (so the log named in the
    summary exists even when Blender never started) and write ``<job_id>.error.json``. On a full or
    read-only disk this writes what it can and never raises: the caller still reports the error."""
    log = log_path(out, job_id)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"\n[mmviad] failed: {msg}\n")
    except OSError:
        pass
    try:
        write_json(error_path(out, job_id), {"job_id": job_id, "error": msg, "attempts": attempts, "log": str(log),
                                             "traceback": tb})
    except OSError:
        pass


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _fill_marked(stage: Path, frames: int, mode: str, has_defect: bool, twin: bool = False) -> None:
    """Complete ``marked/`` where Blender did not render it: a normal object's marked video is its
    unmarked video (hard links), and so is every ``marked: region`` frame without a region (the
    defect is not seen); ``marked: composite`` tints the exact-mask pixels in 2-D. Likewise the
    twin's frames where the defect is not seen are the unmarked frames."""
    for i in range(frames):
        src, dst = stage / "unmarked" / f"{i:04d}.png", stage / "marked" / f"{i:04d}.png"
        if twin and not (stage / TWIN / f"{i:04d}.png").exists():
            _link_or_copy(src, stage / TWIN / f"{i:04d}.png")
        if dst.exists():
            continue
        if has_defect and mode == "composite":
            composite_marked(src, stage / "mask" / f"{i:04d}.png", dst)
        else:
            _link_or_copy(src, dst)


def render_job(job: dict[str, Any], cfg: Config, out: Path, env: dict[str, str] | None = None,
               placement: dict[str, Any] | None = None, logs: Path | None = None) -> JobOutcome:
    """Render one job unless it is already DONE. Never raises for a job-level failure: the error
    is returned and written to ``logs/render/<job_id>.error.json``, so the rest of the shard goes on.

    ``placement`` (where the task ran: Ray node, ``CUDA_VISIBLE_DEVICES``, start time) is stored in
    the job's ``meta.json`` as ``placement``, with the time the render finished, before the folder
    is moved into place.

    An exclusive lock per job keeps two drivers (say, the same shard started twice) from rendering
    into one staging folder.

    ``logs`` is the dataset folder whose ``logs/render/`` receives Blender's log and the error file
    (default ``out``); the per-job task (:mod:`pipeline.farm`) renders into a scratch
    folder but logs into the dataset."""
    out = Path(out)
    jid = job["job_id"]
    if is_done(out, jid):
        return JobOutcome(jid, JobState.SKIPPED)
    return with_job_lock(out, jid, lambda: render_locked(job, cfg, out, env, placement, logs),
                         Path(logs) if logs is not None else out)


def with_job_lock(out: Path, job_id: str, work: Callable[[], JobOutcome], logs: Path | None = None) -> JobOutcome:
    """Run ``work`` holding the job's exclusive lock ``renders/.locks/<job_id>.lock`` in ``out``;
    a failed result, without running it, when another process holds the lock or it cannot be made."""
    logs = Path(logs) if logs is not None else Path(out)
    lock_path = Layout(out).lock_file(job_id)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "w")
    except OSError as e:  # read-only or full output folder
        msg = f"{type(e).__name__}: {e}"
        record_failure(logs, job_id, msg)
        return JobOutcome.failure(job_id, msg, log=str(log_path(logs, job_id)))
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return JobOutcome.failure(job_id, "another process is rendering this job right now (lock held)")
        return work()


def render_locked(job: dict[str, Any], cfg: Config, out: Path, env: dict[str, str] | None,
                  placement: dict[str, Any] | None, logs: Path | None = None) -> JobOutcome:
    """:func:`render_job` without the lock (the caller holds it): render into ``out``, logging into
    ``logs`` (default ``out``)."""
    jid = job["job_id"]
    t0 = time.perf_counter()
    logs = Path(logs) if logs is not None else Path(out)
    final = job_dir(out, jid)
    if is_done(out, jid):  # finished by another process while we waited for the lock
        return JobOutcome(jid, JobState.SKIPPED)
    log = log_path(logs, jid)
    stage = Layout(out).staging_dir(jid)
    attempts = 0
    try:
        mesh, twin = build_meshes(job, cfg, twin=cfg.annotate.evidence == "twin")
        frames = cfg.render.orbit_frames
        err: Optional[str] = None
        for attempts in range(1, cfg.render.retries + 2):
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            mesh.save(stage / "object.npz")
            if twin is not None:
                twin.save(stage / "twin.npz")
            spec = scene_spec(job, cfg, mesh, (stage / "object.npz").resolve(), stage.resolve(),
                              (stage / "twin.npz").resolve() if twin is not None else None)
            write_json(stage / "scene.json", spec)
            code = run_blender(stage / "scene.json", log, cfg.render.timeout_s, env)
            if code == 0:
                try:
                    _fill_marked(stage, frames, cfg.render.marked, mesh.has_defect, twin is not None)
                    _verify(stage, frames, twin is not None)
                    err = None
                    break
                except RuntimeError as e:
                    err = f"incomplete output: {e}"
            elif code == EXIT_CONFIG:  # a setup error (e.g. no GPU): retrying cannot help
                err = f"Blender refused the job: {fatal_reason(log) or 'see the log'} (exit code {code})"
                with open(log, "a") as f:
                    f.write(f"\n[mmviad] attempt {attempts} failed: {err}; not retried\n")
                break
            else:
                err = f"Blender exited with code {code} (attempt {attempts})"
            try:
                with open(log, "a") as f:
                    f.write(f"\n[mmviad] attempt {attempts} failed: {err}\n")
            except OSError:
                pass  # a full disk must not hide the render error itself
        if err:
            raise RuntimeError(err)
        if placement is not None:
            meta = read_json(stage / "meta.json")
            meta["placement"] = {**placement, "finished_at": round(time.time(), 3)}
            write_json(stage / "meta.json", meta)
        # Relative paths in the stored spec keep the folder relocatable.
        spec = read_json(stage / "scene.json")
        spec["mesh"], spec["output"] = "object.npz", "."
        if "twin_mesh" in spec:
            spec["twin_mesh"] = "twin.npz"
        write_json(stage / "scene.json", spec)
        if final.exists():
            shutil.rmtree(final)  # an incomplete earlier attempt (no DONE marker)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, final)
        seconds = time.perf_counter() - t0
        write_json(Layout(out).done_marker(jid), {"job_id": jid, "attempts": attempts, "seconds": round(seconds, 3),
                                                  "defect_faces": int(np.count_nonzero(mesh.face_mask)),
                                                  "worker_rss_mb": _rss_mb()})
        error_path(logs, jid).unlink(missing_ok=True)
        return JobOutcome(jid, JobState.DONE, seconds, attempts, log=str(log))
    except Exception as e:  # one broken job must not stop the shard
        msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        record_failure(logs, jid, msg, attempts, traceback.format_exc())
        return JobOutcome(jid, JobState.FAILED, time.perf_counter() - t0, attempts, msg, str(log))


def result_dict(r: JobOutcome) -> dict[str, Any]:
    return asdict(r)
