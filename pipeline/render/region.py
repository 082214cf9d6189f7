"""Per-frame render regions: where a second pass that only changes the defect can differ from the
first (``marked: region``; also the defect-free twin of a later evidence pass).

A frame whose exact defect mask is empty has no region: the second pass reuses its first-pass frame.
Otherwise the region is a bounding rectangle grown by a margin and clipped to the frame, of
- ``scope="object"`` (the default): the defect *and the whole object* as seen in the frame. The
  paint's light is reflected and bounced mostly onto the object itself (a glossy bowl mirrors a red
  patch across its inside), so the object's bounds catch what a margin around the defect misses;
- ``scope="defect"``: the defect's pixels only.
The margin (a fraction of the frame width) adds the floor around the object. docs/performance.md
measures both against a full second render. Rectangles are ``(x0, y0, x1, y1)`` in pixels,
top-left origin, half-open (``image[y0:y1, x0:x1]``).

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


def union(a: Optional[Rect], b: Optional[Rect]) -> Optional[Rect]:
    """The smallest rectangle holding both (either may be ``None``)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def region_of(mask: np.ndarray, margin: int, object_mask: Optional[np.ndarray] = None) -> Optional[Rect]:
    """The region of one frame: the defect mask's bounding rectangle, united with the object mask's
    when given (``scope="object"``), grown by ``margin`` pixels; ``None`` when the defect is not seen."""
    box = mask_bbox(mask)
    if box is None:
        return None
    if object_mask is not None:
        box = union(box, mask_bbox(object_mask))
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


def _load(m: Path | np.ndarray) -> np.ndarray:
    return read_mask(m) if isinstance(m, (str, Path)) else m


def regions_from_masks(masks: Iterable[Path | np.ndarray], margin: int,
                       object_masks: Optional[Iterable[Path | np.ndarray]] = None) -> list[Optional[Rect]]:
    """Per-frame regions from defect mask PNG paths or arrays and, for ``scope="object"``, the
    matching object masks (host side; e.g. ``<job>/mask/*.png`` and ``<job>/objmask/*.png``)."""
    masks = list(masks)
    objs = list(object_masks) if object_masks is not None else [None] * len(masks)
    if len(objs) != len(masks):
        raise ValueError(f"{len(masks)} defect masks but {len(objs)} object masks")
    return [region_of(_load(m), margin, None if o is None else _load(o)) for m, o in zip(masks, objs)]


def regions_of_job(job_dir: Path, margin: int, scope: str = "object") -> list[Optional[Rect]]:
    """Regions of every frame of a rendered job folder, from its ``mask/`` (and ``objmask/``) PNGs."""
    if scope not in ("object", "defect"):
        raise ValueError(f"region scope must be 'object' or 'defect', got {scope!r}")
    d = Path(job_dir)
    masks = sorted((d / "mask").glob("*.png"))
    objs = [d / "objmask" / p.name for p in masks] if scope == "object" else None
    return regions_from_masks(masks, margin, objs)


def as_json(rects: Sequence[Optional[Rect]]) -> list[Optional[list[int]]]:
    return [list(r) if r is not None else None for r in rects]


def from_json(rows: Sequence[Optional[Sequence[int]]]) -> list[Optional[Rect]]:
    return [tuple(int(v) for v in r) if r is not None else None for r in rows]  # type: ignore[misc]
