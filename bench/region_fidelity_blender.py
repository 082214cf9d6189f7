"""Blender side of ``bench/region_fidelity.py`` (run with the bpy wheel of .venv, which also has cv2):
one job, three passes in one process, per-frame statistics to ``stats.json``.

1. unmarked orbit with the exact defect mask and an object mask; the noisy passes of every frame
   where the defect is seen are kept (``RegionPass.keep_base``);
2. the full marked orbit (the reference, ``marked: render``); for each frame and each candidate
   region (defect bounds + margins, object bounds + margins) the region composition is made from
   the reference's own noisy passes cut to the region (a border render gives exactly those; pass 3
   checks it) and compared with the reference;
3. the real region pass with the configured scope and margin (border renders), compared with the
   reference.

Usage: python bench/region_fidelity_blender.py SCENE_JSON PARAMS_JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "blender_scripts"))
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

import regions  # noqa: E402
import render_settings  # noqa: E402
import scene_build  # noqa: E402
from pipeline.annotate import diff_mask  # noqa: E402
from pipeline.config import AnnotateConfig  # noqa: E402
from pipeline.render import region as geom  # noqa: E402
from pipeline.scene_spec import SceneSpec  # noqa: E402

def _take_png(d: Path, dest: Path) -> np.ndarray:
    files = list(d.glob("*.png"))
    if len(files) != 1:
        raise RuntimeError(f"expected one PNG in {d}, found {len(files)}")
    os.replace(files[0], dest)
    return cv2.imread(str(dest), cv2.IMREAD_GRAYSCALE) > 127


def _compare(img: np.ndarray, ref: np.ndarray, rect) -> dict:
    d = np.abs(img.astype(np.int16) - ref.astype(np.int16)).max(axis=2)
    sel = geom.inside(rect, *d.shape)
    inn, out = d[sel], d[~sel]
    return {"max_in": int(inn.max()) if inn.size else 0, "mean_in": float(inn.mean()) if inn.size else 0.0,
            "max_out": int(out.max()) if out.size else 0, "mean_out": float(out.mean()) if out.size else 0.0,
            "out_ge8": int((out >= 8).sum()), "out_ge24": int((out >= 24).sum())}


def main() -> None:
    spec = SceneSpec.from_json(json.loads(Path(sys.argv[1]).read_text()), sys.argv[1])
    params = json.loads(Path(sys.argv[2]).read_text())
    out = Path(spec.output)
    acfg = AnnotateConfig(**params.get("annotate", {}))
    scene_build.reset()
    render_settings.configure(spec.render)
    mats = scene_build.add_object(spec)
    scene_build.add_floor(spec)
    scene_build.add_world(spec)
    cam = scene_build.add_camera(spec.camera)
    mats["object"].material_slots[0].material.pass_index = render_settings.OBJECT_PASS_INDEX
    scene = bpy.context.scene
    w, h = scene.render.resolution_x, scene.render.resolution_y
    for sub in ("unmarked", "mask", "objmask", "marked", "region"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    mtmp, otmp = out / ".mask_tmp", out / ".obj_tmp"
    render_settings.setup_mask_pass(str(mtmp), str(otmp))
    rp = regions.RegionPass(scene, out / ".region_tmp")
    frames = [f.to_json() for f in spec.camera.frames]
    margins = [int(m) for m in params["margins_px"]]
    obj_margins = [int(m) for m in params["object_margins_px"]]
    chosen, scope = spec.region.margin_px, spec.region.scope

    def render(path: Path) -> float:
        scene.render.filepath = str(path)
        t0 = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        return time.perf_counter() - t0

    stats: list[dict] = []
    for i, fr in enumerate(frames):
        scene_build.place_camera(cam, fr["location"], fr["target"])
        t = render(out / "unmarked" / f"{i:04d}.png")
        m = _take_png(mtmp, out / "mask" / f"{i:04d}.png")
        o = _take_png(otmp, out / "objmask" / f"{i:04d}.png")
        box = geom.mask_bbox(m)
        rp.keep_base(i, (0, 0, w, h) if box else None)
        stats.append({"frame": i, "mask_px": int(m.sum()), "defect_box": box, "object_box": geom.union(geom.mask_bbox(o), box),
                      "t_unmarked": t})
        print(f"[fidelity] unmarked {i + 1}/{len(frames)}", flush=True)

    # Pass 2: the reference, and every candidate region composed from its own noisy passes.
    ng = scene.compositing_node_group
    for n in ng.nodes:
        if n.bl_idname == "CompositorNodeOutputFile" and n != rp.fo:
            n.mute = True
    mats["object"].material_slots[1].material = mats["red"]
    tmp_png = out / ".compose.png"
    for i, fr in enumerate(frames):
        s = stats[i]
        scene_build.place_camera(cam, fr["location"], fr["target"])
        s["t_marked"] = render(out / "marked" / f"{i:04d}.png")
        ref = cv2.imread(str(out / "marked" / f"{i:04d}.png"))
        unm = cv2.imread(str(out / "unmarked" / f"{i:04d}.png"))
        full = rp.last_passes()
        s["ref_diff_px"] = int(diff_mask(ref, unm, acfg).sum())
        s["ref_changed_px"] = int((np.abs(ref.astype(np.int16) - unm).max(axis=2) > 0).sum())
        if s["defect_box"] is None:
            s["none"] = _compare(unm, ref, None)
            print(f"[fidelity] marked {i + 1}/{len(frames)} (not seen)", flush=True)
            continue
        # The path tracer's own halo: noisy pixels the paint changed, by distance from the defect's box.
        base = {n: regions._read_float(rp.kept[i][n]) for n in rp.names}
        changed = np.abs(full["noisy"][..., :3] - base["noisy"][..., :3]).max(axis=2) > 0
        dist = geom.chebyshev_distance(s["defect_box"], h, w)[changed]
        s["noisy_changed_px"] = int(changed.sum())
        s["noisy_changed_by_dist"] = {str(k): int((dist > k).sum()) for k in [0, 2, 4, 8, 16, 32, 64, 128]}
        variants = {f"defect+{k}": geom.dilate(s["defect_box"], k, w, h) for k in margins}
        variants.update({f"object+{k}": geom.dilate(s["object_box"], k, w, h) for k in obj_margins})
        # the configured region, composed from the reference's passes: pass 3 must reproduce it
        variants["configured"] = geom.dilate(s["object_box"] if scope == "object" else s["defect_box"], chosen, w, h)
        s["variants"] = {}
        (out / ".configured").mkdir(exist_ok=True)
        for name, rect in variants.items():
            x0, y0, x1, y1 = rect
            rp.compose(i, rect, {n: full[n][y0:y1, x0:x1] for n in rp.names}, tmp_png)
            img = cv2.imread(str(tmp_png))
            if name == "configured":
                os.replace(tmp_png, out / ".configured" / f"{i:04d}.png")
            s["variants"][name] = {"rect": list(rect), "area": geom.area(rect) / (w * h),
                                   "diff_px": int(diff_mask(img, unm, acfg).sum()), **_compare(img, ref, rect)}
        print(f"[fidelity] marked {i + 1}/{len(frames)}", flush=True)
    tmp_png.unlink(missing_ok=True)

    # Pass 3: the real region pass (border renders) at the configured margin.
    rp.begin()
    for i, fr in enumerate(frames):
        s = stats[i]
        if s["defect_box"] is None:
            continue
        rect = geom.dilate(s["object_box"] if scope == "object" else s["defect_box"], chosen, w, h)
        scene_build.place_camera(cam, fr["location"], fr["target"])
        dest = out / "region" / f"{i:04d}.png"
        s["t_region"] = rp.render(i, rect, dest)
        img = cv2.imread(str(dest))
        ref = cv2.imread(str(out / "marked" / f"{i:04d}.png"))
        s["region"] = {"rect": list(rect), "area": geom.area(rect) / (w * h),
                       "diff_px": int(diff_mask(img, cv2.imread(str(out / "unmarked" / f"{i:04d}.png")), acfg).sum()),
                       **_compare(img, ref, rect)}
        # border render vs the same region cut from the full render (bit-exact noisy passes: only the
        # denoiser's own rounding may differ)
        s["region"]["vs_cut_max"] = int(np.abs(img.astype(np.int16) - cv2.imread(str(out / ".configured" / f"{i:04d}.png"))).max())
        print(f"[fidelity] region {i + 1}/{len(frames)}", flush=True)
    rp.end()
    (out / "stats.json").write_text(json.dumps({"job_id": spec.job_id, "width": w, "height": h,
                                                "margin_px": chosen, "frames": stats}, indent=1))


if __name__ == "__main__":
    main()
