"""Primitive parts of the procedural library and how a spec's ``parts`` list becomes one mesh.

A part is a mapping with a ``shape`` and its size parameters, plus an optional placement:
``rotate: [rx, ry, rz]`` (degrees, applied X then Y then Z), ``scale: [sx, sy, sz]`` and ``at: [x, y, z]``.

Shapes (units are arbitrary; the finished object is normalized):

- ``revolve``  ``profile: [[r, z], ...]`` starting and ending on the axis (r = 0); ``sections``
- ``box``      ``size: [x, y, z]`` (centred)
- ``cylinder`` ``radius``, ``height`` (centred, along z); ``sections``
- ``capsule``  ``radius``, ``height`` (overall, along z, centred)
- ``sphere``   ``radius`` (``scale`` makes an ellipsoid)
- ``torus``    ``major``, ``minor`` (in the xy plane); ``arc: degrees`` for an open arc with round
  ends, starting on +x and turning counter-clockwise
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import trimesh

from .revolve import revolve_profile


def revolved(spec: Mapping[str, Any], where: str) -> trimesh.Trimesh:
    """A surface of revolution from a spec's ``profile`` (+ optional ``sections``, ``samples``),
    with errors naming ``where`` — shared by whole-object specs and parts."""
    try:
        return revolve_profile(spec["profile"], sections=int(spec.get("sections", 96)),
                               samples=int(spec.get("samples", 96)))
    except KeyError:
        raise ValueError(f"{where}: missing 'profile'") from None
    except ValueError as e:
        raise ValueError(f"{where}.profile: {e}") from None

SHAPES = ("revolve", "box", "cylinder", "capsule", "sphere", "torus")
_PLACEMENT = ("rotate", "scale", "at")


def _num(part: Mapping[str, Any], key: str, where: str) -> float:
    try:
        v = float(part[key])
    except KeyError:
        raise ValueError(f"{where}: missing '{key}'") from None
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{key}: expected a number, got {part[key]!r}") from None
    if not v > 0:
        raise ValueError(f"{where}.{key}: must be > 0, got {v}")
    return v


def _vec(part: Mapping[str, Any], key: str, where: str, default: list[float]) -> np.ndarray:
    v = part.get(key, default)
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{key}: expected three numbers, got {v!r}") from None
    if a.shape != (3,) or not np.isfinite(a).all():
        raise ValueError(f"{where}.{key}: expected three numbers, got {v!r}")
    return a


def _torus_arc(major: float, minor: float, arc_deg: float) -> trimesh.Trimesh:
    """A torus segment in the xy plane with hemispherical ends (a bent capsule), closed and watertight.

    It starts on +x and turns counter-clockwise (towards +y) by ``arc_deg``."""
    import manifold3d

    from . import csg
    ring = manifold3d.CrossSection.circle(minor, 24).translate((major, 0.0))
    tube = csg.from_manifold(manifold3d.Manifold.revolve(ring, max(8, int(arc_deg / 3)), arc_deg))
    ends = []
    for a in (0.0, np.radians(arc_deg)):
        s = trimesh.creation.icosphere(subdivisions=3, radius=minor)
        s.apply_translation([major * np.cos(a), major * np.sin(a), 0.0])
        ends.append(s)
    return csg.union([tube, *ends])


def build_part(part: Mapping[str, Any], where: str) -> trimesh.Trimesh:
    """One placed primitive as a closed mesh."""
    if not isinstance(part, Mapping) or "shape" not in part:
        raise ValueError(f"{where}: a part needs a 'shape' (one of {', '.join(SHAPES)})")
    shape = part["shape"]
    known = {"revolve": {"profile", "sections", "samples"}, "box": {"size"}, "cylinder": {"radius", "height", "sections"},
             "capsule": {"radius", "height"}, "sphere": {"radius"}, "torus": {"major", "minor", "arc"}}
    if shape not in known:
        raise ValueError(f"{where}.shape: unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    extra = set(part) - known[shape] - {"shape", *_PLACEMENT}
    if extra:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(extra))} for shape {shape!r}")
    if shape == "revolve":
        m = revolved(part, where)
    elif shape == "box":
        m = trimesh.creation.box(extents=_vec(part, "size", where, [1, 1, 1]))
    elif shape == "cylinder":
        m = trimesh.creation.cylinder(radius=_num(part, "radius", where), height=_num(part, "height", where),
                                      sections=int(part.get("sections", 64)))
    elif shape == "capsule":
        r, h = _num(part, "radius", where), _num(part, "height", where)
        if h <= 2 * r:
            raise ValueError(f"{where}.height: must exceed 2 × radius")
        m = trimesh.creation.capsule(height=h - 2 * r, radius=r, count=[32, 32])
        m.apply_translation([0, 0, -(h - 2 * r) / 2])
    elif shape == "sphere":
        m = trimesh.creation.icosphere(subdivisions=4, radius=_num(part, "radius", where))
    else:
        major, minor = _num(part, "major", where), _num(part, "minor", where)
        arc = float(part.get("arc", 360))
        if arc >= 360:
            m = trimesh.creation.torus(major, minor, major_sections=96, minor_sections=24)
        else:
            m = _torus_arc(major, minor, arc)
    scale = _vec(part, "scale", where, [1, 1, 1])
    if (scale <= 0).any():
        raise ValueError(f"{where}.scale: must be > 0")
    m.apply_transform(np.diag([*scale, 1.0]))
    rx, ry, rz = np.radians(_vec(part, "rotate", where, [0, 0, 0]))
    m.apply_transform(trimesh.transformations.euler_matrix(rx, ry, rz, axes="sxyz"))
    m.apply_translation(_vec(part, "at", where, [0, 0, 0]))
    if not m.is_volume:
        m.fix_normals()
    return m


def build_parts(parts: list[Mapping[str, Any]], subtract: list[Mapping[str, Any]], where: str) -> trimesh.Trimesh:
    """Union of ``parts`` minus ``subtract`` (both lists of part mappings)."""
    from . import csg
    if not isinstance(parts, list) or not parts:
        raise ValueError(f"{where}.parts: expected a non-empty list of parts")
    meshes = [build_part(p, f"{where}.parts[{i}]") for i, p in enumerate(parts)]
    try:
        mesh = csg.union(meshes)
        if subtract:
            mesh = csg.difference(mesh, [build_part(p, f"{where}.subtract[{i}]") for i, p in enumerate(subtract)])
    except csg.CSGError as e:
        raise ValueError(f"{where}: {e}") from None
    return mesh
