"""clips: cut each 360° orbit into 2-second clips, encode H.264 MP4 (unmarked for the benchmark,
marked for review) and map visible intervals to clip-local seconds.

Per job: ``<out>/clips/<clip_id>.mp4``, ``<clip_id>.marked.mp4`` and ``<job_id>.clips.json``;
``<out>/clips.jsonl`` gathers every finished job's clips in clip-id order.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import av
import cv2
import numpy as np

from .config import Config
from .ids import clip_id, validate_id
from .intervals import clip_local, frames_to_seconds
from .io import iter_jsonl, read_json, write_json, write_jsonl
from .render.job import job_dir


def encode_mp4(frames: Iterable[np.ndarray], path: Path, fps: int, crf: int, preset: str) -> int:
    """Encode RGB uint8 frames to H.264 (yuv420p) via PyAV; write to a temp name, then rename.

    x264 runs single-threaded so the bytes do not depend on the machine's core count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps, 1))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
            for rgb in frames:
                if count == 0:
                    stream.height, stream.width = rgb.shape[:2]
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a missing frame or a full disk leaves no half-written temp file
        raise
    tmp.replace(path)
    return count


def _frames(folder: Path, start: int, end: int) -> Iterable[np.ndarray]:
    for i in range(start, end):
        p = folder / f"{i:04d}.png"
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p}: cannot read frame")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def clip_records(job: dict[str, Any], ann: dict[str, Any], cfg: Config) -> list[dict[str, Any]]:
    """The clips of one orbit with their intervals (mask, diff, and reviewed when present)."""
    fps, cf, n = ann["fps"], cfg.render.clip_frames, ann["num_frames"]
    sources = {"mask": ann["mask"]["intervals"], "diff": ann["diff"]["intervals"]}
    rev = ann.get("reviewed")
    # A review covers the clips whose frames lie in ``covered`` (set per clip by `mmviad review
    # import`); a block without ``covered`` covers the whole orbit.
    covered = None if rev is None or "covered" not in rev else [tuple(x) for x in rev["covered"]]
    recs = []
    for i in range(n // cf):
        s, e = i * cf, (i + 1) * cf
        cid = clip_id(job["job_id"], i)
        local = {k: clip_local([tuple(x) for x in v], s, e) for k, v in sources.items()}
        if rev is not None and (covered is None or any(a <= s and e <= b for a, b in covered)):
            local["reviewed"] = clip_local([tuple(x) for x in rev["intervals"]], s, e)
        recs.append({
            "clip_id": cid, "job_id": job["job_id"], "clip_index": i,
            "video": f"clips/{cid}.mp4", "video_marked": f"clips/{cid}.marked.mp4",
            "fps": fps, "num_frames": cf, "duration": round(cf / fps, 6),
            "start_frame": s, "end_frame": e,
            "azimuth_deg": [round(job["camera"]["start_azimuth_deg"] + 360.0 * s / n, 3),
                            round(job["camera"]["start_azimuth_deg"] + 360.0 * e / n, 3)],
            "intervals_frames": {k: [list(x) for x in v] for k, v in local.items()},
            "intervals": {k: frames_to_seconds(v, fps) for k, v in local.items()},
        })
    return recs


def clip_job(job: dict[str, Any], cfg: Config, out: Path) -> str:
    """Encode the clips of one annotated job; ``skipped`` when its index is newer than its inputs."""
    out = Path(out)
    jid = validate_id(job["job_id"], "job_id")
    ann_path = out / "annotations" / f"{jid}.json"
    if not ann_path.exists():
        return "missing"
    index = out / "clips" / f"{jid}.clips.json"
    ann = read_json(ann_path)
    recs = clip_records(job, ann, cfg)
    if index.exists() and read_json(index) == recs and all((out / r["video"]).exists() for r in recs):
        return "skipped"
    d = job_dir(out, jid)
    q = cfg.qa
    for r in recs:
        for folder, key in (("unmarked", "video"), ("marked", "video_marked")):
            encode_mp4(_frames(d / folder, r["start_frame"], r["end_frame"]), out / r[key], r["fps"], q.crf,
                       q.encode_preset)
    write_json(index, recs, indent=None)  # last: the index marks the job's clips complete
    return "done"


def clip_jobs(jobs: list[dict[str, Any]], cfg: Config, out: Path, progress: bool = True) -> dict[str, str]:
    from tqdm import tqdm

    status = {}
    for job in tqdm(jobs, desc="clips", unit="job", disable=not progress):
        try:
            status[job["job_id"]] = clip_job(job, cfg, out)
        except (ValueError, OSError, av.FFmpegError) as e:
            status[job["job_id"]] = f"failed: {e}"
    return status


def gather_clips(out: Path) -> list[dict[str, Any]]:
    """All clip records of finished jobs, in (job, clip index) order, written to ``<out>/clips.jsonl``."""
    out = Path(out)
    recs = []
    for f in sorted((out / "clips").glob("*.clips.json")):
        recs.extend(read_json(f))
    recs.sort(key=lambda r: (r["job_id"], r["clip_index"]))
    write_jsonl(out / "clips.jsonl", recs)
    return recs


def read_clips(out: Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(Path(out) / "clips.jsonl"))
