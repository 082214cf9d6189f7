"""``marked: composite``: paint the exact-mask pixels of an unmarked frame red in 2-D (one render
instead of two). Shading is kept by modulating the paint with the pixel's luminance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..io import atomic_write_bytes

PAINT_BGR = np.array([0.0, 0.0, 230.0])


def tint(unmarked_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return a copy of ``unmarked_bgr`` with ``mask`` pixels replaced by shaded red paint."""
    img = unmarked_bgr.astype(np.float32)
    lum = img.mean(axis=2, keepdims=True) / 255.0
    red = np.clip(PAINT_BGR * (0.35 + 0.9 * lum), 0, 255)  # (H, W, 3)
    sel = mask > 127
    img[sel] = red[sel]
    return img.astype(np.uint8)


def composite_marked(unmarked: Path, mask: Path, dest: Path) -> None:
    img = cv2.imread(str(unmarked), cv2.IMREAD_COLOR)
    m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    if img is None or m is None:
        raise RuntimeError(f"cannot read {unmarked} or {mask}")
    ok, buf = cv2.imencode(".png", tint(img, m), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"cannot encode {dest}")
    atomic_write_bytes(dest, buf.tobytes())
