"""Procedural texture building blocks for materials and floors (runs inside Blender).

Each function adds shader nodes to a node tree ``nt`` and returns output sockets with values in
0–1 (masks, heights) or centred on 0 (variations). They know nothing about the scene spec: the
callers in ``looks.py`` pass resolved numbers."""

from __future__ import annotations

import math

SQRT_HALF = math.sqrt(0.5)


def link(nt, a, b) -> None:
    nt.links.new(a, b)


def _feed(nt, socket, value) -> None:
    if hasattr(value, "is_output"):
        link(nt, value, socket)
    else:
        socket.default_value = value


def math_op(nt, op: str, a, b=0.0, clamp: bool = False):
    """``a <op> b`` with a ShaderNodeMath; ``a``/``b`` are output sockets or numbers."""
    n = nt.nodes.new("ShaderNodeMath")
    n.operation = op
    n.use_clamp = clamp
    _feed(nt, n.inputs[0], a)
    _feed(nt, n.inputs[1], b)
    return n.outputs[0]


def mix_value(nt, fac, a, b):
    """Linear blend of two scalars (sockets or numbers): ``a + fac · (b − a)``."""
    n = nt.nodes.new("ShaderNodeMix")
    n.data_type = "FLOAT"
    _feed(nt, n.inputs["Factor"], fac)
    _feed(nt, n.inputs["A"], a)
    _feed(nt, n.inputs["B"], b)
    return n.outputs["Result"]


def mapped(nt, coord, location=(0.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0)):
    m = nt.nodes.new("ShaderNodeMapping")
    m.inputs["Location"].default_value = location
    m.inputs["Rotation"].default_value = rotation
    m.inputs["Scale"].default_value = scale
    link(nt, coord, m.inputs["Vector"])
    return m.outputs["Vector"]


def separate(nt, vec):
    s = nt.nodes.new("ShaderNodeSeparateXYZ")
    link(nt, vec, s.inputs["Vector"])
    return s.outputs["X"], s.outputs["Y"], s.outputs["Z"]


def noise(nt, coord, scale: float, detail: float = 4.0, roughness: float = 0.5):
    n = nt.nodes.new("ShaderNodeTexNoise")
    n.inputs["Scale"].default_value = scale
    n.inputs["Detail"].default_value = detail
    n.inputs["Roughness"].default_value = roughness
    link(nt, coord, n.inputs["Vector"])
    return n.outputs["Fac"]


def band(nt, value, lo: float, hi: float):
    """Smooth step of ``value`` from 0 at ``lo`` to 1 at ``hi``."""
    n = nt.nodes.new("ShaderNodeMapRange")
    n.interpolation_type = "SMOOTHSTEP"
    n.inputs["From Min"].default_value = lo
    n.inputs["From Max"].default_value = hi
    link(nt, value, n.inputs["Value"])
    return n.outputs["Result"]


def variation(nt, coord, scale: float, seed: float):
    """Low-frequency noise centred on 0 (about ±0.5): stains, roughness variation."""
    return math_op(nt, "SUBTRACT", noise(nt, mapped(nt, coord, (seed, -seed, 0.5 * seed)), scale, 3.0), 0.5)


def scuffs(nt, coord, scale: float, seed: float):
    """Thin, short, randomly placed streaks (0–1): noise stretched along one random direction and
    cut to its highest values."""
    angle = (seed * 2.399) % math.pi  # golden-angle spread of directions per seed
    stretched = mapped(nt, coord, (seed * 0.73, seed * 0.29, seed * 0.41), (0.0, 0.0, angle), (0.12, 1.0, 1.0))
    streak = noise(nt, stretched, scale, 6.0, 0.55)
    return band(nt, streak, 0.62, 0.7)


def weave2d(nt, u, v, scale: float):
    """Plain weave in the (u, v) plane: height of the thread on top (0–1) and which one is on top."""
    us, vs = math_op(nt, "MULTIPLY", u, scale), math_op(nt, "MULTIPLY", v, scale)
    parity = math_op(nt, "FLOORED_MODULO", math_op(nt, "ADD", math_op(nt, "FLOOR", us), math_op(nt, "FLOOR", vs)), 2.0)
    across_u = math_op(nt, "SINE", math_op(nt, "MULTIPLY", math_op(nt, "FRACT", vs), math.pi))  # thread along u
    across_v = math_op(nt, "SINE", math_op(nt, "MULTIPLY", math_op(nt, "FRACT", us), math.pi))  # thread along v
    # A thread dips where it passes under the crossing one: modulate along its length too.
    dip_u = math_op(nt, "ADD", 0.55, math_op(nt, "MULTIPLY", across_v, 0.45))
    dip_v = math_op(nt, "ADD", 0.55, math_op(nt, "MULTIPLY", across_u, 0.45))
    h = mix_value(nt, parity, math_op(nt, "MULTIPLY", across_u, dip_u), math_op(nt, "MULTIPLY", across_v, dip_v))
    return h, parity


def weave(nt, coord, normal, scale: float):
    """A plain weave projected from the three axes and blended by the surface normal (triplanar),
    so it wraps any shape without UVs. Returns (height 0–1, thread parity 0/1)."""
    x, y, z = separate(nt, coord)
    nx, ny, nz = (math_op(nt, "POWER", math_op(nt, "ABSOLUTE", c), 4.0) for c in separate(nt, normal))
    total = math_op(nt, "ADD", math_op(nt, "ADD", nx, ny), math_op(nt, "ADD", nz, 1e-6))
    heights, parities = [], []
    for w, (u, v) in ((nx, (y, z)), (ny, (x, z)), (nz, (x, y))):
        h, p = weave2d(nt, u, v, scale)
        wn = math_op(nt, "DIVIDE", w, total)
        heights.append(math_op(nt, "MULTIPLY", h, wn))
        parities.append(math_op(nt, "MULTIPLY", p, wn))
    h = math_op(nt, "ADD", math_op(nt, "ADD", heights[0], heights[1]), heights[2])
    p = math_op(nt, "ADD", math_op(nt, "ADD", parities[0], parities[1]), parities[2])
    return h, p


def tread(nt, coord, scale: float, width: float = 0.09, length: float = 0.32):
    """Anti-slip tread plate (floor, xy plane): short raised bars at ±45°, alternating by cell.
    Returns the bar mask (0–1)."""
    x, y, _ = separate(nt, coord)
    us, vs = math_op(nt, "MULTIPLY", x, scale), math_op(nt, "MULTIPLY", y, scale)
    parity = math_op(nt, "FLOORED_MODULO", math_op(nt, "ADD", math_op(nt, "FLOOR", us), math_op(nt, "FLOOR", vs)), 2.0)
    cu, cv = math_op(nt, "SUBTRACT", math_op(nt, "FRACT", us), 0.5), math_op(nt, "SUBTRACT", math_op(nt, "FRACT", vs), 0.5)
    diag_a = math_op(nt, "MULTIPLY", math_op(nt, "ADD", cu, cv), SQRT_HALF)       # along (1, 1)
    diag_b = math_op(nt, "MULTIPLY", math_op(nt, "SUBTRACT", cu, cv), SQRT_HALF)  # along (1, -1)
    across = mix_value(nt, parity, math_op(nt, "ABSOLUTE", diag_b), math_op(nt, "ABSOLUTE", diag_a))
    along = mix_value(nt, parity, math_op(nt, "ABSOLUTE", diag_a), math_op(nt, "ABSOLUTE", diag_b))
    bar_w = math_op(nt, "SUBTRACT", 1.0, band(nt, across, width * 0.6, width))
    bar_l = math_op(nt, "SUBTRACT", 1.0, band(nt, along, length * 0.8, length))
    return math_op(nt, "MULTIPLY", bar_w, bar_l)


def stone(nt, coord, scale: float, grout: float, seed: float):
    """Irregular stone slabs (floor): per-slab random value (0–1) and a grout mask (1 in the joints)."""
    v = nt.nodes.new("ShaderNodeTexVoronoi")
    v.feature = "F1"
    v.inputs["Scale"].default_value = scale
    v.inputs["Randomness"].default_value = 0.85
    edge = nt.nodes.new("ShaderNodeTexVoronoi")
    edge.feature = "DISTANCE_TO_EDGE"
    edge.inputs["Scale"].default_value = scale
    edge.inputs["Randomness"].default_value = 0.85
    c = mapped(nt, coord, (seed, seed * 0.5, 0.0))
    link(nt, c, v.inputs["Vector"])
    link(nt, c, edge.inputs["Vector"])
    cell = separate(nt, v.outputs["Color"])[0]
    joint = math_op(nt, "SUBTRACT", 1.0, band(nt, edge.outputs["Distance"], grout * 0.5, grout))
    return cell, joint


def blotch(nt, coord, scale: float, seed: float, cover: float = 0.5):
    """Soft-edged two-tone blotches (a printed or mottled mat): 1 inside a blotch."""
    n = noise(nt, mapped(nt, coord, (seed, seed * 0.7, 0.0)), scale, 2.0, 0.45)
    lo = 0.5 + 0.18 * (0.5 - cover)
    return band(nt, n, lo, lo + 0.03)
