"""clips: cut each 360° orbit into 2-second clips, encode H.264 MP4 (unmarked for the benchmark,
marked for review) and map visible intervals to clip-local seconds.

Per job: ``<out>/clips/<clip_id>.mp4``, ``<clip_id>.marked.mp4`` and ``<job_id>.clips.json``;
``<out>/clips.jsonl`` gathers every finished job's clips in clip-id order.
"""

from __future__ import annotations

import platform
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import av
import cv2
import numpy as np

from . import evidence_stats
from .config import Config
from .ids import clip_id, clip_windows, validate_id
from .intervals import clip_local, frames_to_seconds
from .io import DataError, read_json, write_json, write_jsonl
from .layout import CLIP_INDEX_SUFFIX, Layout
from .outcome import JobOutcome, JobState
from .records import Clip, RecordError, parse, read_annotation, read_clip_index, read_clips_jsonl

#: x264's CPU feature set, pinned. Left to auto-detection, x264 picks its AVX-512 code on CPUs that
#: have it, and that path reads memory it never wrote (the bytes, and even the decoded pixels, then
#: depend on what the process allocated earlier; docs/formats.md "Reproducible clips"). SSE2 is on
#: every x86-64 CPU and gives the same bytes as x264's plain C code (measured), which other
#: architectures run with ``no-asm``; it costs about 10 % of encode time against auto-detection.
X264_PARAMS = "asm=SSE2" if platform.machine().lower() in ("x86_64", "amd64") else "no-asm=1"


def encode_mp4(frames: Iterable[np.ndarray], path: Path, fps: int, crf: int, preset: str) -> int:
    """Encode RGB uint8 frames to H.264 (yuv420p) via PyAV; write to a temp name, then rename.

    The bytes depend only on the frames and the settings: x264 runs single-threaded (no dependence
    on the core count) with a pinned CPU feature set (:data:`X264_PARAMS`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps, 1))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "x264-params": X264_PARAMS}
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
    shape = None
    for i in range(start, end):
        p = folder / f"{i:04d}.png"
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p}: cannot read frame")
        if shape is not None and bgr.shape != shape:   # the encoder would silently rescale it
            raise ValueError(f"{p}: frame is {bgr.shape[1]}x{bgr.shape[0]}, frame {start} is {shape[1]}x{shape[0]}")
        shape = bgr.shape
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def clip_records(job: dict[str, Any], ann: dict[str, Any], cfg: Config) -> list[dict[str, Any]]:
    """The clips of one orbit with their intervals (mask, diff, and in_view_and_evident and reviewed
    when present) and, with evidence, each clip's evidence strength."""
    fps, cf, n = ann["fps"], cfg.render.clip_frames, ann["num_frames"]
    sources = {"mask": ann["mask"]["intervals"], "diff": ann["diff"]["intervals"]}
    if "evidence" in ann:
        sources[evidence_stats.LABEL_SOURCE] = ann["evidence"]["intervals"]
    rev = ann.get("reviewed")
    # A review covers the clips whose frames lie in ``covered`` (set per clip by `mmviad review
    # import`); a block without ``covered`` covers the whole orbit.
    covered = None if rev is None or "covered" not in rev else [tuple(x) for x in rev["covered"]]
    recs = []
    for i, (s, e) in enumerate(clip_windows(n, cf)):
        cid = clip_id(job["job_id"], i)
        local = {k: clip_local([tuple(x) for x in v], s, e) for k, v in sources.items()}
        if rev is not None and (covered is None or any(a <= s and e <= b for a, b in covered)):
            local["reviewed"] = clip_local([tuple(x) for x in rev["intervals"]], s, e)
        recs.append({
            "clip_id": cid, "job_id": job["job_id"], "clip_index": i,
            "video": Layout.clip_video_rel(cid), "video_marked": Layout.clip_video_rel(cid, marked=True),
            "fps": fps, "num_frames": cf, "duration": round(cf / fps, 6),
            "start_frame": s, "end_frame": e,
            "azimuth_deg": [round(job["camera"]["start_azimuth_deg"] + 360.0 * s / n, 3),
                            round(job["camera"]["start_azimuth_deg"] + 360.0 * e / n, 3)],
            "intervals_frames": {k: [list(x) for x in v] for k, v in local.items()},
            "intervals": {k: frames_to_seconds(v, fps) for k, v in local.items()},
            **({"evidence": evidence_stats.clip_evidence(ann, s, e)} if "evidence" in ann else {}),
        })
    return recs


def clip_job(job: dict[str, Any], cfg: Config, out: Path) -> JobState:
    """Encode the clips of one annotated job: ``done``; ``skipped`` when its index already matches
    its inputs; ``missing`` without an annotation. Raises on a failure (:func:`clip_jobs` catches it).

    A job published without its PNG frames keeps the videos its task encoded (a changed
    ``qa.crf`` or ``qa.encode_preset`` is then not applied) and only its index is written again."""
    layout = Layout(out)
    jid = validate_id(job["job_id"], "job_id")
    ann_path = layout.annotation(jid)
    if not ann_path.exists():
        return JobState.MISSING
    index = layout.clip_index(jid)
    ann = read_annotation(ann_path, jid).to_json()
    if ann["num_frames"] % cfg.render.clip_frames:
        raise RecordError(f"{ann_path}: num_frames: {ann['num_frames']} orbit frames are not a whole number of "
                          f"{cfg.render.clip_frames}-frame clips (render and annotate again with this config)")
    recs = [parse(Clip, r, f"{index}: clip {i}").to_json() for i, r in enumerate(clip_records(job, ann, cfg))]
    try:
        old = read_json(index) if index.exists() else None
    except DataError:
        old = None   # unreadable: written again below
    if old == recs and all(layout.resolve(r["video"]).exists() for r in recs):
        return JobState.SKIPPED
    d = layout.render_dir(jid)
    q = cfg.qa
    if not layout.frames_dir(jid, "unmarked").is_dir() and layout.is_done(jid):
        # published without PNG frames (render.keep_frames): the videos were encoded from the frames
        # when the job was rendered and do not depend on the annotation; only the index changes
        lost = [r[k] for r in recs for k in ("video", "video_marked") if not layout.resolve(r[k]).exists()]
        if lost:
            raise ValueError(f"{layout.resolve(lost[0])}: missing, and the job's PNG frames were not kept "
                             f"(render.keep_frames); render it again with render.keep_frames: all")
        write_json(index, recs, indent=None)
        return JobState.DONE
    for r in recs:
        for folder, key in (("unmarked", "video"), ("marked", "video_marked")):
            encode_mp4(_frames(d / folder, r["start_frame"], r["end_frame"]), layout.resolve(r[key]), r["fps"], q.crf,
                       q.encode_preset)
    write_json(index, recs, indent=None)  # last: the index marks the job's clips complete
    return JobState.DONE


def clip_jobs(jobs: list[dict[str, Any]], cfg: Config, out: Path, progress: bool = True) -> dict[str, JobOutcome]:
    """:func:`clip_job` for each job: ``{job_id: outcome}``, a failure (bad annotation, encoder
    error) kept as the job's ``failed`` outcome so the others go on."""
    from tqdm import tqdm

    status: dict[str, JobOutcome] = {}
    for job in tqdm(jobs, desc="clips", unit="job", disable=not progress):
        t0 = time.perf_counter()
        try:
            state = clip_job(job, cfg, out)
        except (ValueError, OSError, av.FFmpegError) as e:
            status[job["job_id"]] = JobOutcome.failure(job["job_id"], f"{e}")
            continue
        status[job["job_id"]] = JobOutcome(job["job_id"], state, time.perf_counter() - t0)
    return status


def gather_clips(out: Path) -> list[dict[str, Any]]:
    """All clip records of finished jobs, in (job, clip index) order, written to ``<out>/clips.jsonl``.

    Each ``<job_id>.clips.json`` is validated (:class:`pipeline.records.Clip`); a bad one raises
    :class:`~pipeline.records.RecordError` naming the file, the clip and the field (`mmviad clips`
    writes it again)."""
    layout = Layout(out)
    recs = []
    for f in sorted(layout.clips_dir().glob("*" + CLIP_INDEX_SUFFIX)):
        try:
            recs.extend(c.to_json() for c in read_clip_index(f, f.name.removesuffix(CLIP_INDEX_SUFFIX)))
        except DataError as e:
            raise RecordError(f"{e} (run `mmviad clips` to write it again)") from None
    recs.sort(key=lambda r: (r["job_id"], r["clip_index"]))
    write_jsonl(layout.clips_jsonl(), recs)
    return recs


def read_clips(out: Path) -> list[dict[str, Any]]:
    """The validated rows of ``<out>/clips.jsonl`` (:func:`pipeline.records.read_clips_jsonl`)."""
    return read_clips_jsonl(Layout(out).clips_jsonl())
