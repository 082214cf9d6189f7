"""Render one job inside Blender: the unmarked orbit with its exact defect mask, then the marked orbit
(``marked: render``: every frame again with the red paint; ``marked: region``: only the region of
each frame where the paint can change pixels, composed with the unmarked pass, see regions.py), and,
when the spec names a ``twin_mesh``, the defect-free twin's region around the defect (the evidence
pass, ``pipeline/evidence.py``).

Usage (bpy wheel):   python blender_scripts/render_job.py SCENE_JSON
       (Blender):    $BLENDER -b --factory-startup -P blender_scripts/render_job.py -- SCENE_JSON

Writes into the spec's ``output`` folder: ``unmarked/NNNN.png``, ``mask/NNNN.png`` (defect faces),
``objmask/NNNN.png`` (the whole object), ``marked/NNNN.png`` (frames 0-based; in region mode only
the frames with a region, the host links the others to their unmarked frame), ``twin/NNNN.png``
(only frames that show the defect; likewise completed by the host) and ``meta.json``. The host checks the files, moves the folder
into place and writes the DONE marker; this script never marks a job complete.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: set by the host (pipeline/render/blender.py): the pid of the process that started this Blender
PARENT_ENV = "MMVIAD_PARENT_PID"


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this Blender when the process that started it dies (a Ray worker
    killed with its driver or its node). An orphan would go on writing into the job's scratch folder
    while the job's rerun starts over in that same folder. Blender runs in a session of its own
    (so that a Ctrl-C reaches the host first), so nothing else stops it. Done before ``import bpy``;
    if the parent is already gone by then, exit at once."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(1)


_die_with_parent()

import bpy  # noqa: E402

import regions  # noqa: E402
import render_settings  # noqa: E402
import scene_build  # noqa: E402
from pipeline.render import region as region_geom  # noqa: E402  (numpy only; path set by regions)
from pipeline.scene_spec import SceneSpec, SpecError  # noqa: E402  (stdlib only)

EXIT_CONFIG = 4  # the host does not retry this exit code; the reason is the log's FATAL line


def _args(argv: list[str]) -> Path:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    else:
        argv = argv[1:]
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    return Path(argv[0])


def _render_frame(cam, frame, filepath: str) -> float:
    scene_build.place_camera(cam, frame.location, frame.target)
    bpy.context.scene.render.filepath = filepath
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    return time.perf_counter() - t0


def _move_mask(tmp_dir: Path, dest: Path) -> None:
    """The File Output node appends the frame number to its name; give the file its plain name."""
    files = list(tmp_dir.glob("*.png"))
    if len(files) != 1:
        raise RuntimeError(f"expected one mask PNG in {tmp_dir}, found {len(files)}")
    os.replace(files[0], dest)


def main() -> None:
    spec_path = _args(sys.argv)
    try:
        spec = SceneSpec.from_json(json.loads(spec_path.read_text()), str(spec_path))
    except SpecError as e:  # a spec this script cannot read: retrying cannot fix it
        print(f"[render_job] FATAL: {e}", flush=True)
        raise SystemExit(EXIT_CONFIG)
    out = Path(spec.output)
    t_start = time.perf_counter()
    scene_build.reset()
    try:
        used = render_settings.configure(spec.render)
    except RuntimeError as e:  # e.g. no GPU: a setup error that a retry cannot fix
        print(f"[render_job] FATAL: {e}", flush=True)
        raise SystemExit(EXIT_CONFIG)
    mats = scene_build.add_object(spec)
    scene_build.add_floor(spec)
    scene_build.add_world(spec)
    cam = scene_build.add_camera(spec.camera)
    twin_mode = spec.twin_mode
    for sub in ("unmarked", "mask", "objmask", "marked") + (("twin",) if twin_mode else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    mask_tmp, obj_tmp = out / ".mask_tmp", out / ".objmask_tmp"
    mats["object"].material_slots[0].material.pass_index = render_settings.OBJECT_PASS_INDEX  # only the passes see it
    # The mask pass is always on in the pipeline; benchmarks switch it off to time the bare render.
    mask_node = (render_settings.setup_mask_pass(str(mask_tmp), str(obj_tmp)) if spec.mask_pass is not False
                 else None)
    region_mode = spec.region_mode
    if (region_mode or twin_mode) and mask_node is None:
        print("[render_job] FATAL: marked: region and the twin pass need the mask pass (mask_pass: false)",
              flush=True)
        raise SystemExit(EXIT_CONFIG)
    # The kept passes are large (3 float images per frame with a region: 75 MB at 1920x1080) and
    # short-lived, so they go to node-local temp space ($TMPDIR), never to the shared output folder.
    region_tmp = (Path(tempfile.mkdtemp(prefix=f"mmviad-region-{spec.job_id}-")) if region_mode or twin_mode
                  else None)
    try:
        _render_passes(spec, out, used, mats, cam, mask_node, (mask_tmp, obj_tmp), region_tmp, t_start)
    finally:
        if region_tmp is not None:
            shutil.rmtree(region_tmp, ignore_errors=True)


def _render_passes(spec: SceneSpec, out: Path, used: dict, mats: dict, cam, mask_node, mask_tmps: tuple[Path, Path],
                   region_tmp: Path | None, t_start: float) -> None:
    """The unmarked pass with its masks, then the marked pass, then the twin's; writes meta.json last."""
    mask_tmp, obj_tmp = mask_tmps
    frames = spec.camera.frames
    margin, scope = spec.region.margin_px, spec.region.scope
    region_mode, twin_mode = spec.region_mode, spec.twin_mode
    rp = regions.RegionPass(bpy.context.scene, region_tmp) if region_tmp is not None else None
    rects: list = []        # marked: region
    twin_rects: list = []   # the twin pass: the defect's own bounds grown by the margin (never the object's)
    t_setup = time.perf_counter() - t_start

    times: dict[str, list[float]] = {"unmarked": [], "marked": [], "twin": []}
    progress_every = max(1, len(frames) // 10)
    for i, fr in enumerate(frames):
        times["unmarked"].append(_render_frame(cam, fr, str(out / "unmarked" / f"{i:04d}.png")))
        if mask_node is not None:
            _move_mask(mask_tmp, out / "mask" / f"{i:04d}.png")
            _move_mask(obj_tmp, out / "objmask" / f"{i:04d}.png")
        if rp is not None:
            mask = regions.read_mask(out / "mask" / f"{i:04d}.png")
            obj = regions.read_mask(out / "objmask" / f"{i:04d}.png") if scope == "object" else None
            rects.append(region_geom.region_of(mask, margin, obj) if region_mode else None)
            twin_rects.append(region_geom.region_of(mask, margin) if twin_mode else None)
            rp.keep_base(i, rects[-1] or twin_rects[-1])
        if i % progress_every == 0:
            print(f"[render_job] unmarked {i + 1}/{len(frames)}", flush=True)
    if mask_node is not None:
        mask_tmp.rmdir()
        obj_tmp.rmdir()

    if spec.marked == "render" and spec.has_defect:
        # Identical scene and seed; only slot 1 changes to the red paint.
        compositing = bpy.context.scene.render.use_compositing
        bpy.context.scene.render.use_compositing = False
        mats["object"].material_slots[1].material = mats["red"]
        for i, fr in enumerate(frames):
            times["marked"].append(_render_frame(cam, fr, str(out / "marked" / f"{i:04d}.png")))
            if i % progress_every == 0:
                print(f"[render_job] marked {i + 1}/{len(frames)}", flush=True)
        bpy.context.scene.render.use_compositing = compositing   # the twin's region pass composes
    if rp is not None:
        rp.begin()
        if region_mode:
            # Same scene and seed, slot 1 painted; only each frame's region is path traced.
            mats["object"].material_slots[1].material = mats["red"]
            _region_frames(rp, cam, frames, rects, out / "marked", times["marked"], "marked region", progress_every)
        if twin_mode:
            # Same scene and seed, the object's mesh swapped for its defect-free original.
            scene_build.swap_mesh(mats["object"], spec.twin_mesh, [mats["body"], mats["hidden"]])
            _region_frames(rp, cam, frames, twin_rects, out / "twin", times["twin"], "twin region", progress_every)
        rp.end()

    meta = {
        "job_id": spec.job_id,
        "blender_version": bpy.app.version_string,
        "render": {**spec.render.to_json(), **used},
        "marked_mode": spec.marked,
        "marked_rendered": bool(times["marked"]),
        "look": {"material": spec.material.to_json(), "environment": spec.environment.to_json(),
                 "floor": spec.floor.to_json(), "pose": spec.pose},
        "frames": len(frames),
        **({"region": {"margin_px": margin, "scope": scope, "rects": region_geom.as_json(rects),
                       "frames_rendered": sum(r is not None for r in rects),
                       "pixels_rendered": sum(region_geom.area(r) for r in rects)}} if region_mode else {}),
        **({"twin": {"margin_px": margin, "scope": "defect", "rects": region_geom.as_json(twin_rects),
                     "frames_rendered": sum(r is not None for r in twin_rects),
                     "pixels_rendered": sum(region_geom.area(r) for r in twin_rects)}} if twin_mode else {}),
        "camera": spec.camera.to_json(),
        "timings": {"setup_s": round(t_setup, 4), "unmarked_s": [round(t, 4) for t in times["unmarked"]],
                    "marked_s": [round(t, 4) for t in times["marked"]],
                    **({"twin_s": [round(t, 4) for t in times["twin"]]} if twin_mode else {}),
                    "total_s": round(time.perf_counter() - t_start, 4)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # Linux: KiB
    }
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, out / "meta.json")


def _region_frames(rp: "regions.RegionPass", cam, frames: list, rects: list, dest: Path, times: list[float],
                   what: str, progress_every: int) -> None:
    """Render the current scene state in each frame's rectangle and compose it into ``dest``."""
    todo = [i for i, r in enumerate(rects) if r is not None]
    for k, i in enumerate(todo):
        scene_build.place_camera(cam, frames[i].location, frames[i].target)
        times.append(rp.render(i, rects[i], dest / f"{i:04d}.png"))
        if k % progress_every == 0:
            print(f"[render_job] {what} {k + 1}/{len(todo)} (frame {i})", flush=True)


if __name__ == "__main__":
    main()
