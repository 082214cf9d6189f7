"""The look sheet (``docs/look_sheet.png``): one frame per defect type (rows) and environment group
(columns: photographic HDRI, physical sky, studio, indoor rig), each at the camera framing of a
config (default: the paper config, ``manifests/mmviad.yaml``) and rendered with Cycles on this
machine at a reduced size. Every cell is the unmarked frame in which the exact mask shows the
most defect pixels over the orbit; its inset magnifies the defect (unmarked) with the exact mask's
outline in red, so one sees both that the damage reads in the plain frame and where the mask is.

    .venv/bin/python bench/look_sheet.py --out docs/look_sheet.png

Objects, materials and floors vary from cell to cell (per-cell seeds); the environment of a cell is
drawn from its group only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import Config, load_config  # noqa: E402
from pipeline.ids import DEFECT_TYPES  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.plan import plan_jobs  # noqa: E402
from pipeline.render.blender import run_blender  # noqa: E402
from pipeline.render.scene import build_mesh, scene_spec  # noqa: E402
from pipeline.scenery.catalog import load_catalog  # noqa: E402
from pipeline.scenery.visibility import predict_pixels  # noqa: E402

GROUPS = ("hdri", "sky", "studio", "indoor")
# Categories per defect type, taken in turn along a row (Anomaly-ShapeNet's classes for each type).
OBJECTS = {"crack": ["helmet3", "vase3", "bucket0", "tap0"], "scratch": ["bowl1", "helmet0", "vase8", "cap2"],
           "concavity": ["cup1", "bottle0", "vase0", "bowl0"], "bulge": ["bottle1", "jar0", "cup0", "helmet1"],
           "hole": ["bucket1", "helmet2", "vase9", "cap0"], "broken": ["bucket0", "vase4", "cap3", "bowl5"]}


def cell_config(base: Config, kind: str, category: str, group: str, width: int, height: int, samples: int,
                seed: int) -> Config:
    d = base.model_dump(mode="json")
    d["seed"] = seed
    d["objects"].update({"categories": [category], "objects_per_category": 1, "normal_share": 0.0,
                         "defects": {kind: 1}})
    names = sorted(n for n, e in load_catalog(d["scene"].get("assets")).environments.items() if e["kind"] == group)
    d["scene"].update({"environments": names, "visibility": {"predict": False}})
    d["render"].update({"width": width, "height": height, "samples": samples, "denoise": "fast", "device": "cpu",
                        "adaptive_threshold": 0.0, "marked": "composite", "kernel_cache_dir": None})
    return Config.model_validate(d)


def render_cell(cfg: Config, work: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The job's unmarked frame with the most predicted defect pixels, and its exact mask."""
    job = plan_jobs(cfg, progress=False)[0]
    mesh = build_mesh(job, cfg)
    stage = work / job["job_id"]
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    mesh.save(stage / "object.npz")
    spec = scene_spec(job, cfg, mesh, stage / "object.npz", stage)
    frames = spec["camera"]["frames"]
    px = predict_pixels(mesh, frames, spec["camera"]["lens_mm"], cfg.render.width, cfg.render.height, 96)
    spec["camera"]["frames"] = [frames[int(np.argmax(px))]]
    write_json(stage / "scene.json", spec)
    if run_blender(stage / "scene.json", stage / "blender.log", 3600) != 0:
        raise RuntimeError(f"Blender failed; see {stage / 'blender.log'}")
    rgb = cv2.imread(str(stage / "unmarked" / "0000.png"))
    mask = cv2.imread(str(stage / "mask" / "0000.png"), cv2.IMREAD_GRAYSCALE) > 127
    return rgb, mask, {"job": job["job_id"], "environment": job["environment"]["name"],
                       "floor": job["floor"]["name"], "material": job["material"]["name"]}


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def compose_cell(rgb: np.ndarray, mask: np.ndarray, text: str, zoom: int = 3) -> np.ndarray:
    """The frame with a magnified, outlined inset of the defect in its top-right corner."""
    out = rgb.copy()
    h, w = mask.shape
    if mask.any():
        ys, xs = np.nonzero(mask)
        side = int(max(ys.ptp(), xs.ptp(), 24) * 1.6)
        cy, cx = int(ys.mean()), int(xs.mean())
        y0, x0 = int(np.clip(cy - side // 2, 0, max(h - side, 0))), int(np.clip(cx - side // 2, 0, max(w - side, 0)))
        crop, mcrop = rgb[y0:y0 + side, x0:x0 + side], mask[y0:y0 + side, x0:x0 + side]
        size = min(int(h * 0.5), side * zoom)
        inset = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
        m = cv2.resize(mcrop.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(inset, contours, -1, (0, 0, 255), 1, cv2.LINE_AA)
        cv2.rectangle(inset, (0, 0), (size - 1, size - 1), (255, 255, 255), 2)
        out[4:4 + size, w - size - 4:w - 4] = inset
    _label(out, text, (6, h - 8))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "manifests" / "mmviad.yaml",
                   help="whose scene section (framing, looks) the cells use (default: the paper config)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "look_sheet.png")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--keep", type=Path, default=None, help="keep the renders under this folder")
    args = p.parse_args(argv)
    base = load_config(args.config)
    work_ctx = tempfile.TemporaryDirectory(prefix="mmviad-sheet-") if args.keep is None else None
    work = Path(work_ctx.name) if work_ctx else args.keep
    rows = []
    t0 = time.perf_counter()
    try:
        for r, kind in enumerate(DEFECT_TYPES):
            cells = []
            for c, group in enumerate(GROUPS):
                cat = OBJECTS[kind][c % len(OBJECTS[kind])]
                cfg = cell_config(base, kind, cat, group, args.width, args.height, args.samples, args.seed + 10 * r + c)
                rgb, mask, info = render_cell(cfg, work)
                cells.append(compose_cell(rgb, mask, f"{kind} | {cat} | {info['environment']} | {info['floor']} | "
                                                     f"{info['material']}"))
                print(f"{kind:<10} {group:<7} {info['job']:<26} {info['environment']:<24} {info['floor']:<15} "
                      f"{info['material']:<18} {int(mask.sum())} mask px  ({time.perf_counter() - t0:.0f} s)", flush=True)
            rows.append(np.hstack([np.pad(x, ((2, 2), (2, 2), (0, 0)), constant_values=255) for x in cells]))
    finally:
        if work_ctx:
            work_ctx.cleanup()
    head = np.full((34, rows[0].shape[1], 3), 255, np.uint8)
    for c, group in enumerate(GROUPS):
        cv2.putText(head, {"hdri": "photographic HDRI (Blender's Poly Haven set)", "sky": "physical sky + sun",
                           "studio": "studio rig", "indoor": "indoor rig"}[group],
                    (c * (args.width + 4) + 8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack([head, *rows]))
    print(f"wrote {args.out} ({len(DEFECT_TYPES)} x {len(GROUPS)} cells, {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
