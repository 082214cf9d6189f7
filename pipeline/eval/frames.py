"""Uniform frame sampling from a clip MP4 (PyAV), with each sampled frame's true timestamp, and the
one resolution policy every evaluation path uses.

32 frames per clip by default (the paper's setting); a clip with fewer frames than asked gives all
of its frames once (frames are never duplicated). Frame ``i`` of ``N`` is the one nearest the
centre of the ``i``-th of ``N`` equal time bins, so the samples spread over the clip.

Resolution: with ``max_pixels`` set, each frame is resized — aspect ratio kept — to the size
Qwen-VL's processors use (:func:`fit_size`: both sides multiples of 32 = patch 16 × merge 2, area
within ``[min_pixels, max_pixels]``); the resize is PyAV's (swscale, bicubic), so every
environment that pins the same ``av`` gets the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import av
import numpy as np

EVAL_FRAMES = 32
FACTOR = 32                      # Qwen3-VL: patch 16 × spatial merge 2
DEFAULT_MAX_PIXELS = 448 * 448   # per frame; a 16:9 clip becomes 576×320
MIN_PIXELS = 4 * FACTOR * FACTOR


@dataclass(frozen=True)
class SampledFrames:
    """RGB uint8 frames ``(N, H, W, 3)`` and their presentation times in clip seconds."""
    frames: np.ndarray
    timestamps: list[float]
    indices: list[int]
    total_frames: int


def uniform_indices(total: int, n: int) -> list[int]:
    """``min(n, total)`` distinct indices in ``[0, total)``, centres of equal bins."""
    if total <= 0:
        return []
    if n <= 0:
        raise ValueError(f"number of frames must be positive, got {n}")
    k = min(n, total)
    return [int(np.floor((i + 0.5) * total / k)) for i in range(k)]


def fit_size(height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = MIN_PIXELS,
             factor: int = FACTOR) -> tuple[int, int]:
    """``(H, W)``: both multiples of ``factor``, the aspect ratio kept as closely as that allows,
    and the area in ``[min_pixels, max_pixels]`` (Qwen-VL's "smart resize")."""
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if max_pixels < factor * factor:
        raise ValueError(f"max_pixels must be at least {factor * factor}, got {max_pixels}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def sample_frames(path: str | Path, n: int = EVAL_FRAMES, max_pixels: Optional[int] = None) -> SampledFrames:
    """Decode ``path`` and keep ``n`` uniformly spaced frames with their real timestamps (seconds
    from the first frame's presentation time, rounded to 3 decimals); with ``max_pixels``, resized
    by :func:`fit_size` (native size otherwise)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: clip video not found")
    try:
        with av.open(str(path)) as container:
            decoded = list(container.decode(video=0))
            if not decoded:
                raise ValueError(f"{path}: video has no frames")
            idx = uniform_indices(len(decoded), n)
            size = {}
            if max_pixels is not None:
                h, w = fit_size(decoded[0].height, decoded[0].width, max_pixels)
                size = {"width": w, "height": h, "interpolation": "BICUBIC"}
            picked = [decoded[i] for i in idx]
            times = [float(f.pts * f.time_base) if f.pts is not None else None for f in (decoded[0], *picked)]
            frames = np.stack([f.to_ndarray(format="rgb24", **size) for f in picked])
    except av.FFmpegError as e:
        raise ValueError(f"{path}: cannot decode video ({e})") from None
    t0 = times[0] or 0.0
    return SampledFrames(frames=frames, timestamps=[round((t if t is not None else 0.0) - t0, 3) for t in times[1:]],
                         indices=idx, total_frames=len(decoded))
