"""Build a Blender scene from a resolved scene spec (runs inside Blender)."""

from __future__ import annotations


import sys
from pathlib import Path

import bpy
import numpy as np

import looks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: pipeline.scene_spec (stdlib only)
from pipeline.scene_spec import Camera, SceneSpec  # noqa: E402

DEFECT_PASS_INDEX = 1


def reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def principled(name: str, base_color, roughness: float, metallic: float = 0.0, emission=None,
               emission_strength: float = 0.0, pass_index: int = 0) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*base_color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    if emission is not None:
        bsdf.inputs["Emission Color"].default_value = (*emission, 1.0)
        bsdf.inputs["Emission Strength"].default_value = emission_strength
    mat.pass_index = pass_index
    mat.diffuse_color = (*base_color, 1.0)  # what Workbench previews show
    return mat


def mesh_data(name: str, npz_path: str) -> tuple[bpy.types.Mesh, np.ndarray]:
    """Mesh data from the host's ``.npz`` with ``foreach_set`` (≈2× faster than from_pydata), its
    defect faces on material slot 1."""
    with np.load(npz_path) as z:
        verts = z["vertices"].astype(np.float32)
        faces = z["faces"].astype(np.int32)
        face_mask = z["face_mask"].astype(bool)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    if mesh.validate(verbose=False):
        raise RuntimeError(f"{npz_path}: mesh failed Blender's validation")
    mesh.polygons.foreach_set("material_index", face_mask.astype(np.int32))
    mesh.shade_smooth()
    return mesh, face_mask


def add_mesh(name: str, npz_path: str) -> tuple[bpy.types.Object, np.ndarray]:
    """A mesh object from the host's ``.npz``, linked to the scene."""
    mesh, face_mask = mesh_data(name, npz_path)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj, face_mask


def swap_mesh(obj: bpy.types.Object, npz_path: str, materials: list[bpy.types.Material]) -> None:
    """Give ``obj`` another mesh (the defect-free twin) with ``materials`` in its slots; the object's
    transform, and so everything the camera and lights see of the rest of the scene, stays."""
    mesh, _ = mesh_data(obj.name + "_twin", npz_path)
    for m in materials:
        mesh.materials.append(m)
    obj.data = mesh


def add_object(spec: SceneSpec) -> dict[str, bpy.types.Material]:
    """The object with two material slots: 0 = its material, 1 = the defect faces.

    Slot 1 holds either an identical copy with ``pass_index = 1`` (unmarked: looks the same, but the
    Material Index pass marks its pixels) or the red paint (marked)."""
    m = spec.material
    body = looks.object_material("body", m)
    hidden = looks.object_material("defect_hidden", m, pass_index=DEFECT_PASS_INDEX)
    d = spec.defect_material
    emission = d.base_color if d.emission_strength > 0 else None
    red = principled("defect_red", d.base_color, d.roughness, 0.0, emission=emission,
                     emission_strength=d.emission_strength, pass_index=DEFECT_PASS_INDEX)
    obj, _ = add_mesh("object", spec.mesh)
    obj.data.materials.append(body)
    obj.data.materials.append(hidden)
    return {"body": body, "hidden": hidden, "red": red, "object": obj}


def add_floor(spec: SceneSpec) -> None:
    """The procedural floor, placed by the host below the object (``looks.build_floor``)."""
    looks.build_floor(spec.floor)


def add_world(spec: SceneSpec) -> None:
    """Sky, studio, indoor or HDRI world with its lights (``looks.build_environment``)."""
    looks.build_environment(spec.environment)


def add_camera(camera: Camera) -> bpy.types.Object:
    """The camera with the host's intrinsics (lens, sensor width and fit: the framing and the
    visibility prediction assume exactly these) and, when asked, depth of field."""
    cam = bpy.data.cameras.new("camera")
    cam.lens = camera.lens_mm
    cam.sensor_width = camera.sensor_width_mm
    cam.sensor_fit = camera.sensor_fit
    cam.clip_start = 0.01
    cam.clip_end = 200.0
    obj = bpy.data.objects.new("camera", cam)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj
    dof = camera.dof
    if dof:
        # Focus follows an empty at the object's centre, so every frame of the orbit is in focus there.
        focus = bpy.data.objects.new("focus", None)
        focus.location = dof.focus
        bpy.context.scene.collection.objects.link(focus)
        cam.dof.use_dof = True
        cam.dof.focus_object = focus
        cam.dof.aperture_fstop = dof.fstop
    return obj


def place_camera(cam: bpy.types.Object, location, target) -> None:
    """Point the camera from ``location`` at ``target`` (world z up)."""
    from mathutils import Vector
    loc = Vector(location)
    cam.location = loc
    cam.rotation_euler = (Vector(target) - loc).to_track_quat("-Z", "Y").to_euler()
