"""Procedural looks inside Blender: object materials, floors, worlds and light rigs, each built
from the fully resolved values in the scene spec (nothing is sampled here)."""

from __future__ import annotations

import math

import bpy


def _link(nt, a, b) -> None:
    nt.links.new(a, b)


def _pattern(nt, kind: str, scale: float, coord, wave_type: str = "BANDS", detail: float = 4.0,
             seed: float = 0.0):
    """A 0–1 pattern output driven by ``coord`` (a vector socket)."""
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Location"].default_value = (seed, seed * 0.37, seed * 0.61)
    if kind == "streaks":  # brushed metal: noise stretched along z
        mapping.inputs["Scale"].default_value = (1.0, 1.0, 0.02)
    _link(nt, coord, mapping.inputs["Vector"])
    vec = mapping.outputs["Vector"]
    if kind in ("noise", "streaks"):
        tex = nt.nodes.new("ShaderNodeTexNoise")
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Detail"].default_value = detail
        out = tex.outputs["Fac"]
    elif kind == "voronoi":
        tex = nt.nodes.new("ShaderNodeTexVoronoi")
        tex.inputs["Scale"].default_value = scale
        out = tex.outputs["Distance"]
    elif kind == "wave":
        tex = nt.nodes.new("ShaderNodeTexWave")
        tex.wave_type = wave_type
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Distortion"].default_value = 4.0 if wave_type == "RINGS" else 1.0
        tex.inputs["Detail"].default_value = 3.0
        out = tex.outputs["Fac"]
    elif kind == "checker":
        tex = nt.nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = scale
        out = tex.outputs["Fac"]
    else:
        raise ValueError(f"unknown pattern {kind!r}")
    _link(nt, vec, tex.inputs["Vector"])
    return out


def _mix(nt, fac, a, b):
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    _link(nt, fac, mix.inputs["Factor"])
    mix.inputs["A"].default_value = (*a, 1.0)
    mix.inputs["B"].default_value = (*b, 1.0)
    return mix.outputs["Result"]


def _bump(nt, height, strength: float, bsdf) -> None:
    if strength <= 0:
        return
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = strength
    bump.inputs["Distance"].default_value = 0.01
    _link(nt, height, bump.inputs["Height"])
    _link(nt, bump.outputs["Normal"], bsdf.inputs["Normal"])


def object_material(name: str, m: dict, pass_index: int = 0) -> bpy.types.Material:
    """Principled BSDF with the sampled parameters and, unless ``pattern`` is ``none``, a texture
    in object coordinates mixing ``base_color`` and ``color2`` plus an optional bump."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*m["base_color"], 1.0)
    bsdf.inputs["Roughness"].default_value = m["roughness"]
    bsdf.inputs["Metallic"].default_value = m["metallic"]
    bsdf.inputs["Coat Weight"].default_value = m.get("coat", 0.0)
    bsdf.inputs["Sheen Weight"].default_value = m.get("sheen", 0.0)
    if m.get("pattern", "none") != "none":
        coord = nt.nodes.new("ShaderNodeTexCoord").outputs["Object"]
        fac = _pattern(nt, m["pattern"], m["pattern_scale"], coord, m.get("wave_type", "BANDS"),
                       seed=m.get("pattern_seed", 0.0))
        _link(nt, _mix(nt, fac, m["base_color"], m["color2"]), bsdf.inputs["Base Color"])
        _bump(nt, fac, m.get("bump", 0.0), bsdf)
    mat.pass_index = pass_index
    mat.diffuse_color = (*m["base_color"], 1.0)  # what Workbench previews show
    return mat


def build_floor(f: dict) -> None:
    """A plane just below the object (placement resolved on the host), textured in world xy
    with the floor's rotation and offset."""
    if not f.get("enabled", True):
        return
    mesh = bpy.data.meshes.new("floor")
    h = f["size"] / 2.0
    mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
    plane = bpy.data.objects.new("floor", mesh)
    plane.location = (0.0, 0.0, f["z"])
    bpy.context.scene.collection.objects.link(plane)
    mat = bpy.data.materials.new("floor")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = f["roughness"]
    bsdf.inputs["Metallic"].default_value = f.get("metallic", 0.0)
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Location"].default_value = (*f["offset"], 0.0)
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(f["rotation_deg"]))
    _link(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Object"], mapping.inputs["Vector"])
    coord = mapping.outputs["Vector"]
    if f["pattern"] == "brick":
        tex = nt.nodes.new("ShaderNodeTexBrick")
        tex.inputs["Color1"].default_value = (*f["color_a"], 1.0)
        tex.inputs["Color2"].default_value = (*f["color_b"], 1.0)
        tex.inputs["Mortar"].default_value = (*f["mortar_color"], 1.0)
        tex.inputs["Scale"].default_value = f["scale"]
        tex.inputs["Mortar Size"].default_value = f["mortar"]
        tex.inputs["Brick Width"].default_value = f["brick_width"]
        tex.inputs["Row Height"].default_value = f["row_height"]
        tex.offset = 0.5
        _link(nt, coord, tex.inputs["Vector"])
        color = tex.outputs["Color"]
        if f.get("grain", 0) > 0:  # wood planks: grain darkens the plank colour along x
            grain = _pattern(nt, "wave", f["grain"], coord, "BANDS")
            mul = nt.nodes.new("ShaderNodeMix")
            mul.data_type = "RGBA"
            mul.blend_type = "MULTIPLY"
            mul.inputs["Factor"].default_value = 0.35
            _link(nt, color, mul.inputs["A"])
            _link(nt, grain, mul.inputs["B"])
            color = mul.outputs["Result"]
        _link(nt, color, bsdf.inputs["Base Color"])
        # Mortar joints sit lower than the tiles.
        _bump(nt, tex.outputs["Fac"], f.get("bump", 0.0), bsdf)
    else:
        fac = _pattern(nt, f["pattern"], f["scale"], coord, detail=f.get("detail", 4.0))
        _link(nt, _mix(nt, fac, f["color_a"], f["color_b"]), bsdf.inputs["Base Color"])
        _bump(nt, fac, f.get("bump", 0.0), bsdf)
    mat.diffuse_color = (*f["color_a"], 1.0)
    plane.data.materials.append(mat)


def _world_background(e: dict, nt, bg) -> None:
    kind = e["kind"]
    if kind == "sky":
        sky = nt.nodes.new("ShaderNodeTexSky")
        sky.sky_type = e.get("sky_type", "SINGLE_SCATTERING")
        sky.sun_elevation = math.radians(e["sun_elevation_deg"])
        sky.sun_rotation = math.radians(e["sun_rotation_deg"])
        if sky.sky_type in ("SINGLE_SCATTERING", "MULTIPLE_SCATTERING"):
            sky.air_density = e.get("air_density", 1.0)
            sky.aerosol_density = e.get("aerosol_density", 1.0)
        else:
            sky.turbidity = e.get("turbidity", 2.5)
        _link(nt, sky.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = e["strength"]
    elif kind == "hdri":
        tex = nt.nodes.new("ShaderNodeTexEnvironment")
        tex.image = bpy.data.images.load(e["file"], check_existing=True)
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(e["rotation_deg"]))
        _link(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Generated"], mapping.inputs["Vector"])
        _link(nt, mapping.outputs["Vector"], tex.inputs["Vector"])
        _link(nt, tex.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = e["strength"]
    else:
        b = e["background"]
        if b["type"] == "gradient":
            # The world's Generated coordinate is the view direction; its z runs -1 (down) … 1 (up).
            sep = nt.nodes.new("ShaderNodeSeparateXYZ")
            _link(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Generated"], sep.inputs["Vector"])
            rng = nt.nodes.new("ShaderNodeMapRange")
            rng.inputs["From Min"].default_value = -0.2
            rng.inputs["From Max"].default_value = 0.8
            _link(nt, sep.outputs["Z"], rng.inputs["Value"])
            _link(nt, _mix(nt, rng.outputs["Result"], b["bottom"], b["top"]), bg.inputs["Color"])
        else:
            bg.inputs["Color"].default_value = (*b["color"], 1.0)
        bg.inputs["Strength"].default_value = b["strength"]


def _track(obj, location, target) -> None:
    from mathutils import Vector
    obj.location = Vector(location)
    obj.rotation_euler = (Vector(target) - Vector(location)).to_track_quat("-Z", "Y").to_euler()


def build_environment(e: dict) -> None:
    """The world background plus lights: the sun of a sky, or the resolved rig of a studio/indoor
    environment (area, point and spot lights aimed at the object)."""
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    _world_background(e, nt, nt.nodes["Background"])
    if e["kind"] == "sky":
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy = e.get("sun_strength", 2.0)
        sun.angle = math.radians(e.get("sun_angle_deg", 3.0))
        sun_obj = bpy.data.objects.new("sun", sun)
        sun_obj.rotation_euler = (math.radians(90 - e["sun_elevation_deg"]), 0.0,
                                  math.radians(e["sun_rotation_deg"]) + math.pi / 2)
        bpy.context.scene.collection.objects.link(sun_obj)
    for i, li in enumerate(e.get("lights", [])):
        light = bpy.data.lights.new(f"light{i}", li["type"])
        light.energy = li["energy"]
        light.color = li["color"]
        if li["type"] == "AREA":
            light.shape = "RECTANGLE"
            light.size = light.size_y = max(li["size"], 1e-3)
        elif li["type"] == "SPOT":
            light.spot_size = math.radians(li["spot_size_deg"])
            light.spot_blend = 0.3
        obj = bpy.data.objects.new(f"light{i}", light)
        bpy.context.scene.collection.objects.link(obj)
        _track(obj, li["location"], li["target"])
