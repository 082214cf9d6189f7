"""Evidence: how much of a defect the *unmarked* video actually shows.

The exact mask says when the defect's faces are in view; it does not say whether they look any
different from an undamaged object there (a shallow bulge under soft light can be in view and
invisible). With ``annotate.evidence: twin`` the renderer also draws the object's defect-free twin
(same scene, camera, seed and settings; only the mesh differs) in a rectangle around the defect
(``blender_scripts/render_job.py``), and this module compares the two per frame:

- change = the largest per-channel difference between the twin's and the unmarked frame (8-bit);
- noise floor = the ``evidence_floor_percentile`` of the change inside the twin's rectangle but
  outside the grown defect mask (there the geometry is identical, so what differs is sampling
  noise and the denoiser's spread), at least ``evidence_floor_min`` levels;
- evidence pixels = pixels of the defect mask grown by ``evidence_dilate_px`` whose change exceeds
  the floor; contrast = their mean change in levels.

A frame is *evident* when it has at least the visibility threshold of evidence pixels (the same
threshold that makes mask pixels "in view"); ``in_view_and_evident`` intervals need both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .config import AnnotateConfig
from .intervals import visible_intervals
from .render.region import Rect, inside

#: fewer reference pixels than this around the defect: the floor is ``evidence_floor_min`` alone
MIN_RING_PX = 32


@dataclass(frozen=True)
class FrameEvidence:
    pixels: int       # evidence pixels inside the grown defect mask
    contrast: float   # their mean change, in 8-bit levels (0 without evidence)
    floor: float      # the noise floor the change had to exceed, in levels


#: a frame where the defect is not seen (no twin rectangle), or an object without a defect
NOT_SEEN = FrameEvidence(0, 0.0, 0.0)


def change(unmarked: np.ndarray, twin: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference of two ``(H, W, 3)`` uint8 frames, as int16."""
    if unmarked.shape != twin.shape:
        raise ValueError(f"twin frame is {twin.shape[1]}x{twin.shape[0]}, unmarked is "
                         f"{unmarked.shape[1]}x{unmarked.shape[0]}")
    return np.abs(unmarked.astype(np.int16) - twin.astype(np.int16)).max(axis=2)


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` dilated by a disc of radius ``px`` pixels."""
    if px <= 0:
        return mask.astype(bool)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def frame_evidence(unmarked: np.ndarray, twin: np.ndarray, mask: np.ndarray, rect: Optional[Rect],
                   a: AnnotateConfig) -> FrameEvidence:
    """Evidence of one frame: ``mask`` is the exact defect mask (bool), ``rect`` the rectangle where
    the twin was rendered (``None``: the defect is not seen and the twin frame is the unmarked one)."""
    if rect is None or not mask.any():
        return NOT_SEEN
    d = change(unmarked, twin)
    grown = grow(mask, a.evidence_dilate_px)
    ring = inside(rect, *mask.shape) & ~grown
    floor = float(a.evidence_floor_min)
    if np.count_nonzero(ring) >= MIN_RING_PX:
        floor = max(floor, float(np.percentile(d[ring], a.evidence_floor_percentile)))
    hit = grown & (d > floor)
    n = int(np.count_nonzero(hit))
    return FrameEvidence(n, round(float(d[hit].mean()), 3) if n else 0.0, round(floor, 3))


def track(frames: Sequence[FrameEvidence], mask_scores: Sequence[int], thr: float,
          a: AnnotateConfig) -> dict[str, Any]:
    """The annotation's ``evidence`` block: per-frame pixels, contrast and floor, and the
    ``in_view_and_evident`` intervals (a frame counts when both its mask and its evidence reach
    ``thr``; then the same run length and gap rules as the mask)."""
    both = [min(int(m), f.pixels) for m, f in zip(mask_scores, frames)]
    return {
        "scores": [f.pixels for f in frames],
        "contrast": [f.contrast for f in frames],
        "floor": [f.floor for f in frames],
        "intervals": [list(x) for x in visible_intervals(both, thr, a.min_len, a.min_gap)],
    }
