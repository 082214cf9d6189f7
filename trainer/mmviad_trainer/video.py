"""Clip decoding with PyAV: uniform frame sampling with the sampled frames' real indices.

No silent re-sampling downstream: the processor is called with ``do_sample_frames=False`` and the
:class:`Clip` metadata (source fps, frame indices, total frames), so Qwen3-VL's ``<t seconds>``
tokens are the true times of the frames the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image


@dataclass
class Clip:
    """Sampled frames of one clip (RGB PIL images, all the same size) and where they came from."""
    frames: list[Image.Image]
    fps: float
    frames_indices: list[int]
    total_num_frames: int

    def metadata(self) -> dict[str, Any]:
        """The ``video_metadata`` dict that transformers' video processors accept."""
        return {"fps": self.fps, "frames_indices": list(self.frames_indices),
                "total_num_frames": self.total_num_frames, "duration": self.total_num_frames / self.fps}

    @property
    def timestamps(self) -> list[float]:
        return [i / self.fps for i in self.frames_indices]


def uniform_indices(total: int, n: int) -> list[int]:
    """``n`` frame indices spread uniformly over ``total`` frames (centre of each of n bins)."""
    if total <= 0:
        raise ValueError("a clip needs at least one frame")
    if n >= total:
        return list(range(total))
    return [min(total - 1, int((i + 0.5) * total / n)) for i in range(n)]


def decode_clip(path: Path, num_frames: int, size: tuple[int, int], fps_hint: float | None = None) -> Clip:
    """Decode ``path``, keep ``num_frames`` uniform frames, resize each to ``size`` = (W, H).

    ``size`` must be a multiple of 32 in both dimensions (patch 16 × spatial merge 2). An odd
    number of sampled frames is allowed; the processor pads the temporal patch.
    """
    w, h = size
    if w % 32 or h % 32:
        raise ValueError(f"frame size {size} must be a multiple of 32 (Qwen3-VL patch 16 x merge 2)")
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else float(fps_hint or 0)
            all_frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.FFmpegError, IndexError) as e:
        raise ValueError(f"{path}: cannot decode video ({e})") from None
    if not all_frames:
        raise ValueError(f"{path}: no video frames")
    if fps <= 0:
        raise ValueError(f"{path}: unknown frame rate")
    idx = uniform_indices(len(all_frames), num_frames)
    frames = [Image.fromarray(all_frames[i]).resize((w, h), Image.BICUBIC) for i in idx]
    return Clip(frames=frames, fps=fps, frames_indices=idx, total_num_frames=len(all_frames))


def blank_clip(clip: Clip) -> Clip:
    """The same clip with every frame black (same size, indices and timestamps): the control input
    that shows whether a model's answers come from the video or from the prompt alone."""
    frames = [Image.new("RGB", f.size) for f in clip.frames]
    return Clip(frames=frames, fps=clip.fps, frames_indices=list(clip.frames_indices),
                total_num_frames=clip.total_num_frames)


def load_clip(path: Path, num_frames: int, size: tuple[int, int], blank: bool = False) -> Clip:
    """:func:`decode_clip`, or its :func:`blank_clip` when ``blank`` (config ``data.blank_video``)."""
    clip = decode_clip(path, num_frames, size)
    return blank_clip(clip) if blank else clip


def write_test_mp4(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Encode RGB uint8 frames to H.264 MP4 (used by test fixtures)."""
    from fractions import Fraction

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps, 1))
        s.pix_fmt = "yuv420p"
        s.height, s.width = frames[0].shape[:2]
        for fr in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
