"""Uniform frame sampling from a clip MP4 (PyAV), with each sampled frame's true timestamp.

32 frames per clip for evaluation and 16 for training by default; a clip with fewer frames than
asked gives all of its frames once (frames are never duplicated). Frame ``i`` of ``N`` is the one
nearest the centre of the ``i``-th of ``N`` equal time bins, so the samples spread over the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

EVAL_FRAMES = 32
TRAIN_FRAMES = 16


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


def sample_frames(path: str | Path, n: int = EVAL_FRAMES) -> SampledFrames:
    """Decode ``path`` and keep ``n`` uniformly spaced frames with their real timestamps (seconds
    from the first frame's presentation time, rounded to 3 decimals)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: clip video not found")
    try:
        with av.open(str(path)) as container:
            decoded = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base) if f.pts is not None else None)
                       for f in container.decode(video=0)]
    except av.FFmpegError as e:
        raise ValueError(f"{path}: cannot decode video ({e})") from None
    if not decoded:
        raise ValueError(f"{path}: video has no frames")
    t0 = decoded[0][1] or 0.0
    idx = uniform_indices(len(decoded), n)
    return SampledFrames(frames=np.stack([decoded[i][0] for i in idx]),
                         timestamps=[round((decoded[i][1] if decoded[i][1] is not None else 0.0) - t0, 3)
                                     for i in idx],
                         indices=idx, total_frames=len(decoded))
