"""annotate: per-frame defect visibility from the exact mask pass and from the marked/unmarked diff,
turned into candidate visible intervals → ``<out>/annotations/<job_id>.json``.

The mask gives reference intervals (camera-ray first hits on defect faces). The diff is the
MMVIAD method (compare the red-marked and unmarked renders); a raw diff also flags red light
bouncing onto nearby surfaces, so a pixel counts only if it both changed and became redder, and
specks are removed by a small morphological clean-up (see :class:`~pipeline.config.AnnotateConfig`).
Each file records the diff-vs-mask agreement; :mod:`pipeline.agreement` sums it over a dataset.
With ``annotate.evidence: twin`` it also records per frame how much of the defect the unmarked video
shows against the defect-free twin (:mod:`pipeline.evidence`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import evidence
from .config import AnnotateConfig, Config
from .ids import clip_windows
from .intervals import clip_local, hysteresis_intervals, runs, union_iou, visible_intervals
from .io import read_json, write_json
from .layout import Layout
from .outcome import JobOutcome, JobState
from .records import ANNOTATION_FORMAT, Annotation, parse, read_annotation

FORMAT_VERSION = ANNOTATION_FORMAT  # 2: paint-chroma test, speck removal, hysteresis, richer agreement


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ValueError(f"{path}: cannot read image")
    return img


def mask_score(mask: np.ndarray) -> int:
    """Defect pixels in an 8-bit ID-mask frame."""
    return int(np.count_nonzero(mask > 127))


def red_chroma(bgr: np.ndarray) -> np.ndarray:
    """``r - max(g, b)`` per pixel, as int16 (BGR input)."""
    b, g, r = (bgr[..., i].astype(np.int16) for i in range(3))
    return r - np.maximum(g, b)


def raw_diff_mask(marked: np.ndarray, unmarked: np.ndarray, threshold: int) -> np.ndarray:
    """The naive diff: any channel changed by ``>= threshold`` (what the red-chroma test improves on)."""
    return np.abs(marked.astype(np.int16) - unmarked.astype(np.int16)).max(axis=2) >= threshold


def diff_mask(marked: np.ndarray, unmarked: np.ndarray, a: AnnotateConfig) -> np.ndarray:
    """Pixels where the red paint is seen (see :class:`AnnotateConfig` for the three tests and the
    clean-up). Returns a boolean ``(H, W)`` array."""
    chroma_m = red_chroma(marked)
    m = (raw_diff_mask(marked, unmarked, a.diff_threshold)
         & ((chroma_m - red_chroma(unmarked)) >= a.red_chroma_threshold)
         & (chroma_m >= a.paint_chroma_min)).astype(np.uint8)
    if a.diff_open_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * a.diff_open_px + 1, 2 * a.diff_open_px + 1))
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    if a.diff_min_component_px > 1 and m.any():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= a.diff_min_component_px
        keep[0] = False  # background
        m = keep[labels].astype(np.uint8)
    return m.astype(bool)


def threshold_px(a: AnnotateConfig, width: int, height: int) -> float:
    """:meth:`AnnotateConfig.threshold_px` (kept under this name for the benchmarks)."""
    return a.threshold_px(width, height)


def diff_intervals(scores: list[int], thr: float, a: AnnotateConfig) -> list[tuple[int, int]]:
    """Diff scores → intervals with hysteresis (low = ``diff_low_ratio`` × threshold), gaps, min length."""
    return hysteresis_intervals(scores, thr, a.diff_low_ratio * thr, a.min_len, a.min_gap)


def _frames_of(intervals: list[tuple[int, int]], n: int) -> np.ndarray:
    f = np.zeros(n, bool)
    for s, e in intervals:
        f[s:e] = True
    return f


def agreement(diff_iv: list[tuple[int, int]], mask_iv: list[tuple[int, int]], n: int, clip_frames: int,
              pixel: dict[str, int]) -> dict[str, Any]:
    """How far the diff's intervals are from the mask's: orbit IoU, per-clip IoU, the frames where
    they disagree (missed = mask only, spurious = diff only) and pixel-level counts."""
    fm, fd = _frames_of(mask_iv, n), _frames_of(diff_iv, n)
    clip_iou = []
    for s, e in clip_windows(n, clip_frames):
        clip_iou.append(round(union_iou(clip_local(diff_iv, s, e), clip_local(mask_iv, s, e)), 6))
    tp, dp, mp = pixel["both"], pixel["diff"], pixel["mask"]
    return {
        "iou": round(union_iou(diff_iv, mask_iv), 6),
        "clip_iou": clip_iou,
        "disagree_spans": [list(x) for x in runs(fm != fd)],
        "missed_spans": [list(x) for x in runs(fm & ~fd)],
        "spurious_spans": [list(x) for x in runs(fd & ~fm)],
        "pixels": {**pixel,
                   "precision": round(tp / dp, 6) if dp else 1.0,
                   "recall": round(tp / mp, 6) if mp else 1.0},
    }


#: annotate params that change per-frame scores (they act on pixels): re-annotating with a changed
#: one needs the job's PNG frames. The others (thresholds, run lengths, gaps, hysteresis) act on
#: the per-frame scores an annotation stores, so a job whose frames were not kept is re-annotated
#: from its mask video and those scores.
PIXEL_PARAMS = ("diff_threshold", "red_chroma_threshold", "paint_chroma_min", "diff_open_px",
                "diff_min_component_px", "evidence_dilate_px", "evidence_floor_percentile", "evidence_floor_min")


def annotate_job(job_id: str, cfg: Config, out: Path, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score every frame of a rendered job and derive both interval sets.

    A job published without its PNG frames (``render.keep_frames: none`` or ``mask``: no
    ``unmarked/`` folder) is annotated from what was published instead (:func:`annotate_published`),
    which needs ``previous``, the job's current annotation."""
    layout = Layout(out)
    d = layout.render_dir(job_id)
    meta = read_json(d / "meta.json")
    if not layout.frames_dir(job_id, "unmarked").is_dir():
        return annotate_published(job_id, cfg, out, meta, previous)
    n = int(meta["frames"])
    a = cfg.annotate
    twin_rects = _twin_rects(d, meta, n) if a.evidence == "twin" else None
    mask_scores, diff_scores = [], []
    frames_ev: list[evidence.FrameEvidence] = []
    pixel = {"both": 0, "diff": 0, "mask": 0}
    for i in range(n):
        name = f"{i:04d}.png"
        mask = _read(d / "mask" / name, cv2.IMREAD_GRAYSCALE) > 127
        marked = _read(d / "marked" / name, cv2.IMREAD_COLOR)
        unmarked = _read(d / "unmarked" / name, cv2.IMREAD_COLOR)
        if twin_rects and twin_rects[i] is not None:
            twin = _read(d / "twin" / name, cv2.IMREAD_COLOR)
            frames_ev.append(evidence.frame_evidence(unmarked, twin, mask, twin_rects[i], a))
        elif twin_rects is not None:
            frames_ev.append(evidence.NOT_SEEN)
        dm = diff_mask(marked, unmarked, a)
        mask_scores.append(int(np.count_nonzero(mask)))
        diff_scores.append(int(np.count_nonzero(dm)))
        pixel["both"] += int(np.count_nonzero(dm & mask))
        pixel["diff"] += diff_scores[-1]
        pixel["mask"] += mask_scores[-1]
    return _assemble(job_id, cfg, meta, mask_scores, diff_scores, pixel,
                     None if twin_rects is None else frames_ev)


def annotate_published(job_id: str, cfg: Config, out: Path, meta: dict[str, Any],
                       previous: dict[str, Any] | None) -> dict[str, Any]:
    """Annotate a job whose PNG frames were not published: the mask track from the lossless mask
    video (``renders/<job_id>/mask.mkv``), the diff and evidence tracks from the per-frame scores
    of ``previous`` (its current annotation), which stay valid as long as no :data:`PIXEL_PARAMS`
    changed; the pixel counts of the agreement come from ``previous`` likewise. Gives the same
    annotation as :func:`annotate_job` on the PNG frames. Raises ``ValueError`` (one line, naming
    the params and the fix) when a pixel-level param changed or ``previous`` is missing."""
    from .mask_video import read_mask_video

    layout = Layout(out)
    a = cfg.annotate
    n = int(meta["frames"])
    fix = (f"render it again with render.keep_frames: all (delete {layout.render_dir(job_id)} first) "
           "to annotate from its frames")
    where = layout.annotation(job_id)
    if previous is None or "params" not in previous:
        raise ValueError(f"{where}: the job's PNG frames were not kept and it has no current annotation to "
                         f"re-annotate from; {fix}")
    new = a.model_dump(mode="json")
    changed = [k for k in PIXEL_PARAMS if previous["params"].get(k) != new[k]]
    if a.evidence == "twin" and "evidence" not in previous:
        changed.append("evidence")
    if changed:
        what = ", ".join(f"{k} ({previous['params'].get(k)!r} → {new[k]!r})" for k in changed)
        raise ValueError(f"annotate params {what} change per-pixel scores, but the job's PNG frames were not "
                         f"kept (render.keep_frames); {fix}")
    video = layout.mask_video(job_id)
    if not video.exists():
        raise ValueError(f"{video}: missing (the job has neither PNG frames nor a mask video); {fix}")
    mask_scores = [mask_score(f) for f in read_mask_video(video)]
    if len(mask_scores) != n:
        raise ValueError(f"{video}: {len(mask_scores)} frames, meta.json says {n}")
    diff_scores = [int(x) for x in previous["diff"]["scores"]]
    pixel = {k: int(previous["agreement"]["pixels"][k]) for k in ("both", "diff", "mask")}
    if len(diff_scores) != n or pixel["mask"] != sum(mask_scores):
        raise ValueError(f"{where}: its scores do not belong to this render ({len(diff_scores)} diff scores, "
                         f"{pixel['mask']} mask pixels; the mask video has {n} frames, {sum(mask_scores)} pixels); "
                         f"{fix}")
    frames_ev = None
    if a.evidence == "twin":
        e = previous["evidence"]
        frames_ev = [evidence.FrameEvidence(int(p), c, f) for p, c, f in zip(e["scores"], e["contrast"], e["floor"])]
        if len(frames_ev) != n:
            raise ValueError(f"{where}: evidence: {len(frames_ev)} frames, expected {n}")
    return _assemble(job_id, cfg, meta, mask_scores, diff_scores, pixel, frames_ev)


def _assemble(job_id: str, cfg: Config, meta: dict[str, Any], mask_scores: list[int], diff_scores: list[int],
              pixel: dict[str, int], frames_ev: list[evidence.FrameEvidence] | None) -> dict[str, Any]:
    """The annotation of a job from its per-frame scores (the interval-level params act here)."""
    a = cfg.annotate
    n = len(mask_scores)
    w, h = int(meta["render"]["width"]), int(meta["render"]["height"])
    thr = threshold_px(a, w, h)
    mask_iv = visible_intervals(mask_scores, thr, a.min_len, a.min_gap)
    diff_iv = diff_intervals(diff_scores, thr, a)
    ev = {} if frames_ev is None else {"evidence": evidence.track(frames_ev, mask_scores, thr, a)}
    return {
        "format_version": FORMAT_VERSION,
        "job_id": job_id,
        "fps": int(meta["render"]["fps"]),
        "num_frames": n,
        "clip_frames": cfg.render.clip_frames,
        "width": w,
        "height": h,
        "threshold_px": thr,
        "params": a.model_dump(mode="json"),
        "mask": {"scores": mask_scores, "intervals": [list(x) for x in mask_iv]},
        "diff": {"scores": diff_scores, "intervals": [list(x) for x in diff_iv]},
        "agreement": agreement(diff_iv, mask_iv, n, cfg.render.clip_frames, pixel),
        **ev,
    }


def _twin_rects(d: Path, meta: dict[str, Any], n: int) -> list[Any]:
    """Where the twin was rendered, per frame (all ``None`` for a normal object, which has no twin)."""
    from .render.region import from_json

    spec = read_json(d / "scene.json")
    if not spec.get("has_defect"):
        return [None] * n
    if "twin" not in meta:
        raise ValueError(f"{d / 'meta.json'}: twin: missing; the job was rendered without annotate.evidence: twin "
                         "(delete its folder and render it again to measure evidence)")
    rects = from_json(meta["twin"]["rects"])
    if len(rects) != n:
        raise ValueError(f"{d / 'meta.json'}: twin.rects: {len(rects)} rectangles for {n} frames")
    return rects


def annotation_path(out: Path, job_id: str) -> Path:
    """``annotations/<job_id>.json`` (:meth:`pipeline.layout.Layout.annotation`)."""
    return Layout(out).annotation(job_id)


def annotate_jobs(job_ids: list[str], cfg: Config, out: Path, progress: bool = True,
                  force: bool = False) -> dict[str, JobOutcome]:
    """Annotate rendered jobs (skipping ones already annotated with the same params).

    Returns ``{job_id: outcome}``: ``done``, ``skipped`` (up to date), ``missing`` (not rendered
    yet), or ``failed`` with the reason (e.g. frames that cannot be read)."""
    from tqdm import tqdm

    status: dict[str, JobOutcome] = {}
    params = cfg.annotate.model_dump(mode="json")
    layout = Layout(out)
    for jid in tqdm(job_ids, desc="annotate", unit="job", disable=not progress):
        path = layout.annotation(jid)
        if not layout.is_done(jid):
            status[jid] = JobOutcome(jid, JobState.MISSING)
            continue
        t0 = time.perf_counter()
        try:
            # an existing file is read strictly: a broken one fails its job (its reviewed intervals
            # would be lost by overwriting it) instead of being replaced silently; one of an older
            # format is annotated again, keeping its reviewed block
            old = read_json(path) if path.exists() else None
            if isinstance(old, dict) and old.get("format_version") != FORMAT_VERSION:
                old = {k: v for k, v in old.items() if k == "reviewed"}
            elif old is not None:
                old = read_annotation(path, jid).to_json()
        except ValueError as e:
            status[jid] = JobOutcome.failure(jid, f"{e} (move it away to annotate the job again)")
            continue
        if not force and old is not None and old.get("params") == params:
            status[jid] = JobOutcome(jid, JobState.SKIPPED)
            continue
        try:
            ann = annotate_job(jid, cfg, out, previous=old)
        except (ValueError, KeyError, OSError) as e:
            status[jid] = JobOutcome.failure(jid, f"{e}")
            continue
        if old is not None and "reviewed" in old:   # a reviewer's corrections survive re-annotation
            ann["reviewed"] = old["reviewed"]
        try:   # never write what the readers would reject
            ann = parse(Annotation, ann, str(path)).to_json()
        except ValueError as e:
            status[jid] = JobOutcome.failure(jid, f"{e}")
            continue
        write_json(path, ann, indent=None)
        status[jid] = JobOutcome(jid, JobState.DONE, time.perf_counter() - t0)
    return status
