"""A contact sheet of rendered orbits: per job, unmarked frames above marked frames at evenly spaced
azimuths, with the job id and each frame's mask pixel count, so a person can check a run at a glance.

Frames come from the jobs' PNGs; a job published without them (``render.keep_frames: none`` or
``mask``) is shown from its clip videos instead (decoded H.264: the picture is slightly softer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from .io import atomic_write_bytes, read_json
from .layout import Layout
from .records import read_clip_index


def _label(img: np.ndarray, text: str, scale: float) -> None:
    cv2.putText(img, text, (3, max(10, int(12 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * scale, (0, 0, 0), 3,
                cv2.LINE_AA)
    cv2.putText(img, text, (3, max(10, int(12 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def _frame(layout: Layout, job_id: str, kind: str, i: int) -> np.ndarray:
    """Frame ``i`` of the ``unmarked`` or ``marked`` pass as BGR: its PNG, or, for a job published
    without PNG frames (``render.keep_frames``), decoded from the clip video that holds it (H.264,
    so not the exact pixels: fine for a picture)."""
    png = layout.frames_dir(job_id, kind) / f"{i:04d}.png"
    if png.exists():
        img = cv2.imread(str(png), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{png}: cannot read frame")
        return img
    index = layout.clip_index(job_id)
    if not index.exists():
        raise ValueError(f"{png}: missing, and the job has no clips ({index}) to take the frame from; run "
                         "`mmviad clips`, or render with render.keep_frames: all")
    for c in read_clip_index(index, job_id):
        if c.start_frame <= i < c.end_frame:
            video = layout.resolve(c.video_marked if kind == "marked" else c.video)
            with av.open(str(video)) as container:
                for k, frame in enumerate(container.decode(video=0)):
                    if k == i - c.start_frame:
                        return frame.to_ndarray(format="bgr24")
            raise ValueError(f"{video}: has no frame {i - c.start_frame}")
    raise ValueError(f"{index}: no clip holds frame {i}")


def contact_sheet(out: Path, jobs: list[dict[str, Any]], columns: int = 6, tile_width: int = 240) -> np.ndarray:
    """BGR image: two rows per rendered job (unmarked, marked), ``columns`` frames across the orbit."""
    layout = Layout(out)
    rows = []
    for job in jobs:
        d = layout.render_dir(job["job_id"])
        if not layout.is_done(job["job_id"]):
            continue
        n = int(read_json(d / "meta.json")["frames"])
        picks = [int(i * n / columns) for i in range(columns)]
        ann_path = layout.annotation(job["job_id"])
        scores = read_json(ann_path)["mask"]["scores"] if ann_path.exists() else None
        for kind in ("unmarked", "marked"):
            tiles = []
            for i in picks:
                img = _frame(layout, job["job_id"], kind, i)
                scale = tile_width / img.shape[1]
                img = cv2.resize(img, (tile_width, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
                text = f"{job['job_id']} {kind}" if i == picks[0] else f"f{i}"
                if scores is not None and kind == "marked":
                    text += f" mask={scores[i]}px"
                _label(img, text, max(1.0, tile_width / 240))
                tiles.append(img)
            rows.append(np.hstack(tiles))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    if not rows:
        raise ValueError(f"{out}: no finished render to show")
    return np.vstack(rows[:-1])


def write_contact_sheet(out: Path, jobs: list[dict[str, Any]], dest: Path, columns: int = 6,
                        tile_width: int = 240) -> Path:
    ok, buf = cv2.imencode(".png", contact_sheet(out, jobs, columns, tile_width))
    if not ok:
        raise RuntimeError(f"cannot encode {dest}")
    atomic_write_bytes(dest, buf.tobytes())
    return dest
