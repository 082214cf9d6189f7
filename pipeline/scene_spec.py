"""The scene spec: what the host tells Blender to render for one job (``<out>/renders/<job_id>/scene.json``).

Standard library only, because both sides import it: the host builds a :class:`SceneSpec` in
``pipeline/render/scene.py`` and writes :meth:`SceneSpec.to_json`; ``blender_scripts/`` (inside
Blender's Python, with the repository root on ``sys.path``) read it back with
:meth:`SceneSpec.from_json` and use typed fields (``spec.camera.lens_mm``) instead of string keys.
The looks are typed too (:class:`Material`, :class:`Floor`, :class:`Environment` with its
:class:`Light` and :class:`Background` parts; only ``pose`` stays a JSON object): their fields are what
the samplers in ``pipeline/scenery/looks.py`` resolve from the look YAMLs under ``assets/``, and
the defaults Blender applies to an absent key live here, in the field defaults, not in
``blender_scripts/looks.py``. An environment is one of three shapes picked by its ``kind``.

The camera model lives here too (sensor width and fit, field of view, focal length in pixels), so
the host's framing and visibility prediction and Blender's camera use one definition.

Numbers keep the type they were given (an ``int`` stays an ``int``), so ``to_json`` gives the same
bytes as the dict it replaced. :meth:`SceneSpec.from_json` is strict: unknown or missing keys,
``true`` for a number, NaN or infinity fail with :class:`SpecError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

#: Blender's default sensor width; the host fits it horizontally (``SENSOR_FIT``), so the
#: horizontal field of view depends only on the lens, whatever the frame's aspect.
SENSOR_WIDTH_MM = 36.0
SENSOR_FIT = "HORIZONTAL"


def vertical_fov(width: int, height: int, lens_mm: float, sensor_width_mm: float = SENSOR_WIDTH_MM) -> float:
    """Vertical field of view (radians) of a horizontally fitted sensor."""
    sensor_h = sensor_width_mm * height / width
    return 2.0 * math.atan(sensor_h / (2.0 * lens_mm))


def focal_px(width: int, lens_mm: float, sensor_width_mm: float = SENSOR_WIDTH_MM) -> float:
    """Focal length in pixels of a horizontally fitted sensor."""
    return lens_mm / sensor_width_mm * width


class SpecError(ValueError):
    """A scene spec that breaks the contract: ``<field>: <problem>``."""


class _Spec:
    """JSON conversion shared by every part: fields in declaration order, ``None`` optional fields
    left out (absent keys, not nulls)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and _optional(f):
                continue
            out[f.name] = _to_plain(v)
        return out

    @classmethod
    def from_json(cls, data: Any, source: str = "") -> Any:
        """The part from its JSON object; :class:`SpecError` ``[<source>: ]<field>: <problem>`` if
        it breaks the contract (``source``: the file, when there is one)."""
        try:
            return _convert(cls, data, "<spec>")
        except SpecError as e:
            if source:
                raise SpecError(f"{source}: {e}") from None
            raise


def _optional(f: dataclasses.Field) -> bool:
    return f.default is None


def _to_plain(v: Any) -> Any:
    if isinstance(v, _Spec):
        return v.to_json()
    if isinstance(v, list):
        return [_to_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_plain(x) for k, x in v.items()}
    return v


def _join(where: str, name: str) -> str:
    return name if where == "<spec>" else f"{where}.{name}"


def _convert(tp: Any, v: Any, where: str) -> Any:
    """Check ``v`` against the type ``tp`` and build it; raise :class:`SpecError` naming ``where``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        if v is None:
            return None
        return _convert(next(a for a in args if a is not type(None)), v, where)
    if isinstance(tp, type) and issubclass(tp, _Spec):
        if not isinstance(v, dict):
            raise SpecError(f"{where}: expected an object, got {type(v).__name__}")
        variants = vars(tp).get("VARIANTS")
        if variants:  # a part with several shapes: the tag field picks the class
            tag = tp.TAG
            if tag not in v:
                raise SpecError(f"{_join(where, tag)}: missing")
            if not isinstance(v[tag], str) or v[tag] not in variants:
                raise SpecError(f"{_join(where, tag)}: expected one of {', '.join(sorted(variants))}, got {v[tag]!r}")
            return _convert(variants[v[tag]], v, where)
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)]  # type: ignore[arg-type]
        unknown = sorted(set(v) - set(names))
        if unknown:
            raise SpecError(f"{_join(where, unknown[0])}: unknown field")
        kwargs = {}
        for f in dataclasses.fields(tp):  # type: ignore[arg-type]
            if f.name not in v:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise SpecError(f"{_join(where, f.name)}: missing")
                continue
            kwargs[f.name] = _convert(hints[f.name], v[f.name], _join(where, f.name))
        try:
            return tp(**kwargs)
        except SpecError as e:  # a part's own rule (__post_init__): prefix where the part is
            raise SpecError(_join(where, str(e))) from None
    if origin is list:
        if not isinstance(v, list):
            raise SpecError(f"{where}: expected a list, got {type(v).__name__}")
        return [_convert(args[0], x, f"{where}[{i}]") for i, x in enumerate(v)]
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise SpecError(f"{where}: expected an object, got {type(v).__name__}")
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise SpecError(f"{where}: expected true or false, got {v!r}")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"{where}: expected an integer, got {v!r}")
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpecError(f"{where}: expected a finite number, got {v!r}")
        return v
    if tp is str:
        if not isinstance(v, str):
            raise SpecError(f"{where}: expected a string, got {v!r}")
        return v
    raise TypeError(f"{where}: no JSON conversion for {tp!r}")  # a field type this module does not handle


def _check_vec(v: list[float], n: int, where: str) -> None:
    if len(v) != n:
        raise SpecError(f"{where}: expected {n} numbers, got {len(v)}")


@dataclass(frozen=True)
class CameraFrame(_Spec):
    """One frame's camera pose: where it is and the point it looks at (world units, z up)."""
    location: list[float]
    target: list[float]

    def __post_init__(self) -> None:
        _check_vec(self.location, 3, "location")
        _check_vec(self.target, 3, "target")


@dataclass(frozen=True)
class DepthOfField(_Spec):
    """Depth of field: the f-number and the focus point (the object's centre)."""
    fstop: float
    focus: list[float]


@dataclass(frozen=True)
class Camera(_Spec):
    """The camera: focal length, sensor (width in mm, fit) and one pose per orbit frame."""
    lens_mm: float
    sensor_width_mm: float
    sensor_fit: str
    frames: list[CameraFrame]
    dof: Optional[DepthOfField] = None


@dataclass(frozen=True)
class RenderSettings(_Spec):
    """Cycles settings for every pass (``blender_scripts/render_settings.py``)."""
    width: int
    height: int
    samples: int
    denoise: str
    fps: int
    device: str
    threads: int
    persistent_data: bool
    seed: int
    adaptive_threshold: float
    profile: str


@dataclass(frozen=True)
class Region(_Spec):
    """``marked: region`` and the twin pass: the margin around a region (px) and its scope."""
    margin_px: int
    scope: str


@dataclass(frozen=True)
class Paint(_Spec):
    """The red paint of the marked pass (no emission: an emissive paint would become a mesh light)."""
    base_color: list[float]
    roughness: float
    emission_strength: float


def _check_rgb(v: list[float], where: str) -> None:
    _check_vec(v, 3, where)


@dataclass(frozen=True, kw_only=True)
class Material(_Spec):
    """The object's material (``pipeline.scenery.looks.sample_material``; ``looks.object_material``):
    a Principled BSDF, a pattern mixing ``base_color`` and the darker ``color2``, then wear."""
    name: str                                   # "group/subclass"
    group: str
    subclass: str
    base_color: list[float]                     # linear RGB
    color2: list[float]                         # the pattern's second tone
    roughness: float
    metallic: float
    coat: float = 0.0
    sheen: float = 0.0
    pattern: str = "none"                       # none | noise | streaks | voronoi | wave | weave
    pattern_scale: float = 1.0
    wave_type: str = "BANDS"                    # wave pattern: BANDS | RINGS
    bump: float = 0.0
    pattern_seed: float = 0.0
    roughness_var: float = 0.0                  # wear: uneven gloss (0-1)
    scuffs: float = 0.0                         # wear: light, rough streaks (0-1)

    def __post_init__(self) -> None:
        _check_rgb(self.base_color, "base_color")
        _check_rgb(self.color2, "color2")


#: the fields each brick-like floor pattern needs on top of the common ones
_FLOOR_PATTERN_FIELDS = {"brick": ("mortar_color", "mortar", "brick_width", "row_height"),
                         "stone": ("mortar_color", "mortar")}


@dataclass(frozen=True, kw_only=True)
class Floor(_Spec):
    """The floor (``sample_floor`` then ``place_floor``; ``looks.build_floor``): a textured plane at
    height ``z``, ``size`` across, rotated and offset in world xy, with wear layers."""
    name: str
    kind: str                                   # the floor's name (assets/floors/<kind>.yaml)
    pattern: str                                # noise | brick | stone | tread | blotch | weave | checker | voronoi | wave
    color_a: list[float]
    color_b: list[float]
    scale: float                                # texture frequency per metre
    detail: float = 4.0
    roughness: float
    metallic: float = 0.0
    bump: float = 0.0
    grain: float = 0.0                          # brick: wood grain along the boards
    rotation_deg: float
    offset: list[float]                         # texture offset in xy
    pattern_seed: float = 0.0
    roughness_var: float = 0.0
    scuffs: float = 0.0
    stains: float = 0.0
    cover: float = 0.5                          # blotch: the share of spots
    mortar_color: Optional[list[float]] = None  # brick and stone
    mortar: Optional[float] = None              # brick and stone: joint width
    brick_width: Optional[float] = None         # brick
    row_height: Optional[float] = None          # brick
    z: float                                    # height of the plane, just below the object
    size: float
    enabled: bool = True                        # false: a camera at or below the floor, so no floor

    def __post_init__(self) -> None:
        _check_rgb(self.color_a, "color_a")
        _check_rgb(self.color_b, "color_b")
        _check_vec(self.offset, 2, "offset")
        for name in _FLOOR_PATTERN_FIELDS.get(self.pattern, ()):
            if getattr(self, name) is None:
                raise SpecError(f"{name}: missing (pattern {self.pattern!r} needs it)")
        if self.mortar_color is not None:
            _check_rgb(self.mortar_color, "mortar_color")


@dataclass(frozen=True, kw_only=True)
class Background(_Spec):
    """A studio's or indoor background, or an HDRI's plain backdrop: a vertical ``gradient``
    (``bottom`` to ``top``) or a ``uniform`` ``color``."""
    type: str                                   # gradient | uniform
    bottom: Optional[list[float]] = None        # gradient
    top: Optional[list[float]] = None           # gradient
    color: Optional[list[float]] = None         # uniform
    strength: float

    def __post_init__(self) -> None:
        need = {"gradient": ("bottom", "top"), "uniform": ("color",)}.get(self.type)
        if need is None:
            raise SpecError(f"type: expected gradient or uniform, got {self.type!r}")
        for name in need:
            if getattr(self, name) is None:
                raise SpecError(f"{name}: missing (type {self.type!r} needs it)")
            _check_rgb(getattr(self, name), name)


@dataclass(frozen=True, kw_only=True)
class Light(_Spec):
    """One light of a rig, placed by the host (``resolve_lights``): absolute position, aim, power."""
    type: str                                   # AREA | POINT | SPOT
    location: list[float]
    target: list[float]
    energy: float                               # W
    size: float                                 # AREA: edge length
    color: list[float]
    spot_size_deg: float                        # SPOT: cone angle

    def __post_init__(self) -> None:
        _check_vec(self.location, 3, "location")
        _check_vec(self.target, 3, "target")
        _check_rgb(self.color, "color")


@dataclass(frozen=True, kw_only=True)
class Environment(_Spec):
    """The world and its lights (``sample_environment``, ``resolve_hdri``, ``resolve_lights``;
    ``looks.build_environment``). Reading one gives the class its ``kind`` names: an
    :class:`HdriEnvironment`, a :class:`SkyEnvironment` or a :class:`RigEnvironment`."""
    TAG: ClassVar[str] = "kind"
    VARIANTS: ClassVar[dict[str, type]] = {}   # filled below, once the shapes exist
    name: str
    kind: str
    lights: list[Light] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class HdriEnvironment(Environment):
    """A photographic HDRI: one Blender ships (``image``, credited by ``source`` and ``license``)
    or a ``scene.hdri_dir`` file; the camera sees the photograph or a plain ``backdrop``."""
    image: Optional[str] = None                 # Blender-shipped HDRIs: the image's name
    source: Optional[str] = None
    license: Optional[str] = None
    file: str                                   # the absolute path Blender loads
    rotation_deg: float
    strength: float
    camera_sees: str = "photo"                  # photo | backdrop
    backdrop: Optional[Background] = None       # camera_sees: backdrop

    def __post_init__(self) -> None:
        if self.camera_sees not in ("photo", "backdrop"):
            raise SpecError(f"camera_sees: expected photo or backdrop, got {self.camera_sees!r}")
        if self.camera_sees == "backdrop" and self.backdrop is None:
            raise SpecError("backdrop: missing (camera_sees 'backdrop' needs it)")


@dataclass(frozen=True, kw_only=True)
class SkyEnvironment(Environment):
    """A physical sky texture with a sun lamp along the sky's sun direction."""
    sky_type: str = "SINGLE_SCATTERING"         # SINGLE_SCATTERING | MULTIPLE_SCATTERING | PREETHAM | HOSEK_WILKIE
    sun_elevation_deg: float
    sun_rotation_deg: float
    strength: float
    air_density: float = 1.0                    # the scattering skies
    aerosol_density: float = 1.0                # the scattering skies
    turbidity: float = 2.5                      # PREETHAM, HOSEK_WILKIE
    sun_strength: float = 2.0
    sun_angle_deg: float = 3.0


@dataclass(frozen=True, kw_only=True)
class RigEnvironment(Environment):
    """A studio or indoor environment: a background plus its light rig (``lights``)."""
    background: Background
    rotation_deg: float                         # the rig's rotation (already applied to the lights)


Environment.VARIANTS = {"hdri": HdriEnvironment, "sky": SkyEnvironment, "studio": RigEnvironment,
                        "indoor": RigEnvironment}


@dataclass(frozen=True)
class SceneSpec(_Spec):
    """Everything Blender renders for one job; the JSON object of ``scene.json``."""
    job_id: str
    mesh: str                                   # the object's .npz (faces of the defect on slot 1)
    output: str                                 # the folder Blender writes into
    has_defect: bool
    marked: str                                 # config render.marked
    region: Region
    material: Material                          # the looks (blender_scripts/looks.py)
    defect_material: Paint
    floor: Floor
    environment: Environment
    camera: Camera
    render: RenderSettings
    pose: dict[str, Any]                        # the job's pose (recorded in meta.json)
    twin_mesh: Optional[str] = None             # the defect-free twin's .npz: adds the evidence pass
    mask_pass: Optional[bool] = None            # benchmarks only: false switches the mask pass off

    @property
    def twin_mode(self) -> bool:
        """Whether Blender renders the twin's evidence pass."""
        return bool(self.twin_mesh) and self.has_defect

    @property
    def region_mode(self) -> bool:
        """Whether the marked pass renders only each frame's region."""
        return self.marked == "region" and self.has_defect


#: the fields of each part, for documentation checks (``docs/formats.md``)
PARTS: dict[str, type] = {"": SceneSpec, "camera": Camera, "camera.frames[]": CameraFrame, "camera.dof": DepthOfField,
                          "render": RenderSettings, "region": Region, "defect_material": Paint, "material": Material,
                          "floor": Floor, "environment": Environment, "environment.lights[]": Light,
                          "environment.background": Background, "environment.backdrop": Background}


def field_names(part: type) -> list[str]:
    """The JSON keys of one part, in declaration order; of a part with several shapes
    (:class:`Environment`), every shape's keys, each once."""
    shapes = list(dict.fromkeys(vars(part).get("VARIANTS", {}).values())) or [part]
    return list(dict.fromkeys(f.name for s in shapes for f in dataclasses.fields(s)))  # type: ignore[arg-type]


__all__ = ["SENSOR_WIDTH_MM", "SENSOR_FIT", "vertical_fov", "focal_px", "SpecError", "CameraFrame", "DepthOfField",
           "Camera", "RenderSettings", "Region", "Paint", "Material", "Floor", "Background", "Light", "Environment",
           "HdriEnvironment", "SkyEnvironment", "RigEnvironment", "SceneSpec", "PARTS", "field_names"]
