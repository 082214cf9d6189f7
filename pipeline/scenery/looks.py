"""Seeded samplers that resolve a named look spec into plain JSON values for Blender.

Each sampler takes its own ``numpy.random.Generator`` (one per job and purpose, see
``pipeline.seeds.rng_for``) and returns a self-contained dict: Blender never reads ``assets/``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .catalog import Catalog, bundled_hdri, hdri_files
from .params import kelvin_rgb, sample, sample_int, sample_rgb

WAVE_KIND = {"wood": "RINGS"}  # wave pattern per group; others use BANDS


def _pick(rng: np.random.Generator, names: Sequence[str]) -> str:
    return str(names[int(rng.integers(len(names)))])


def _restrict(all_names: list[str], wanted: Optional[Sequence[str]], key: str, match=lambda n, w: n == w) -> list[str]:
    if not wanted:
        return all_names
    unknown = [w for w in wanted if not any(match(n, w) for n in all_names)]
    if unknown:
        raise KeyError(f"{key}: unknown name(s) {', '.join(unknown)} (have: {', '.join(all_names)})")
    return [n for n in all_names if any(match(n, w) for w in wanted)]


def sample_material(rng: np.random.Generator, cat: Catalog, groups: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Group uniformly, then subclass uniformly within the group, then its parameters.

    ``name`` is ``"group/subclass"``; ``color2`` is the darker tone the pattern mixes in."""
    group_names = _restrict(sorted(cat.materials), groups, "scene.material_groups")
    group = _pick(rng, group_names)
    sub = _pick(rng, sorted(cat.materials[group]))
    s = cat.materials[group][sub]
    base = sample_rgb(rng, [s["hue"], s["saturation"], s["value"]])
    pattern = s["pattern"]
    contrast = sample(rng, s.get("contrast", 0.0))
    return {
        "name": f"{group}/{sub}", "group": group, "subclass": sub,
        "base_color": base, "color2": [round(c * (1.0 - contrast), 4) for c in base],
        "roughness": sample(rng, s["roughness"]), "metallic": sample(rng, s.get("metallic", 0.0)),
        "coat": sample(rng, s.get("coat", 0.0)), "sheen": sample(rng, s.get("sheen", 0.0)),
        "pattern": pattern, "pattern_scale": sample(rng, s.get("pattern_scale", 1.0), 3),
        "wave_type": WAVE_KIND.get(group, "BANDS"), "bump": sample(rng, s.get("bump", 0.0)),
        "pattern_seed": round(float(rng.uniform(0, 100)), 3),
        "roughness_var": sample(rng, s.get("roughness_var", 0.0)), "scuffs": sample(rng, s.get("scuffs", 0.0)),
    }


def _light(rng: np.random.Generator, spec: dict[str, Any], rig_rotation: float) -> dict[str, Any]:
    """One light in object-relative terms: direction angles and distance in bounding radii."""
    return {"type": spec["type"],
            "azimuth_deg": round((rig_rotation + sample(rng, spec["azimuth_deg"], 3)) % 360.0, 3),
            "elevation_deg": sample(rng, spec["elevation_deg"], 3),
            "distance": sample(rng, spec["distance"]),
            "size": sample(rng, spec.get("size", 0.0)),
            "irradiance": sample(rng, spec["irradiance"]),
            "color": kelvin_rgb(sample(rng, spec["temperature_k"], 1)),
            "spot_size_deg": sample(rng, spec.get("spot_size_deg", 45.0), 3)}


def _background(rng: np.random.Generator, bg: dict[str, Any]) -> dict[str, Any]:
    if bg["type"] == "gradient":
        return {"type": "gradient", "bottom": sample_rgb(rng, bg["bottom_hsv"]), "top": sample_rgb(rng, bg["top_hsv"]),
                "strength": sample(rng, bg["strength"])}
    return {"type": "uniform", "color": sample_rgb(rng, bg["color_hsv"]), "strength": sample(rng, bg["strength"])}


def _hdri_choice(rng: np.random.Generator, name: str, s: dict[str, Any]) -> dict[str, Any]:
    """A named HDRI (shipped with Blender): rotation, strength, and whether the camera sees the
    photograph or a plain backdrop (the HDRI still lights the scene either way)."""
    bundled_hdri(s["image"], f"environment {name!r}")  # fail at plan time, not on a render node
    backdrop = float(rng.uniform()) < float(s.get("backdrop_share", 0.0))
    e = {"name": name, "kind": "hdri", "image": s["image"], "source": s["source"], "license": s["license"],
         "rotation_deg": sample(rng, s.get("rotation_deg", [0, 360]), 3), "strength": sample(rng, s["strength"]),
         "camera_sees": "backdrop" if backdrop else "photo", "lights": []}
    if backdrop:
        e["backdrop"] = _background(rng, s["backdrop"])
    return e


def sample_environment(rng: np.random.Generator, cat: Catalog, names: Optional[Sequence[str]] = None,
                       hdri_dir: str | Path | None = None, hdri_share: float = 0.5,
                       hdri_strength: tuple[float, float] = (0.6, 1.4)) -> dict[str, Any]:
    """One environment of the pool: the catalogue's named environments (``names`` restricts them)
    plus the HDRI files in ``hdri_dir``. When the pool holds both photographic HDRIs (named ``hdri``
    environments or files) and procedural ones, an HDRI is drawn with probability ``hdri_share``;
    then uniformly within the chosen part. A file gets a random rotation and a strength in
    ``hdri_strength``; a named environment resolves its own ranges."""
    allowed = _restrict(sorted(cat.environments), names, "scene.environments")
    photo = [n for n in allowed if cat.environments[n]["kind"] == "hdri"] + [f"file:{f}" for f in hdri_files(hdri_dir)]
    procedural = [n for n in allowed if cat.environments[n]["kind"] != "hdri"]
    use_hdri = bool(photo) and (not procedural or float(rng.uniform()) < hdri_share)
    name = _pick(rng, photo if use_hdri else procedural)
    if name.startswith("file:"):
        f = Path(name[len("file:"):])
        return {"name": f"hdri/{f.stem}", "kind": "hdri", "file": str(f.resolve()),
                "rotation_deg": round(float(rng.uniform(0, 360)), 3), "strength": sample(rng, list(hdri_strength)),
                "camera_sees": "photo", "lights": []}
    s = cat.environments[name]
    if s["kind"] == "hdri":
        return _hdri_choice(rng, name, s)
    if s["kind"] == "sky":
        sky, sun = s["sky"], s["sun"]
        return {"name": name, "kind": "sky", "sky_type": sky["type"].upper(),
                "sun_elevation_deg": sample(rng, sky["sun_elevation_deg"], 3),
                "sun_rotation_deg": sample(rng, sky["sun_rotation_deg"], 3),
                "strength": sample(rng, sky["strength"]), "air_density": sample(rng, sky.get("air_density", 1.0)),
                "aerosol_density": sample(rng, sky.get("aerosol_density", 1.0)),
                "turbidity": sample(rng, sky.get("turbidity", 2.5)),
                "sun_strength": sample(rng, sun["strength"]), "sun_angle_deg": sample(rng, sun.get("angle_deg", 3.0)),
                "lights": []}
    rotation = sample(rng, s.get("rotation_deg", 0.0), 3)
    lights = [_light(rng, spec, rotation) for spec in s["lights"] for _ in range(sample_int(rng, spec.get("count", 1)))]
    return {"name": name, "kind": s["kind"], "background": _background(rng, s["background"]), "rotation_deg": rotation,
            "lights": lights}


def resolve_hdri(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with the absolute ``file`` of a Blender-shipped HDRI (jobs name it by ``image`` so
    that ``jobs.jsonl`` does not depend on where Blender is installed); other environments as they are."""
    if env.get("kind") != "hdri" or "file" in env:
        return env
    return {**env, "file": str(bundled_hdri(env["image"], f"environment {env['name']!r}"))}


def resolve_lights(env: dict[str, Any], center: Sequence[float], radius: float) -> list[dict[str, Any]]:
    """Absolute light placements for Blender: location, aim point, power from irradiance.

    Power scales with distance² so the exposure at the object does not depend on its size:
    area lights ``P = π E d²``, point and spot lights ``P = 4π E d²`` (Blender's conventions)."""
    out = []
    c = np.asarray(center, dtype=float)
    for li in env.get("lights", []):
        az, el = math.radians(li["azimuth_deg"]), math.radians(li["elevation_deg"])
        d = li["distance"] * radius
        loc = c + d * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        k = math.pi if li["type"] == "area" else 4.0 * math.pi
        out.append({"type": li["type"].upper(), "location": [round(float(x), 5) for x in loc],
                    "target": [round(float(x), 5) for x in c], "energy": round(k * li["irradiance"] * d * d, 4),
                    "size": round(li["size"] * radius, 5), "color": li["color"],
                    "spot_size_deg": li["spot_size_deg"]})
    return out


def sample_floor(rng: np.random.Generator, cat: Catalog, names: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """A floor material plus its random placement (rotation about z, texture offset)."""
    name = _pick(rng, _restrict(sorted(cat.floors), names, "scene.floors"))
    s = cat.floors[name]
    f = {"name": name, "kind": name, "pattern": s["pattern"],
         "color_a": sample_rgb(rng, s["color_a_hsv"]), "color_b": sample_rgb(rng, s["color_b_hsv"]),
         "scale": sample(rng, s["scale"], 3), "detail": sample(rng, s.get("detail", 4.0), 3),
         "roughness": sample(rng, s["roughness"]), "metallic": sample(rng, s.get("metallic", 0.0)),
         "bump": sample(rng, s.get("bump", 0.0)), "grain": sample(rng, s.get("grain", 0.0), 3),
         "rotation_deg": round(float(rng.uniform(0, 360)), 3),
         "offset": [round(float(x), 4) for x in rng.uniform(-50, 50, size=2)],
         "pattern_seed": round(float(rng.uniform(0, 100)), 3),
         "roughness_var": sample(rng, s.get("roughness_var", 0.0)), "scuffs": sample(rng, s.get("scuffs", 0.0)),
         "stains": sample(rng, s.get("stains", 0.0)), "cover": sample(rng, s.get("cover", 0.5))}
    if s["pattern"] == "stone":
        f.update({"mortar_color": sample_rgb(rng, s["mortar_hsv"]), "mortar": sample(rng, s["mortar"])})
    if s["pattern"] == "brick":
        w = sample(rng, s["brick_width"])
        f.update({"mortar_color": sample_rgb(rng, s["mortar_hsv"]), "brick_width": w,
                  "row_height": w if s.get("square") else sample(rng, s["row_height"]),
                  "mortar": sample(rng, s["mortar"])})
    return f


def place_floor(floor: dict[str, Any], vertices: np.ndarray, cameras: np.ndarray) -> dict[str, Any]:
    """Where the floor goes: just below the object's lowest point, big enough to fill every view.

    It never hides the object: it lies below every vertex, and if any camera position is at or
    below the floor (a negative orbit elevation) the floor is left out instead."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    radius = float(np.linalg.norm(hi - lo) / 2.0)
    z = float(lo[2]) - 1e-3 * radius
    reach = float(np.max(np.linalg.norm(cameras[:, :2] - (lo[:2] + hi[:2]) / 2.0, axis=1)))
    visible = bool(cameras[:, 2].min() > z + 0.02 * radius)
    return {**floor, "z": round(z, 6), "size": round(max(200.0 * radius, 40.0 * reach), 4), "enabled": visible}
