"""Per-frame render regions: where a second pass that only changes the defect can differ from the
first (``marked: region``; also the defect-free twin of a later evidence pass).

A region is the bounding rectangle of the exact defect mask, grown by a margin that covers light the
defect bounces onto nearby surfaces, clipped to the frame. A frame whose mask is empty has no region:
the second pass reuses its first-pass frame. Rectangles are ``(x0, y0, x1, y1)`` in pixels, top-left
origin, half-open (``image[y0:y1, x0:x1]``).

This module needs numpy only (``cv2`` is imported lazily by the file readers) because
``blender_scripts/regions.py`` imports it inside Blender, so the geometry is written once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

Rect = tuple[int, int, int, int]


def margin_px(margin: float, width: int) -> int:
    """The margin in pixels for a frame ``width`` pixels wide: ``margin`` is a fraction of the
    width, so one setting covers the same part of the scene at every resolution (rounded up)."""
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"region margin must be a fraction of the frame width in [0, 1], got {margin}")
    return int(math.ceil(margin * width - 1e-9))


def mask_bbox(mask: np.ndarray) -> Optional[Rect]:
    """Bounding rectangle of the ``True`` (or > 127 for uint8) pixels of a ``(H, W)`` mask; ``None`` if empty."""
    m = mask > 127 if mask.dtype == np.uint8 else mask.astype(bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def dilate(rect: Rect, margin: int, width: int, height: int) -> Rect:
    """``rect`` grown by ``margin`` pixels on every side, clipped to a ``width`` × ``height`` frame."""
    x0, y0, x1, y1 = rect
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def region_of(mask: np.ndarray, margin: int) -> Optional[Rect]:
    """The region of one frame: the mask's bounding rectangle grown by ``margin`` pixels (``None``
    when the defect is not seen)."""
    box = mask_bbox(mask)
    if box is None:
        return None
    h, w = mask.shape[:2]
    return dilate(box, margin, w, h)


def area(rect: Optional[Rect]) -> int:
    if rect is None:
        return 0
    x0, y0, x1, y1 = rect
    return max(0, x1 - x0) * max(0, y1 - y0)


def inside(rect: Optional[Rect], height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` image that is ``True`` inside ``rect``."""
    sel = np.zeros((height, width), bool)
    if rect is not None:
        x0, y0, x1, y1 = rect
        sel[y0:y1, x0:x1] = True
    return sel


def chebyshev_distance(rect: Optional[Rect], height: int, width: int) -> np.ndarray:
    """Per pixel, how many pixels ``rect`` must grow to contain it (0 inside); ``inf`` without a rect.
    A margin ``m`` covers exactly the pixels at distance ``<= m``."""
    if rect is None:
        return np.full((height, width), np.inf)
    x0, y0, x1, y1 = rect
    xs, ys = np.arange(width), np.arange(height)
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0)
    return np.maximum(dy[:, None], dx[None, :]).astype(float)


def read_mask(path: Path) -> np.ndarray:
    """An 8-bit mask PNG as a boolean ``(H, W)`` array (host side)."""
    import cv2

    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise ValueError(f"{path}: cannot read mask image")
    return m > 127


def regions_from_masks(masks: Iterable[Path | np.ndarray], margin: int) -> list[Optional[Rect]]:
    """Per-frame regions from mask PNG paths or arrays (host side; e.g. ``<job>/mask/*.png``)."""
    return [region_of(read_mask(m) if isinstance(m, (str, Path)) else m, margin) for m in masks]


def regions_of_job(job_dir: Path, margin: int) -> list[Optional[Rect]]:
    """Regions of every frame of a rendered job folder, from its ``mask/NNNN.png`` files."""
    return regions_from_masks(sorted((Path(job_dir) / "mask").glob("*.png")), margin)


def as_json(rects: Sequence[Optional[Rect]]) -> list[Optional[list[int]]]:
    return [list(r) if r is not None else None for r in rects]


def from_json(rows: Sequence[Optional[Sequence[int]]]) -> list[Optional[Rect]]:
    return [tuple(int(v) for v in r) if r is not None else None for r in rows]  # type: ignore[misc]
