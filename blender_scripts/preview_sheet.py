"""Render contact-sheet tiles with Workbench (flat, fast): one PNG per tile, defect faces in red.

Usage (bpy wheel):   python blender_scripts/preview_sheet.py SPEC_JSON
       (Blender):    $BLENDER -b --factory-startup -P blender_scripts/preview_sheet.py -- SPEC_JSON

SPEC_JSON: {"width": W, "height": H, "tiles": [{"mesh": "a.npz", "output": "a.png",
"camera": {"location": [x, y, z], "target": [x, y, z], "lens_mm": 35}}, ...]}. The host composes
the sheet; this script only renders tiles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402

import scene_build  # noqa: E402  (puts the repo root on sys.path)
from pipeline.scene_spec import SENSOR_FIT, SENSOR_WIDTH_MM, Camera  # noqa: E402

BODY = (0.72, 0.72, 0.7)
RED = (0.9, 0.0, 0.0)


def _args(argv: list[str]) -> Path:
    argv = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    return Path(argv[0])


def _material(name: str, color) -> bpy.types.Material:
    m = bpy.data.materials.new(name)
    m.diffuse_color = (*color, 1.0)
    return m


def main() -> None:
    spec = json.loads(_args(sys.argv).read_text())
    scene_build.reset()
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    scene.display.shading.show_cavity = True
    scene.display.render_aa = "8"
    scene.render.resolution_x, scene.render.resolution_y = spec["width"], spec["height"]
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    world = bpy.data.worlds.new("world")
    world.color = (0.95, 0.95, 0.95)
    scene.world = world
    body, red = _material("body", BODY), _material("defect", RED)
    cam = scene_build.add_camera(Camera(lens_mm=35.0, sensor_width_mm=SENSOR_WIDTH_MM, sensor_fit=SENSOR_FIT,
                                        frames=[]))
    for i, tile in enumerate(spec["tiles"]):
        obj, _ = scene_build.add_mesh(f"tile{i}", tile["mesh"])
        obj.data.materials.append(body)
        obj.data.materials.append(red)
        cam.data.lens = tile["camera"].get("lens_mm", 35.0)
        scene_build.place_camera(cam, tile["camera"]["location"], tile["camera"]["target"])
        scene.render.filepath = tile["output"]
        bpy.ops.render.render(write_still=True)
        mesh = obj.data
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
        print(f"[preview] {i + 1}/{len(spec['tiles'])}", flush=True)


if __name__ == "__main__":
    main()
