"""Test helper run with the bpy wheel (``python tests/blender_build.py CASES_JSON RESULT_JSON``):
build each case's look or scene with the real Blender builders of ``blender_scripts/`` in this one
process (nothing is rendered) and record what Blender made of it, or the error.

A case is ``{"id", "kind": "material" | "floor" | "environment" | "scene", "value"}``; ``value`` is a
resolved look (as in ``scene.json``; read back as its typed part) or, for ``scene``, a whole scene spec.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "blender_scripts"))

import bpy  # noqa: E402

import looks  # noqa: E402
import scene_build  # noqa: E402
from pipeline.scene_spec import Environment, Floor, Material, SceneSpec  # noqa: E402


def _build(case: dict) -> dict:
    scene_build.reset()
    kind, v = case["kind"], case["value"]
    if kind == "material":
        mat = looks.object_material("body", Material.from_json(v, "material"))
        nodes = [n.bl_idname for n in mat.node_tree.nodes]
        return {"nodes": len(nodes), "has_output": "ShaderNodeOutputMaterial" in nodes,
                "has_bsdf": "ShaderNodeBsdfPrincipled" in nodes}
    if kind == "floor":
        looks.build_floor(Floor.from_json(v, "floor"))
        return {"meshes": sorted(o.name for o in bpy.data.objects if o.type == "MESH")}
    if kind == "environment":
        looks.build_environment(Environment.from_json(v, "environment"))
        return {"world": bpy.context.scene.world is not None,
                "lights": sorted(o.data.type for o in bpy.data.objects if o.type == "LIGHT")}
    spec = SceneSpec.from_json(v)
    mats = scene_build.add_object(spec)
    scene_build.add_floor(spec)
    scene_build.add_world(spec)
    cam = scene_build.add_camera(spec.camera).data
    return {"slots": [s.material.name for s in mats["object"].material_slots], "lens": cam.lens,
            "sensor_width": cam.sensor_width, "sensor_fit": cam.sensor_fit, "dof": cam.dof.use_dof}


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    out = {}
    for case in cases:
        try:
            out[case["id"]] = {"ok": True, **_build(case)}
        except Exception:  # noqa: BLE001  (reported per case; the test names it)
            out[case["id"]] = {"ok": False, "error": traceback.format_exc(limit=4)}
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
