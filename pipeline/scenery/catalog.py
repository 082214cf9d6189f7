"""Load and validate the declarative look specs in ``assets/{materials,environments,floors}``.

Every error names the file and the key. Names are sorted so that sampling is independent of the
file system's listing order."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..ids import validate_id
from ..paths import ASSETS
from .params import SpecError, check_hsv, check_param

MATERIAL_PATTERNS = ("none", "noise", "voronoi", "wave", "checker", "streaks", "weave")
FLOOR_PATTERNS = ("noise", "brick", "checker", "voronoi", "wave", "stone", "tread", "blotch", "weave")
SKY_TYPES = ("single_scattering", "multiple_scattering", "preetham", "hosek_wilkie")
LIGHT_TYPES = ("area", "point", "spot")
HDRI_SUFFIXES = (".exr", ".hdr")
# Where Blender keeps the HDRIs it ships (CC0, Poly Haven), relative to its versioned data folder.
BUNDLED_HDRI_SUBDIR = Path("datafiles") / "studiolights" / "world"


@dataclass(frozen=True)
class Catalog:
    """All look specs: ``materials[group][subclass]``, ``environments[name]``, ``floors[name]``."""
    materials: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    floors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def material_names(self) -> list[str]:
        return [f"{g}/{s}" for g in sorted(self.materials) for s in sorted(self.materials[g])]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: <root>: expected a mapping of keys")
    return data


def _keys(d: dict[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(d))
    if missing:
        raise SpecError(f"{where}: missing key(s) {', '.join(missing)}")


MATERIAL_KEYS = {"hue", "saturation", "value", "roughness", "metallic", "coat", "sheen", "pattern",
                 "pattern_scale", "contrast", "bump", "roughness_var", "scuffs"}
UNIT = {"saturation", "value", "roughness", "metallic", "coat", "sheen", "contrast", "roughness_var", "scuffs"}


def _check_material(spec: dict[str, Any], where: str) -> None:
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: expected a mapping")
    _keys(spec, MATERIAL_KEYS, {"hue", "saturation", "value", "roughness", "pattern"}, where)
    check_hsv([spec["hue"], spec["saturation"], spec["value"]], where)
    for k in UNIT & set(spec):
        check_param(spec[k], f"{where}.{k}", 0.0, 1.0)
    if spec["pattern"] not in MATERIAL_PATTERNS:
        raise SpecError(f"{where}.pattern: {spec['pattern']!r} is not one of {', '.join(MATERIAL_PATTERNS)}")
    if spec["pattern"] != "none":
        for k in ("pattern_scale", "contrast"):
            if k not in spec:
                raise SpecError(f"{where}.{k}: required when pattern is {spec['pattern']!r}")
        check_param(spec["pattern_scale"], f"{where}.pattern_scale", 0.01, 10_000)
    if "bump" in spec:
        check_param(spec["bump"], f"{where}.bump", 0.0, 1.0)


def _check_light(light: Any, where: str) -> None:
    if not isinstance(light, dict):
        raise SpecError(f"{where}: expected a mapping")
    _keys(light, {"type", "count", "azimuth_deg", "elevation_deg", "distance", "size", "irradiance",
                  "temperature_k", "spot_size_deg"},
          {"type", "azimuth_deg", "elevation_deg", "distance", "irradiance", "temperature_k"}, where)
    if light["type"] not in LIGHT_TYPES:
        raise SpecError(f"{where}.type: {light['type']!r} is not one of {', '.join(LIGHT_TYPES)}")
    check_param(light.get("count", 1), f"{where}.count", 1, 16)
    check_param(light["azimuth_deg"], f"{where}.azimuth_deg", -360, 720)
    check_param(light["elevation_deg"], f"{where}.elevation_deg", 0, 90)
    check_param(light["distance"], f"{where}.distance", 1.2, 50)
    check_param(light["irradiance"], f"{where}.irradiance", 0, 100)
    check_param(light["temperature_k"], f"{where}.temperature_k", 1000, 20000)
    if light["type"] == "area":
        if "size" not in light:
            raise SpecError(f"{where}.size: required for area lights")
        check_param(light["size"], f"{where}.size", 0.01, 50)
    if "spot_size_deg" in light:
        check_param(light["spot_size_deg"], f"{where}.spot_size_deg", 1, 180)


def _check_background(bg: Any, where: str) -> None:
    if not isinstance(bg, dict) or bg.get("type") not in ("gradient", "uniform"):
        raise SpecError(f"{where}.type: expected 'gradient' or 'uniform'")
    if bg["type"] == "gradient":
        _keys(bg, {"type", "bottom_hsv", "top_hsv", "strength"}, {"type", "bottom_hsv", "top_hsv", "strength"}, where)
        check_hsv(bg["bottom_hsv"], f"{where}.bottom_hsv")
        check_hsv(bg["top_hsv"], f"{where}.top_hsv")
    else:
        _keys(bg, {"type", "color_hsv", "strength"}, {"type", "color_hsv", "strength"}, where)
        check_hsv(bg["color_hsv"], f"{where}.color_hsv")
    check_param(bg["strength"], f"{where}.strength", 0, 100)


def _check_hdri(spec: dict[str, Any], where: str) -> None:
    """A photographic HDRI that Blender ships (``image`` = its file stem), with its provenance."""
    _keys(spec, {"kind", "image", "source", "license", "strength", "rotation_deg", "backdrop_share", "backdrop"},
          {"kind", "image", "source", "license", "strength"}, where)
    validate_id(str(spec["image"]), f"{where}.image")
    for k in ("source", "license"):
        if not isinstance(spec[k], str) or not spec[k].strip():
            raise SpecError(f"{where}.{k}: expected a non-empty string")
    check_param(spec["strength"], f"{where}.strength", 0, 100)
    check_param(spec.get("rotation_deg", [0, 360]), f"{where}.rotation_deg", -360, 720)
    share = spec.get("backdrop_share", 0.0)
    check_param(share, f"{where}.backdrop_share", 0.0, 1.0)
    if isinstance(share, list):
        raise SpecError(f"{where}.backdrop_share: expected a number (a probability), got {share!r}")
    if share > 0 and "backdrop" not in spec:
        raise SpecError(f"{where}.backdrop: required when backdrop_share > 0")
    if "backdrop" in spec:
        _check_background(spec["backdrop"], f"{where}.backdrop")


def _check_environment(spec: dict[str, Any], where: str) -> None:
    kind = spec.get("kind")
    if kind == "hdri":
        _check_hdri(spec, where)
    elif kind == "sky":
        _keys(spec, {"kind", "sky", "sun"}, {"kind", "sky", "sun"}, where)
        sky, sun = spec["sky"], spec["sun"]
        if not isinstance(sky, dict) or not isinstance(sun, dict):
            raise SpecError(f"{where}: sky and sun must be mappings")
        _keys(sky, {"type", "sun_elevation_deg", "sun_rotation_deg", "strength", "air_density", "aerosol_density",
                    "turbidity"}, {"type", "sun_elevation_deg", "sun_rotation_deg", "strength"}, f"{where}.sky")
        if sky["type"] not in SKY_TYPES:
            raise SpecError(f"{where}.sky.type: {sky['type']!r} is not one of {', '.join(SKY_TYPES)}")
        check_param(sky["sun_elevation_deg"], f"{where}.sky.sun_elevation_deg", 0, 90)
        check_param(sky["sun_rotation_deg"], f"{where}.sky.sun_rotation_deg", -360, 720)
        check_param(sky["strength"], f"{where}.sky.strength", 0, 10)
        for k in ("air_density", "aerosol_density"):
            if k in sky:
                check_param(sky[k], f"{where}.sky.{k}", 0, 10)
        if "turbidity" in sky:
            check_param(sky["turbidity"], f"{where}.sky.turbidity", 1, 10)
        _keys(sun, {"strength", "angle_deg"}, {"strength"}, f"{where}.sun")
        check_param(sun["strength"], f"{where}.sun.strength", 0, 100)
        check_param(sun.get("angle_deg", 3.0), f"{where}.sun.angle_deg", 0, 90)
    elif kind in ("studio", "indoor"):
        _keys(spec, {"kind", "background", "rotation_deg", "lights"}, {"kind", "background", "lights"}, where)
        _check_background(spec["background"], f"{where}.background")
        check_param(spec.get("rotation_deg", 0), f"{where}.rotation_deg", -360, 720)
        if not isinstance(spec["lights"], list) or not spec["lights"]:
            raise SpecError(f"{where}.lights: expected a non-empty list")
        for i, light in enumerate(spec["lights"]):
            _check_light(light, f"{where}.lights[{i}]")
    else:
        raise SpecError(f"{where}.kind: {kind!r} is not one of hdri, sky, studio, indoor")


FLOOR_KEYS = {"pattern", "color_a_hsv", "color_b_hsv", "mortar_hsv", "scale", "detail", "roughness", "metallic",
              "bump", "brick_width", "row_height", "mortar", "square", "grain", "roughness_var", "scuffs", "stains",
              "cover"}


def _check_floor(spec: dict[str, Any], where: str) -> None:
    _keys(spec, FLOOR_KEYS, {"pattern", "color_a_hsv", "color_b_hsv", "scale", "roughness"}, where)
    if spec["pattern"] not in FLOOR_PATTERNS:
        raise SpecError(f"{where}.pattern: {spec['pattern']!r} is not one of {', '.join(FLOOR_PATTERNS)}")
    check_hsv(spec["color_a_hsv"], f"{where}.color_a_hsv")
    check_hsv(spec["color_b_hsv"], f"{where}.color_b_hsv")
    if spec["pattern"] == "brick":
        for k in ("mortar_hsv", "brick_width", "row_height", "mortar"):
            if k not in spec:
                raise SpecError(f"{where}.{k}: required for the brick pattern")
        check_hsv(spec["mortar_hsv"], f"{where}.mortar_hsv")
        for k in ("brick_width", "row_height", "mortar"):
            check_param(spec[k], f"{where}.{k}", 0.0, 10.0)
    if spec["pattern"] == "stone":
        for k in ("mortar_hsv", "mortar"):
            if k not in spec:
                raise SpecError(f"{where}.{k}: required for the stone pattern")
        check_hsv(spec["mortar_hsv"], f"{where}.mortar_hsv")
        check_param(spec["mortar"], f"{where}.mortar", 0.0, 1.0)
    check_param(spec["scale"], f"{where}.scale", 0.01, 1000)
    for k in ("roughness", "metallic", "bump", "roughness_var", "scuffs", "stains", "cover"):
        if k in spec:
            check_param(spec[k], f"{where}.{k}", 0.0, 1.0)
    for k in ("detail", "grain"):
        if k in spec:
            check_param(spec[k], f"{where}.{k}", 0.0, 1000)


def _specs(folder: Path, what: str) -> list[tuple[str, Path, dict[str, Any]]]:
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise SpecError(f"{folder}: no {what} specs (*.yaml) found")
    return [(validate_id(f.stem, f"{f}: name"), f, _read(f)) for f in files]


@lru_cache(maxsize=8)
def _load(root: str) -> Catalog:
    base = Path(root)
    materials: dict[str, dict[str, dict[str, Any]]] = {}
    for _, f, data in _specs(base / "materials", "material"):
        _keys(data, {"group", "subclasses"}, {"group", "subclasses"}, str(f))
        group = validate_id(str(data["group"]), f"{f}: group")
        if group in materials:
            raise SpecError(f"{f}: group: {group!r} is defined twice")
        if not isinstance(data["subclasses"], dict) or not data["subclasses"]:
            raise SpecError(f"{f}: subclasses: expected a non-empty mapping")
        for sub, spec in data["subclasses"].items():
            validate_id(str(sub), f"{f}: subclasses")
            _check_material(spec, f"{f}: subclasses.{sub}")
        materials[group] = dict(data["subclasses"])
    envs = {}
    for name, f, data in _specs(base / "environments", "environment"):
        _check_environment(data, str(f))
        envs[name] = data
    floors = {}
    for name, f, data in _specs(base / "floors", "floor"):
        _check_floor(data, str(f))
        floors[name] = data
    return Catalog(materials, envs, floors)


def load_catalog(root: str | Path | None = None) -> Catalog:
    """The validated catalog under ``root`` (default: the repo's ``assets/``); cached per root."""
    return _load(str(Path(root).resolve() if root else ASSETS))


def hdri_files(folder: str | Path | None) -> list[Path]:
    """HDRI/EXR files in ``folder`` (sorted; none if the folder is unset)."""
    if not folder:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecError(f"scene.hdri_dir: {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in HDRI_SUFFIXES and p.is_file())


def bundled_hdri_dir() -> Path | None:
    """The folder of HDRIs that Blender ships, found without importing bpy: the ``bpy`` wheel's
    ``<version>/datafiles/studiolights/world`` (located with ``importlib.util.find_spec``), else the
    data folder next to the binary named by ``$BLENDER``. None when neither is installed."""
    return _bundled_dir(os.environ.get("BLENDER", ""))


@lru_cache(maxsize=4)
def _bundled_dir(blender: str) -> Path | None:
    roots: list[Path] = []
    spec = importlib.util.find_spec("bpy")
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    if blender:
        roots.append(Path(blender).resolve().parent)
    for root in roots:
        found = sorted(root.glob(f"*/{BUNDLED_HDRI_SUBDIR}"))
        if found:
            return found[-1]  # the newest version folder
    return None


def bundled_hdri(image: str, where: str = "environment") -> Path:
    """The absolute path of Blender's bundled HDRI ``image`` (e.g. ``forest``); a clear error if missing."""
    folder = bundled_hdri_dir()
    if folder is None:
        raise SpecError(f"{where}: HDRI {image!r} ships with Blender, but neither the bpy package nor $BLENDER "
                        "was found (install the bpy wheel: make install)")
    path = folder / f"{image}.exr"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.exr")))
        raise SpecError(f"{where}: HDRI {image!r} is not in {folder} (have: {have})")
    return path
