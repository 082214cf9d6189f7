"""annotate: per-frame defect visibility from the exact mask pass and from the marked/unmarked diff,
turned into candidate visible intervals → ``<out>/annotations/<job_id>.json``.

The mask gives reference intervals (camera-ray first hits on defect faces). The diff is the
MMVIAD method (compare the red-marked and unmarked renders); a raw diff also flags red light
bouncing onto nearby surfaces, so a pixel counts only if it both changed and became redder, and
isolated pixels are removed by a small morphological opening.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import AnnotateConfig, Config
from .intervals import runs, union_iou, visible_intervals
from .io import read_json, write_json
from .render.job import job_dir

FORMAT_VERSION = 1


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ValueError(f"{path}: cannot read image")
    return img


def mask_score(mask: np.ndarray) -> int:
    """Defect pixels in an 8-bit ID-mask frame."""
    return int(np.count_nonzero(mask > 127))


def red_chroma(bgr: np.ndarray) -> np.ndarray:
    """``r - max(g, b)`` per pixel, as int16."""
    b, g, r = (bgr[..., i].astype(np.int16) for i in range(3))
    return r - np.maximum(g, b)


def diff_mask(marked: np.ndarray, unmarked: np.ndarray, a: AnnotateConfig) -> np.ndarray:
    """Pixels where the red paint is seen: changed by ≥ ``diff_threshold`` in some channel *and*
    redder by ≥ ``red_chroma_threshold``, then opened with a ``diff_open_px`` disk."""
    changed = np.abs(marked.astype(np.int16) - unmarked.astype(np.int16)).max(axis=2) >= a.diff_threshold
    redder = (red_chroma(marked) - red_chroma(unmarked)) >= a.red_chroma_threshold
    m = (changed & redder).astype(np.uint8)
    if a.diff_open_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * a.diff_open_px + 1, 2 * a.diff_open_px + 1))
        opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
        # Opening erases defects only a pixel or two wide at grazing angles; keep such pixels when the
        # exact paint colour is unmistakable (very red), drop them when they are faint bleed.
        strong = (red_chroma(marked) >= 2 * a.red_chroma_threshold) & (m > 0)
        m = opened | strong.astype(np.uint8)
    return m.astype(bool)


def threshold_px(a: AnnotateConfig, width: int, height: int) -> float:
    return max(float(a.min_visible_px), a.min_visible_frac * width * height)


def annotate_job(job_id: str, cfg: Config, out: Path) -> dict[str, Any]:
    """Score every frame of a rendered job and derive both interval sets."""
    d = job_dir(out, job_id)
    meta = read_json(d / "meta.json")
    n = int(meta["frames"])
    a = cfg.annotate
    mask_scores, diff_scores = [], []
    for i in range(n):
        name = f"{i:04d}.png"
        mask_scores.append(mask_score(_read(d / "mask" / name, cv2.IMREAD_GRAYSCALE)))
        marked = _read(d / "marked" / name, cv2.IMREAD_COLOR)
        unmarked = _read(d / "unmarked" / name, cv2.IMREAD_COLOR)
        diff_scores.append(int(np.count_nonzero(diff_mask(marked, unmarked, a))))
    w, h = int(meta["render"]["width"]), int(meta["render"]["height"])
    thr = threshold_px(a, w, h)
    iv = {k: visible_intervals(s, thr, a.min_len, a.min_gap) for k, s in (("mask", mask_scores), ("diff", diff_scores))}
    frame_mask = np.zeros(n, bool)
    frame_diff = np.zeros(n, bool)
    for s, e in iv["mask"]:
        frame_mask[s:e] = True
    for s, e in iv["diff"]:
        frame_diff[s:e] = True
    return {
        "format_version": FORMAT_VERSION,
        "job_id": job_id,
        "fps": int(meta["render"]["fps"]),
        "num_frames": n,
        "width": w,
        "height": h,
        "threshold_px": thr,
        "params": a.model_dump(mode="json"),
        "mask": {"scores": mask_scores, "intervals": [list(x) for x in iv["mask"]]},
        "diff": {"scores": diff_scores, "intervals": [list(x) for x in iv["diff"]]},
        "agreement": {"iou": round(union_iou(iv["diff"], iv["mask"]), 6),
                      "disagree_spans": [list(x) for x in runs(frame_mask != frame_diff)]},
    }


def annotation_path(out: Path, job_id: str) -> Path:
    return Path(out) / "annotations" / f"{job_id}.json"


def annotate_jobs(job_ids: list[str], cfg: Config, out: Path, progress: bool = True,
                  force: bool = False) -> dict[str, str]:
    """Annotate rendered jobs (skipping ones already annotated with the same params).

    Returns ``{job_id: status}``; a job that is not rendered yet is ``missing``, a job whose frames
    cannot be read is ``failed: <reason>``."""
    from tqdm import tqdm

    status: dict[str, str] = {}
    params = cfg.annotate.model_dump(mode="json")
    for jid in tqdm(job_ids, desc="annotate", unit="job", disable=not progress):
        path = annotation_path(out, jid)
        if not (job_dir(out, jid) / "DONE").exists():
            status[jid] = "missing"
            continue
        if not force and path.exists():
            old = read_json(path)
            if old.get("params") == params and old.get("format_version") == FORMAT_VERSION:
                status[jid] = "skipped"
                continue
        try:
            ann = annotate_job(jid, cfg, out)
        except (ValueError, KeyError, OSError) as e:
            status[jid] = f"failed: {e}"
            continue
        if path.exists():
            reviewed = read_json(path).get("reviewed")
            if reviewed is not None:  # a reviewer's corrections survive re-annotation
                ann["reviewed"] = reviewed
        write_json(path, ann, indent=None)
        status[jid] = "done"
    return status
