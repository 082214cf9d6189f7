"""``mmviad plan --estimate``: expected frames, disk and render hours of a config, extrapolated
from a short calibration render on the current machine.

The calibration renders a few frames of the plan's first defective job (spread over its orbit) at
the config's own render settings, in a fresh Blender process like a real job, and times them with
the per-frame timings that ``render_job.py`` writes into ``meta.json``. The first frame carries
one-off costs (kernel and BVH build, shader compilation) and is counted as setup when more than
one frame is rendered. With ``marked: region`` the calibration frames are taken where the planner
predicts the defect in view and the region pass is timed too; the estimate then adds one region
render per predicted in-view frame.
"""

from __future__ import annotations

import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .config import Config
from .io import read_json, write_json
from .layout import Layout
from .mask_video import write_mask_video
from .render.blender import run_blender
from .render.gpu import fatal_reason, gpu_env
from .render.runner import task_resources
from .render.scene import build_mesh, scene_spec

H264_BITS_PER_PIXEL = 0.08  # assumed H.264 CRF ~20 rate for rendered frames (not measured here)
STARTUP_S = 0.9             # fresh Blender process: interpreter + import bpy (measured with the bpy wheel on a CPU)


@dataclass
class Calibration:
    job_id: str
    frames: int
    device: str
    seconds_per_frame: float
    setup_seconds: float
    bytes_per_frame: float     # unmarked + mask PNG of one frame
    folder: str
    region_seconds_per_frame: Optional[float] = None  # marked: region, per frame with a region
    #: measured PNG bytes per frame of each calibrated pass (unmarked, mask, objmask)
    png_bytes: dict[str, float] = field(default_factory=dict)
    #: measured bytes per frame of the lossless mask video (FFV1, every frame a key frame)
    mask_video_bytes_per_frame: float = 0.0
    #: measured bytes per job that do not scale with frames: object.npz, scene.json, meta.json
    job_bytes: float = 0.0


def calibrate(cfg: Config, jobs: list[dict[str, Any]], out: Path, frames: int = 2,
              device: Optional[str] = None) -> Calibration:
    """Render ``frames`` frames of one job into ``<out>/calibration/<job_id>`` and time them.

    ``device`` overrides ``render.device`` (e.g. ``cpu`` to estimate a GPU config on a CPU-only
    machine: the figure is then a CPU figure). Raises ``RuntimeError`` naming the log on failure."""
    if not jobs:
        raise ValueError("the plan has no jobs to calibrate on")
    job = next((j for j in jobs if j["defect"]), jobs[0])
    if device:
        cfg = Config.model_validate({**cfg.model_dump(), "render": {**cfg.render.model_dump(), "device": device}})
    stage = Layout(out).calibration_dir(job["job_id"])
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    mesh = build_mesh(job, cfg)
    mesh.save(stage / "object.npz")
    spec = scene_spec(job, cfg, mesh, (stage / "object.npz").resolve(), stage.resolve())
    n = len(spec["camera"]["frames"])
    seen = in_view_frames(job, n)
    region = cfg.render.marked == "region" and job["defect"] and bool(seen)
    pool = seen if region else list(range(n))
    picks = sorted({pool[int(i * len(pool) / max(frames, 1))] for i in range(max(frames, 1))})
    spec["camera"]["frames"] = [spec["camera"]["frames"][i] for i in picks]
    # Time the unmarked pass (a full marked render costs the same again) and, in region mode, the
    # region pass on frames that show the defect.
    spec["marked"] = "region" if region else "composite"
    write_json(stage / "scene.json", spec)
    log = stage / "blender.log"
    code = run_blender(stage / "scene.json", log, cfg.render.timeout_s,
                       gpu_env(cfg.render.device, cfg.render.kernel_cache_dir))
    if code != 0 or not (stage / "meta.json").exists():
        hint = "; without a GPU here, pass --calibration-device cpu to time the CPU" if cfg.render.device == "gpu" else ""
        raise RuntimeError(f"calibration render failed (exit code {code}): {fatal_reason(log) or 'see the log'}"
                           f"{hint}; log: {log}")
    meta = read_json(stage / "meta.json")
    times = meta["timings"]["unmarked_s"]
    steady = times[1:] if len(times) > 1 else times
    per_frame = statistics.median(steady)
    setup = meta["timings"]["setup_s"] + (times[0] - per_frame if len(times) > 1 else 0.0)
    k = len(times)
    png, video, job_bytes = measure_bytes(stage, k, cfg.render.fps)
    marked = meta["timings"]["marked_s"]
    return Calibration(job["job_id"], k, cfg.render.device, round(per_frame, 4), round(setup, 4),
                       png["unmarked"] + png["mask"], str(stage),
                       round(statistics.median(marked), 4) if region and marked else None,
                       png, video, job_bytes)


def measure_bytes(stage: Path, frames: int, fps: int) -> tuple[dict[str, float], float, float]:
    """Bytes measured on a calibration folder's ``frames`` frames: PNG bytes per frame of the
    unmarked, mask and objmask passes, mask-video bytes per frame, and the per-job files
    (``object.npz``, ``scene.json``, ``meta.json``). The masks are encoded as a mask video
    (``mask.mkv`` in the folder): FFV1 codes every frame on its own, so bytes per frame measured on
    a few frames spread over the orbit hold for the whole orbit."""
    png = {sub: sum(os.path.getsize(stage / sub / f"{i:04d}.png") for i in range(frames)) / frames
           for sub in ("unmarked", "mask", "objmask")}
    video = write_mask_video(stage / "mask", frames, stage / "mask.mkv", fps) / frames
    job_bytes = float(sum(os.path.getsize(stage / f) for f in ("object.npz", "scene.json", "meta.json")))
    return png, video, job_bytes


def in_view_frames(job: dict[str, Any], n: int) -> list[int]:
    """Frames where the planner predicts the defect in view (all ``n`` when it made no prediction).
    The prediction counts frames above the visibility threshold; a region is rendered from one
    defect pixel on, so this slightly undercounts region frames."""
    vis = job.get("visibility")
    if not vis or "predicted_intervals" not in vis:
        return list(range(n))
    return [f for s, e in vis["predicted_intervals"] for f in range(int(s), min(int(e), n))]


def estimate(cfg: Config, jobs: list[dict[str, Any]], cal: Calibration, cores: int | None = None) -> dict[str, Any]:
    """Totals for the whole plan from one calibration (see :func:`format_estimate`)."""
    r = cfg.render
    n_def = sum(1 for j in jobs if j["defect"])
    frames = len(jobs) * r.orbit_frames
    marked_renders = n_def * r.orbit_frames if r.marked == "render" else 0
    render_s = (frames + marked_renders) * cal.seconds_per_frame + len(jobs) * (cal.setup_seconds + STARTUP_S)
    region_frames = 0
    if r.marked == "region":
        region_frames = sum(len(in_view_frames(j, r.orbit_frames)) for j in jobs if j["defect"])
        # without a timed region frame (no defect predicted in view), count it as a full frame: an upper bound
        render_s += region_frames * (cal.region_seconds_per_frame or cal.seconds_per_frame)
    _, _, workers = task_resources(cfg, cores or os.cpu_count() or 1)
    clips = len(jobs) * (r.orbit_frames // r.clip_frames)
    # marked PNGs are about as large as unmarked ones (mask PNGs are tiny): count the pair twice
    png_bytes = 2 * frames * cal.bytes_per_frame
    mp4_bytes = 2 * frames * r.width * r.height * H264_BITS_PER_PIXEL / 8  # unmarked + marked clips
    storage = storage_bytes(cfg, jobs, cal)
    return {"jobs": len(jobs), "defective_jobs": n_def, "clips": clips, "frames_per_pass": frames,
            "frames_rendered": frames + marked_renders, "region_frames": region_frames,
            "seconds_per_frame": cal.seconds_per_frame,
            "render_hours": render_s / 3600.0, "workers_here": workers,
            "wall_hours_here": render_s / 3600.0 / workers, "png_bytes": png_bytes, "mp4_bytes": mp4_bytes,
            **storage}


def storage_bytes(cfg: Config, jobs: list[dict[str, Any]], cal: Calibration) -> dict[str, float]:
    """Bytes on the shared output, for the whole plan and per orbit, in two layouts:

    - ``before``: every PNG pass of every frame kept next to the clips (the layout before jobs
      published only what the dataset needs): unmarked, marked (≈ unmarked), mask, objmask, and
      with ``annotate.evidence: twin`` the twin frames of defective orbits (≈ unmarked);
    - ``after``: what a job publishes with the config's ``render.keep_frames``: the clips, the mask
      video, the meshes and JSON, plus the PNG passes ``keep_frames`` keeps.

    PNG, mask-video and per-job bytes are measured on the calibration frames; clip bytes are an
    estimate (:data:`H264_BITS_PER_PIXEL`, unmarked + marked videos). Annotations and clip indexes
    (a few kB per orbit) are left out of both."""
    r = cfg.render
    n = len(jobs)
    n_def = sum(1 for j in jobs if j["defect"])
    frames = n * r.orbit_frames
    png = cal.png_bytes or {"unmarked": cal.bytes_per_frame, "mask": 0.0, "objmask": 0.0}
    u, m, o = png.get("unmarked", 0.0), png.get("mask", 0.0), png.get("objmask", 0.0)
    twin_frames = n_def * r.orbit_frames if cfg.annotate.evidence == "twin" else 0
    all_png = frames * (2 * u + m + o) + twin_frames * u
    clips = 2 * frames * r.width * r.height * H264_BITS_PER_PIXEL / 8
    fixed = n * cal.job_bytes
    kept = {"none": 0.0, "mask": frames * (m + o), "all": all_png}[r.keep_frames]
    before = all_png + clips + fixed
    after = clips + fixed + frames * cal.mask_video_bytes_per_frame + kept
    return {"before_bytes": before, "after_bytes": after, "before_per_orbit": before / max(n, 1),
            "after_per_orbit": after / max(n, 1), "clip_bytes": clips,
            "mask_video_bytes": frames * cal.mask_video_bytes_per_frame, "kept_png_bytes": kept}


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} PB"


def format_estimate(cfg: Config, cal: Calibration, e: dict[str, Any]) -> str:
    r = cfg.render
    return "\n".join([
        f"estimate: {e['jobs']:,} orbits ({e['defective_jobs']:,} defective) → {e['clips']:,} clips; "
        f"{e['frames_per_pass']:,} frames per pass, {e['frames_rendered']:,} Cycles frames "
        f"(marked: {r.marked}" + (f", plus {e['region_frames']:,} region renders at "
                                  f"{cal.region_seconds_per_frame or cal.seconds_per_frame:.2f} s)"
                                  if r.marked == "region" else ")"),
        f"calibration: {cal.frames} frame(s) of {cal.job_id} at {r.width}x{r.height}, {r.samples} spp, denoise "
        f"{r.denoise}, device {cal.device} on this machine: {cal.seconds_per_frame:.2f} s/frame, setup "
        f"{cal.setup_seconds:.2f} s/job (frames in {cal.folder})",
        f"render time: {e['render_hours']:,.1f} Blender-hours; here with {e['workers_here']} worker(s): "
        f"{e['wall_hours_here']:,.1f} h wall (divide by the number of such workers on a farm)",
        f"disk: renders {_size(e['png_bytes'])} (PNG, measured {_size(cal.bytes_per_frame)} per unmarked+mask "
        f"frame; marked ≈ unmarked), clips ≈ {_size(e['mp4_bytes'])} (H.264, assuming "
        f"{H264_BITS_PER_PIXEL} bit/pixel)",
        f"published: before (every PNG pass + clips) {_size(e['before_per_orbit'])}/orbit, {_size(e['before_bytes'])} "
        f"in all; after (keep_frames: {r.keep_frames}) {_size(e['after_per_orbit'])}/orbit, "
        f"{_size(e['after_bytes'])} in all (clips ≈ {_size(e['clip_bytes'])}, an estimate at {H264_BITS_PER_PIXEL} "
        f"bit/pixel; mask video {_size(e['mask_video_bytes'])} and PNGs {_size(e['kept_png_bytes'])} measured "
        f"per frame on the calibration)",
    ])
