"""A contact sheet of rendered orbits: per job, unmarked frames above marked frames at evenly spaced
azimuths, with the job id and each frame's mask pixel count, so a person can check a run at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .io import atomic_write_bytes, read_json
from .layout import Layout


def _label(img: np.ndarray, text: str, scale: float) -> None:
    cv2.putText(img, text, (3, max(10, int(12 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * scale, (0, 0, 0), 3,
                cv2.LINE_AA)
    cv2.putText(img, text, (3, max(10, int(12 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)


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
                img = cv2.imread(str(d / kind / f"{i:04d}.png"), cv2.IMREAD_COLOR)
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
