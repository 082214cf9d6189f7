"""Procedural looks inside Blender: object materials, floors, worlds and light rigs, each built
from the fully resolved, typed values in the scene spec (nothing is sampled or defaulted here: the
defaults of an absent key are the field defaults of ``pipeline/scene_spec.py``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import bpy

import textures as tx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: pipeline.scene_spec (stdlib only)
from pipeline.scene_spec import Background, Environment, Floor, HdriEnvironment, Material, SkyEnvironment  # noqa: E402

HDRI_SAMPLE_CLAMP = 10.0


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


def _rgba(c):
    return (*c, 1.0)


def _mix(nt, fac, a, b, blend: str = "MIX"):
    """Colour mix; ``fac``, ``a`` and ``b`` are sockets or plain values (RGB triples, numbers)."""
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = blend
    for sock, v in ((mix.inputs["Factor"], fac), (mix.inputs["A"], a), (mix.inputs["B"], b)):
        if hasattr(v, "is_output"):
            _link(nt, v, sock)
        else:
            sock.default_value = v if isinstance(v, (int, float)) else _rgba(v)
    return mix.outputs["Result"]


def _bump(nt, height, strength: float, bsdf) -> None:
    if strength <= 0 or height is None:
        return
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = strength
    bump.inputs["Distance"].default_value = 0.01
    _link(nt, height, bump.inputs["Height"])
    _link(nt, bump.outputs["Normal"], bsdf.inputs["Normal"])


def _wear(nt, coord, color, rough, height, *, seed: float, roughness_var: float, stains: float, scuffs: float,
          var_scale: float, scuff_scale: float):
    """Roughness variation, stains and scuff marks on top of a surface (shared by objects and
    floors): scuffs are lighter, rougher, slightly sunken streaks. Returns (color, roughness, height)."""
    seed = float(seed)
    if roughness_var > 0:
        var = tx.variation(nt, coord, var_scale, seed + 3.1)
        rough = tx.math_op(nt, "ADD", rough, tx.math_op(nt, "MULTIPLY", var, 2.0 * roughness_var), clamp=True)
    if stains > 0:
        var = tx.variation(nt, coord, 0.6 * var_scale, seed + 7.7)
        shade = tx.math_op(nt, "ADD", 1.0, tx.math_op(nt, "MULTIPLY", var, 2.0 * stains))
        color = _scale_color(nt, color, shade)
    if scuffs > 0:
        mark = tx.math_op(nt, "MULTIPLY", tx.scuffs(nt, coord, scuff_scale, seed + 1.3), scuffs)
        color = _mix(nt, tx.math_op(nt, "MULTIPLY", mark, 0.45), color, (0.85, 0.85, 0.83))
        rough = tx.mix_value(nt, mark, rough, tx.math_op(nt, "ADD", rough, 0.3, clamp=True))
        dent = tx.math_op(nt, "MULTIPLY", mark, -0.6)
        height = dent if height is None else tx.math_op(nt, "ADD", height, dent)
    return color, rough, height


def _scale_color(nt, color, factor):
    """``color`` × a scalar socket (per channel)."""
    mul = nt.nodes.new("ShaderNodeVectorMath")
    mul.operation = "SCALE"
    if hasattr(color, "is_output"):
        _link(nt, color, mul.inputs[0])
    else:
        mul.inputs[0].default_value = color
    _link(nt, factor, mul.inputs["Scale"])
    return mul.outputs["Vector"]


def _set(nt, sock, v) -> None:
    if hasattr(v, "is_output"):
        _link(nt, v, sock)
    else:
        sock.default_value = _rgba(v) if isinstance(v, (list, tuple)) else v


def object_material(name: str, m: Material, pass_index: int = 0) -> bpy.types.Material:
    """Principled BSDF with the sampled parameters and, unless ``pattern`` is ``none``, a texture
    in object coordinates mixing ``base_color`` and ``color2`` plus an optional bump; then
    roughness variation and scuffs when the material asks for them."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Metallic"].default_value = m.metallic
    bsdf.inputs["Coat Weight"].default_value = m.coat
    bsdf.inputs["Sheen Weight"].default_value = m.sheen
    tc = nt.nodes.new("ShaderNodeTexCoord")
    coord = tc.outputs["Object"]
    color, rough, height = m.base_color, m.roughness, None
    pattern = m.pattern
    if pattern == "weave":
        h, parity = tx.weave(nt, coord, tc.outputs["Normal"], m.pattern_scale)
        # warp and weft in the two tones, the gaps between threads in shadow
        color = _scale_color(nt, _mix(nt, parity, m.base_color, m.color2),
                             tx.math_op(nt, "ADD", 0.7, tx.math_op(nt, "MULTIPLY", h, 0.3)))
        height = h
    elif pattern != "none":
        fac = _pattern(nt, pattern, m.pattern_scale, coord, m.wave_type, seed=m.pattern_seed)
        color, height = _mix(nt, fac, m.base_color, m.color2), fac
    # objects have no stains layer (a floor's low-frequency shading)
    color, rough, height = _wear(nt, coord, color, rough, height, seed=m.pattern_seed, roughness_var=m.roughness_var,
                                 stains=0.0, scuffs=m.scuffs, var_scale=3.0, scuff_scale=4.0)
    _set(nt, bsdf.inputs["Base Color"], color)
    _set(nt, bsdf.inputs["Roughness"], rough)
    _bump(nt, height, max(m.bump, 0.15 if m.scuffs > 0 else 0.0), bsdf)
    mat.pass_index = pass_index
    mat.diffuse_color = (*m.base_color, 1.0)  # what Workbench previews show
    return mat


def _floor_pattern(nt, f: Floor, coord):
    """The floor's base colour and height (sockets) for its pattern, in floor coordinates (metres;
    the object is about one unit tall)."""
    pat, a, b = f.pattern, f.color_a, f.color_b
    seed = float(f.pattern_seed)
    if pat == "brick":
        tex = nt.nodes.new("ShaderNodeTexBrick")
        tex.inputs["Color1"].default_value = _rgba(a)
        tex.inputs["Color2"].default_value = _rgba(b)
        tex.inputs["Mortar"].default_value = _rgba(f.mortar_color)
        tex.inputs["Scale"].default_value = f.scale
        tex.inputs["Mortar Size"].default_value = f.mortar
        tex.inputs["Mortar Smooth"].default_value = 0.3
        tex.inputs["Brick Width"].default_value = f.brick_width
        tex.inputs["Row Height"].default_value = f.row_height
        tex.offset = 0.5
        _link(nt, coord, tex.inputs["Vector"])
        color = tex.outputs["Color"]
        if f.grain > 0:  # wood planks: long grain streaks along the boards (x)
            streaks = tx.noise(nt, tx.mapped(nt, coord, (seed, seed, 0.0), scale=(0.04, 1.0, 1.0)), f.grain, 6.0, 0.6)
            color = _mix(nt, 0.45, color, _scale_color(nt, color, tx.math_op(nt, "ADD", 0.45, streaks)))
        # Brick's Fac is 1 in the mortar: the joints sit lower than the tiles.
        return color, tx.math_op(nt, "SUBTRACT", 1.0, tex.outputs["Fac"])
    if pat == "stone":
        cell, joint = tx.stone(nt, coord, f.scale, f.mortar, seed)
        grain = tx.noise(nt, coord, 12.0 * f.scale, 8.0, 0.6)
        color = _mix(nt, tx.math_op(nt, "MULTIPLY", tx.math_op(nt, "ADD", cell, grain), 0.5), a, b)
        color = _mix(nt, joint, color, f.mortar_color)
        return color, tx.math_op(nt, "SUBTRACT", tx.math_op(nt, "MULTIPLY", grain, 0.3), joint)
    if pat == "tread":
        bars = tx.tread(nt, coord, f.scale)
        return _mix(nt, bars, a, b), bars
    if pat == "blotch":
        spots = tx.blotch(nt, coord, f.scale, seed, f.cover)
        return _mix(nt, spots, a, b), None
    if pat == "weave":
        x, y, _ = tx.separate(nt, coord)
        h, parity = tx.weave2d(nt, x, y, f.scale)
        color = _scale_color(nt, _mix(nt, parity, a, b), tx.math_op(nt, "ADD", 0.72, tx.math_op(nt, "MULTIPLY", h, 0.28)))
        return color, h
    fac = _pattern(nt, pat, f.scale, coord, detail=f.detail, seed=seed)
    return _mix(nt, fac, a, b), fac


def build_floor(f: Floor) -> None:
    """A plane just below the object (placement resolved on the host), textured in world xy
    with the floor's rotation and offset, then stains, roughness variation and scuffs."""
    if not f.enabled:
        return
    mesh = bpy.data.meshes.new("floor")
    h = f.size / 2.0
    mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
    plane = bpy.data.objects.new("floor", mesh)
    plane.location = (0.0, 0.0, f.z)
    bpy.context.scene.collection.objects.link(plane)
    mat = bpy.data.materials.new("floor")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Metallic"].default_value = f.metallic
    coord = tx.mapped(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Object"], (*f.offset, 0.0),
                      (0.0, 0.0, math.radians(f.rotation_deg)))
    color, height = _floor_pattern(nt, f, coord)
    color, rough, height = _wear(nt, coord, color, f.roughness, height, seed=f.pattern_seed,
                                 roughness_var=f.roughness_var, stains=f.stains, scuffs=f.scuffs,
                                 var_scale=0.8, scuff_scale=1.5)
    _set(nt, bsdf.inputs["Base Color"], color)
    _set(nt, bsdf.inputs["Roughness"], rough)
    _bump(nt, height, f.bump, bsdf)
    mat.diffuse_color = (*f.color_a, 1.0)
    plane.data.materials.append(mat)


def _world_background(e: Environment, nt, bg) -> None:
    if isinstance(e, SkyEnvironment):
        sky = nt.nodes.new("ShaderNodeTexSky")
        sky.sky_type = e.sky_type
        sky.sun_elevation = math.radians(e.sun_elevation_deg)
        sky.sun_rotation = math.radians(e.sun_rotation_deg)
        if sky.sky_type in ("SINGLE_SCATTERING", "MULTIPLE_SCATTERING"):
            sky.air_density = e.air_density
            sky.aerosol_density = e.aerosol_density
        else:
            sky.turbidity = e.turbidity
        _link(nt, sky.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = e.strength
    elif isinstance(e, HdriEnvironment):
        tex = nt.nodes.new("ShaderNodeTexEnvironment")
        tex.image = bpy.data.images.load(e.file, check_existing=True)
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(e.rotation_deg))
        _link(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Generated"], mapping.inputs["Vector"])
        _link(nt, mapping.outputs["Vector"], tex.inputs["Vector"])
        _link(nt, tex.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = e.strength
        if e.camera_sees == "backdrop":
            # Camera rays see a plain backdrop; every other ray (light, reflections) sees the HDRI.
            out = nt.nodes["World Output"]
            backdrop = nt.nodes.new("ShaderNodeBackground")
            _backdrop(e.backdrop, nt, backdrop)
            mix = nt.nodes.new("ShaderNodeMixShader")
            _link(nt, nt.nodes.new("ShaderNodeLightPath").outputs["Is Camera Ray"], mix.inputs["Fac"])
            _link(nt, bg.outputs["Background"], mix.inputs[1])
            _link(nt, backdrop.outputs["Background"], mix.inputs[2])
            _link(nt, mix.outputs["Shader"], out.inputs["Surface"])
    else:  # studio, indoor
        _backdrop(e.background, nt, bg)


def _backdrop(b: Background, nt, bg) -> None:
    """A gradient (bottom → top of the view) or uniform colour on the Background node ``bg``."""
    if b.type == "gradient":
        # The world's Generated coordinate is the view direction; its z runs -1 (down) … 1 (up).
        sep = nt.nodes.new("ShaderNodeSeparateXYZ")
        _link(nt, nt.nodes.new("ShaderNodeTexCoord").outputs["Generated"], sep.inputs["Vector"])
        rng = nt.nodes.new("ShaderNodeMapRange")
        rng.inputs["From Min"].default_value = -0.2
        rng.inputs["From Max"].default_value = 0.8
        _link(nt, sep.outputs["Z"], rng.inputs["Value"])
        _link(nt, _mix(nt, rng.outputs["Result"], b.bottom, b.top), bg.inputs["Color"])
    else:
        bg.inputs["Color"].default_value = (*b.color, 1.0)
    bg.inputs["Strength"].default_value = b.strength


def _track(obj, location, target) -> None:
    from mathutils import Vector
    obj.location = Vector(location)
    obj.rotation_euler = (Vector(target) - Vector(location)).to_track_quat("-Z", "Y").to_euler()


def build_environment(e: Environment) -> None:
    """The world background plus lights: the sun of a sky, or the resolved rig of a studio/indoor
    environment (area, point and spot lights aimed at the object)."""
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    _world_background(e, nt, nt.nodes["Background"])
    if isinstance(e, HdriEnvironment):
        # A photographed sun is a few pixels of radiance up to 32,000: a path that finds it through
        # a glossy bounce instead of light sampling makes a firefly that 4-8 spp cannot average out.
        # Clamping each sample keeps light-sampled sunlight (a few units) and drops those spikes.
        bpy.context.scene.cycles.sample_clamp_direct = HDRI_SAMPLE_CLAMP
        bpy.context.scene.cycles.sample_clamp_indirect = HDRI_SAMPLE_CLAMP
    if isinstance(e, SkyEnvironment):
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy = e.sun_strength
        sun.angle = math.radians(e.sun_angle_deg)
        sun_obj = bpy.data.objects.new("sun", sun)
        sun_obj.rotation_euler = (math.radians(90 - e.sun_elevation_deg), 0.0,
                                  math.radians(e.sun_rotation_deg) + math.pi / 2)
        bpy.context.scene.collection.objects.link(sun_obj)
    for i, li in enumerate(e.lights):
        light = bpy.data.lights.new(f"light{i}", li.type)
        light.energy = li.energy
        light.color = li.color
        if li.type == "AREA":
            light.shape = "RECTANGLE"
            light.size = light.size_y = max(li.size, 1e-3)
        elif li.type == "SPOT":
            light.spot_size = math.radians(li.spot_size_deg)
            light.spot_blend = 0.3
        obj = bpy.data.objects.new(f"light{i}", light)
        bpy.context.scene.collection.objects.link(obj)
        _track(obj, li.location, li.target)
