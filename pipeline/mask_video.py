"""The lossless mask video: a job's exact defect-mask frames (8-bit gray, ``mask/NNNN.png``) as one
FFV1 stream in Matroska, ``renders/<job_id>/mask.mkv`` (:meth:`pipeline.layout.Layout.mask_video`).

It is what a job keeps of its mask when its PNG frames are not published (``render.keep_frames``):
re-annotation recomputes the mask track from it (:mod:`pipeline.annotate`). FFV1 is lossless, so a
decoded frame equals the PNG's pixels byte for byte; :func:`write_mask_video` checks that before it
returns. Every frame is a key frame (GOP 1): a frame decodes on its own, and the size per frame
measured on a few calibration frames (``mmviad plan --estimate``) holds for a whole orbit.

The file's bytes depend only on the frames: one encoder thread, fixed slices, and the muxer and
encoder in bit-exact mode (no creation date, no random segment id, no library version string).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

#: FFV1 settings: version 3 with per-slice CRCs, 4 slices, the range coder with a custom state table
#: (stored in the header; half the bytes of the default table on 1920×1080 masks, which are almost
#: all zero: 6.2 against 12.3 KB per frame), small context model, one thread, every frame a key frame
_FFV1_OPTIONS = {"level": "3", "slices": "4", "slicecrc": "1", "coder": "range_tab", "context": "0",
                 "threads": "1", "g": "1"}


def read_mask_png(path: Path) -> np.ndarray:
    """One mask frame as ``(H, W)`` uint8, read the way annotation reads it (grayscale)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: cannot read mask frame")
    return img


def encode_mask_video(frames: Iterable[np.ndarray], path: Path, fps: int) -> int:
    """Encode ``(H, W)`` uint8 frames losslessly to ``path`` (temp name, then rename); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with av.open(str(tmp), mode="w", format="matroska", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("ffv1", rate=Fraction(fps, 1))
            stream.pix_fmt = "gray"
            stream.options = dict(_FFV1_OPTIONS)
            stream.codec_context.flags |= av.codec.context.Flags.bitexact
            for gray in frames:
                if gray.ndim != 2 or gray.dtype != np.uint8:
                    raise ValueError(f"{path}: mask frame {count} is not 8-bit gray ({gray.dtype}, shape {gray.shape})")
                if count == 0:
                    stream.height, stream.width = gray.shape
                elif gray.shape != (stream.height, stream.width):
                    raise ValueError(f"{path}: mask frame {count} is {gray.shape[1]}x{gray.shape[0]}, frame 0 is "
                                     f"{stream.width}x{stream.height}")
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(gray), format="gray")):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return count


def read_mask_video(path: Path) -> Iterator[np.ndarray]:
    """The frames of a mask video as ``(H, W)`` uint8, in order."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="gray")
    except av.FFmpegError as e:
        raise ValueError(f"{path}: cannot decode mask video ({e})") from None


def write_mask_video(mask_dir: Path, frames: int, path: Path, fps: int) -> int:
    """``mask_dir/0000.png …`` → ``path``, then decode it and check every frame equals its PNG byte
    for byte (raises ``ValueError`` naming the first frame that differs). Returns the file's size."""
    pngs = [Path(mask_dir) / f"{i:04d}.png" for i in range(frames)]
    n = encode_mask_video((read_mask_png(p) for p in pngs), path, fps)
    if n != frames:
        raise ValueError(f"{path}: wrote {n} frames, expected {frames}")
    got = 0
    for i, decoded in enumerate(read_mask_video(path)):
        if i >= frames or not np.array_equal(decoded, read_mask_png(pngs[i])):
            Path(path).unlink(missing_ok=True)
            raise ValueError(f"{path}: frame {i} does not round-trip to {pngs[min(i, frames - 1)]}")
        got += 1
    if got != frames:
        Path(path).unlink(missing_ok=True)
        raise ValueError(f"{path}: decodes to {got} frames, expected {frames}")
    return Path(path).stat().st_size
