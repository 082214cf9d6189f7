"""Typed dataset config. Unknown keys and bad values are rejected with the file and key named.

Strict: a YAML file with a repeated key (or a repeated section) is refused instead of letting the
last one win; values keep their YAML type (``true`` is not 1, ``"8"`` is not 8, ``8.0`` is not an
integer; an integer is fine where a float is expected); nesting is bounded; every problem is
reported as one line, ``FILE: KEY: problem``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, Strict, StrictBool, StrictStr, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from .ids import DEFECT_TYPES, validate_id

#: deeper YAML nesting than this is refused before it is built (the schema needs 4 levels)
MAX_YAML_DEPTH = 16


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Strict scalars: no bool → int, no str → number, no 8.0 → int; an int is accepted for a float.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = StrictBool
Str = StrictStr
Range = tuple[Float, Float]


def _check_range(v: Range, lo: float, hi: float, name: str) -> Range:
    a, b = v
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} range [{a}, {b}] must satisfy {lo} <= min <= max <= {hi}")
    return v


# Allowed bounds of every [min, max] range key, checked by one validator per model.
RANGE_BOUNDS: dict[str, tuple[float, float]] = {
    "defect_area": (1e-4, 0.5), "defect_depth": (1e-4, 0.5),
    "tilt_deg": (0.0, 30.0), "hdri_strength": (0.0, 100.0), "elevation_deg": (-10.0, 80.0),
    "distance_factor": (1.2, 20.0), "yaw_deg": (-720.0, 720.0), "scale": (0.01, 100.0),
    "center_y": (0.1, 0.9), "fstop": (0.1, 64.0),
}


def _bounded(v: Optional[Range], info: ValidationInfo) -> Optional[Range]:
    if v is None:
        return v
    lo, hi = RANGE_BOUNDS[info.field_name]
    return _check_range(v, lo, hi, info.field_name)


class SourceConfig(_Strict):
    """Where objects come from.

    ``procedural``: the built-in library (``library`` = a folder of specs, default ``assets/objects``).
    ``anomaly_shapenet``: an Anomaly-ShapeNet-v2 folder at ``root`` (``dataset/{obj,new_obj}/<cat>/*.obj``
    with ``dataset/{pcd,new_pcd}/<cat>/GT/*.txt``). ``label_map`` maps a file-name token that is not
    one of the six types (``bending``) to a type, ``good`` or ``skip``; ``mask_tolerance`` is the GT
    → vertex nearest-neighbour distance as a fraction of the mesh's bounding-box diagonal, and
    ``min_matched`` the share of vertices that must find a GT point; ``up_axis`` is the meshes' up.
    """
    kind: Literal["procedural", "anomaly_shapenet"] = "procedural"
    library: Optional[Path] = None  # procedural only
    root: Optional[Path] = None     # anomaly_shapenet only
    up_axis: Literal["y", "z"] = "y"
    label_map: dict[Str, Str] = Field(default_factory=dict)
    mask_tolerance: Float = Field(0.01, gt=0.0, le=0.5)
    min_matched: Float = Field(0.9, ge=0.0, le=1.0)

    @field_validator("label_map")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        allowed = (*DEFECT_TYPES, "good", "skip")
        for k, t in v.items():
            if t not in allowed:
                raise ValueError(f"{k!r} → {t!r}: not one of {', '.join(allowed)}")
        return v

    @model_validator(mode="after")
    def _by_kind(self) -> "SourceConfig":
        # Compare with the defaults (not model_fields_set) so a dumped config validates again.
        fields = type(self).model_fields
        asn_only = [k for k in ("root", "up_axis", "label_map", "mask_tolerance", "min_matched")
                    if getattr(self, k) != fields[k].get_default(call_default_factory=True)]
        if self.kind == "procedural" and asn_only:
            raise ValueError(f"{', '.join(sorted(asn_only))}: only for kind anomaly_shapenet")
        if self.kind == "anomaly_shapenet":
            if self.root is None:
                raise ValueError("root: required for kind anomaly_shapenet (the folder holding dataset/)")
            if self.library is not None:
                raise ValueError("library: only for kind procedural")
        return self


class ObjectsConfig(_Strict):
    source: SourceConfig = SourceConfig()
    categories: list[Str] = Field(min_length=1)
    objects_per_category: Int = Field(1, ge=1, le=10_000)
    normal_share: Float = Field(0.25, ge=0.0, le=1.0)
    # Relative weights of the defect types; the planner allocates counts to match them exactly.
    defects: dict[Str, Float] = Field(default_factory=lambda: {d: 1.0 for d in DEFECT_TYPES})
    trajectories_per_object: Int = Field(1, ge=1, le=100)
    defect_area: Range = (0.015, 0.05)   # fraction of the surface area
    defect_depth: Range = (0.05, 0.12)   # fraction of the object's height
    # Widens cracks and scratches (half-widths 0.6-1.1 % and 0.3-0.6 % of the object at 1) for low
    # render resolutions, where a thin groove would be narrower than a pixel.
    groove_scale: Float = Field(1.0, ge=0.25, le=4.0)

    @field_validator("categories")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for c in v:
            validate_id(c, "category")
        if len(set(v)) != len(v):
            raise ValueError("categories contain duplicates")
        return v

    @field_validator("defects")
    @classmethod
    def _defects(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one defect type is needed")
        for k, w in v.items():
            if k not in DEFECT_TYPES:
                raise ValueError(f"unknown defect type {k!r} (known: {', '.join(DEFECT_TYPES)})")
            if not (0 < w < float("inf")):
                raise ValueError(f"weight of {k!r} must be > 0 and finite")
        return v

    _ranges = field_validator("defect_area", "defect_depth")(_bounded)


class VisibilityConfig(_Strict):
    """Visibility-aware orbit planning (``pipeline/scenery/visibility.py``): ray-cast the defect
    faces from the planned camera path before rendering. With ``target_share`` set, start azimuths
    are chosen so that this share of *all* clips (normal objects included) shows the defect."""
    predict: Bool = True
    target_share: Optional[float] = Field(None, ge=0.0, le=1.0)
    candidates: Int = Field(36, ge=1, le=3600)     # start azimuths tried per job (multiples of one frame)
    samples: Int = Field(96, ge=1, le=100_000)      # defect faces ray-cast per frame


class SceneConfig(_Strict):
    """Randomized scene parameters (camera orbit, pose, look). Look specs come from
    ``assets`` (folders materials/, environments/, floors/; default: the repo's assets/).

    The defaults frame objects the way the MMVIAD figures do: a low camera, the object standing on
    the floor below the middle of the frame, the floor receding to a horizon in the upper part."""
    elevation_deg: Range = (8.0, 22.0)
    distance_factor: Range = (3.4, 4.4)   # 2.2 / factor ≈ the bounding sphere's share of the frame height
    center_y: Range = (0.38, 0.46)        # object centre's height in the frame, from the bottom (0.5 = centred)
    lens_mm: Float | Range = (30.0, 50.0)  # focal length (36 mm sensor width), a number or a [min, max] range
    fstop: Optional[Range] = None         # depth of field focused on the object; None = everything sharp
    yaw_deg: Range = (0.0, 360.0)
    tilt_deg: Range = (0.0, 5.0)          # tilt about a random horizontal axis
    scale: Range = (0.9, 1.1)
    jitter_deg: Float = Field(1.0, ge=0.0, le=10.0)          # smooth elevation/azimuth wobble bound
    jitter_distance: Float = Field(0.02, ge=0.0, le=0.2)     # relative distance wobble bound
    assets: Optional[Path] = None
    material_groups: Optional[list[Str]] = None   # restrict to these groups (default: all)
    environments: Optional[list[Str]] = None      # restrict to these environment names (default: all)
    floors: Optional[list[Str]] = None            # restrict to these floor names (default: all)
    hdri_dir: Optional[Path] = None               # *.exr / *.hdr files here join the environment pool
    # Chance of a photographic HDRI (the hdri_* environments Blender ships, plus hdri_dir files) when
    # the pool also holds procedural environments.
    hdri_share: Float = Field(0.6, ge=0.0, le=1.0)
    hdri_strength: Range = (0.6, 1.4)             # for hdri_dir files (named HDRIs carry their own)
    visibility: VisibilityConfig = VisibilityConfig()

    _ranges = field_validator("tilt_deg", "hdri_strength", "elevation_deg", "distance_factor", "yaw_deg",
                              "scale", "center_y", "fstop")(_bounded)

    @field_validator("lens_mm")
    @classmethod
    def _lens(cls, v: float | Range) -> float | Range:
        if isinstance(v, tuple):
            return _check_range(v, 6.0, 300.0, "lens_mm")
        if not 6.0 <= v <= 300.0:
            raise ValueError(f"lens_mm {v} must be within [6, 300]")
        return v


class RenderConfig(_Strict):
    """Render settings. ``profile`` fills in defaults for keys the config does not set
    (``pipeline/profiles.py``: ``cpu``, the default, and ``paper``, 1920×1080 at 30 fps on GPU).

    ``scratch_dir``: where each job's Ray task renders, annotates and cuts clips before publishing
    into ``--out`` (a node-local disk; ``None``: ``mmviad-scratch`` under the worker's temp folder).
    ``keep_frames``: the PNG frames a job publishes besides its clips, annotation and lossless mask
    video: ``none``, ``mask`` (``mask/`` and ``objmask/``) or ``all`` (every pass); ``all`` by
    default, ``none`` in the ``paper`` profile. Without frames, only interval-level ``annotate``
    params can change later (docs/render_farm.md)."""
    profile: Literal["cpu", "paper"] = "cpu"
    width: Int = Field(320, ge=16, le=7680)
    height: Int = Field(180, ge=16, le=4320)
    samples: Int = Field(8, ge=1, le=65536)
    denoise: Literal["off", "fast", "high"] = "fast"
    fps: Int = Field(30, ge=1, le=240)
    orbit_frames: Int = Field(180, ge=2, le=100_000)   # frames of one full 360° orbit
    clip_seconds: Float = Field(2.0, gt=0, le=600)
    device: Literal["cpu", "gpu"] = "cpu"
    threads: Int = Field(0, ge=0, le=1024)             # 0 = all cores of the worker
    workers: Int = Field(0, ge=0, le=100_000)          # parallel Blender processes; 0 = cores // threads
    persistent_data: Bool = True
    # render: a second full Cycles pass with the red paint (the MMVIAD method); region: the same render
    # but path traced only where the paint can change pixels (pipeline/render/region.py), the rest
    # reused from the unmarked pass; composite: the exact mask tinted red in 2-D (not a render).
    marked: Literal["render", "composite", "region"] = "render"
    # marked: region: the rectangle around the defect (scope defect) or around the defect and the whole
    # object (scope object, which also holds the paint's reflections on the object), grown by a
    # margin, a fraction of the frame width (docs/performance.md measures both against a full render).
    region_scope: Literal["object", "defect"] = "object"
    region_margin: Float = Field(0.05, ge=0.0, le=1.0)
    retries: Int = Field(2, ge=0, le=10)
    timeout_s: Int = Field(3600, ge=10, le=7 * 24 * 3600)
    adaptive_threshold: Float = Field(0.0, ge=0.0, le=1.0)  # Cycles adaptive sampling noise threshold; 0 = off
    kernel_cache_dir: Optional[Path] = None  # GPU kernel caches (CUDA/OptiX/Cycles) on a persistent volume
    # the per-job task's scratch folder and the PNGs it publishes (see the class docstring, pipeline/farm.py)
    scratch_dir: Optional[Path] = None
    keep_frames: Literal["none", "mask", "all"] = "all"

    @model_validator(mode="before")
    @classmethod
    def _profile(cls, data):
        from .profiles import apply_profile
        return apply_profile(data)

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (H.264 with yuv420p needs even frame sizes)")
        return v

    @property
    def clip_frames(self) -> int:
        return int(round(self.clip_seconds * self.fps))

    @model_validator(mode="after")
    def _clips(self) -> "RenderConfig":
        frames = self.clip_seconds * self.fps
        if abs(frames - self.clip_frames) > 1e-6:
            raise ValueError(f"clip_seconds: clip_seconds × fps = {frames:g} frames; must be a whole number")
        if self.clip_frames > self.orbit_frames:
            raise ValueError(f"orbit_frames: a clip ({self.clip_frames} frames) is longer than the orbit "
                             f"({self.orbit_frames} frames)")
        if self.orbit_frames % self.clip_frames:
            raise ValueError(f"orbit_frames: {self.orbit_frames} is not a multiple of the clip length "
                             f"({self.clip_frames} frames = clip_seconds × fps); the last "
                             f"{self.orbit_frames % self.clip_frames} frames would be rendered and dropped")
        return self


class AnnotateConfig(_Strict):
    """Visible-time annotation (defaults tuned on 320×180 renders; see README "Visible-time labels").

    Visibility: a frame shows the defect when >= ``max(min_visible_px, min_visible_frac * W * H)``
    defect pixels are seen; runs shorter than ``min_len`` frames are dropped and gaps of at most
    ``min_gap`` frames merged. This applies to the exact mask (the reference) and the diff.

    Diff (the MMVIAD method, marked vs unmarked render), per pixel: it counts when
    (1) some channel changed by >= ``diff_threshold``, (2) the red chroma ``r - max(g, b)`` rose by
    >= ``red_chroma_threshold``, and (3) the marked pixel itself is paint-red, chroma >=
    ``paint_chroma_min``. (1) rejects Monte-Carlo noise and denoiser jitter, (2)+(3) reject red light
    bounced onto nearby surfaces, which turns them only slightly pink. Then the clean-up: an opening
    of radius ``diff_open_px`` (0 = off) and removal of 8-connected specks smaller than
    ``diff_min_component_px`` pixels. Frames become intervals with hysteresis: a run of frames with
    score >= ``diff_low_ratio`` × threshold counts if it holds one frame at or above the threshold.
    """
    min_visible_px: Int = Field(4, ge=1)
    min_visible_frac: Float = Field(0.0, ge=0.0, le=1.0)
    min_len: Int = Field(2, ge=1)
    min_gap: Int = Field(2, ge=0)
    diff_threshold: Int = Field(24, ge=1, le=255)
    red_chroma_threshold: Int = Field(40, ge=0, le=255)
    paint_chroma_min: Int = Field(45, ge=0, le=255)
    diff_open_px: Int = Field(0, ge=0, le=16)
    diff_min_component_px: Int = Field(3, ge=1, le=10_000)
    diff_low_ratio: Float = Field(0.5, gt=0.0, le=1.0)
    # Evidence (pipeline/evidence.py): ``twin`` also renders the defect-free twin of every defective
    # object near its defect and counts, per frame, the pixels inside the defect mask (grown by
    # ``evidence_dilate_px``) whose change from the twin exceeds the noise floor measured around it
    # (the ``evidence_floor_percentile`` of the change in the rest of the twin's rectangle, at least
    # ``evidence_floor_min`` levels). A frame is evident with >= the visibility threshold of such pixels.
    evidence: Literal["off", "twin"] = "off"
    evidence_dilate_px: Int = Field(2, ge=0, le=64)
    evidence_floor_percentile: Float = Field(99.0, ge=50.0, le=100.0)
    evidence_floor_min: Int = Field(6, ge=1, le=255)

    def threshold_px(self, width: int, height: int) -> float:
        """Defect pixels a ``width`` × ``height`` frame needs to count as showing the defect: the one
        threshold of the annotation, the evidence pass and the planner's visibility prediction."""
        return max(float(self.min_visible_px), self.min_visible_frac * width * height)


class QAConfig(_Strict):
    # in_view_and_evident: mask frames that the unmarked video also shows (needs annotate.evidence: twin)
    label_source: Literal["mask", "diff", "in_view_and_evident"] = "mask"
    test_fraction: Float = Field(0.27, ge=0.0, le=1.0)
    crf: Int = Field(20, ge=0, le=51)
    encode_preset: Literal["ultrafast", "veryfast", "fast", "medium", "slow"] = "veryfast"
    # Unseen protocol: these categories form the test split; when empty, a seeded
    # round(unseen_fraction * #categories) of them (at least 1, at most all but one) — 12 of 48 by default.
    unseen_categories: list[Str] = Field(default_factory=list)
    unseen_fraction: Float = Field(0.25, gt=0.0, lt=1.0)

    @field_validator("unseen_categories")
    @classmethod
    def _unseen(cls, v: list[str]) -> list[str]:
        for c in v:
            validate_id(c, "unseen category")
        if len(set(v)) != len(v):
            raise ValueError("unseen_categories contain duplicates")
        return v


class Config(_Strict):
    name: Str
    seed: Int = Field(0, ge=0, lt=2**63)
    num_shards: Int = Field(1, ge=1, le=100_000)
    objects: ObjectsConfig
    scene: SceneConfig = SceneConfig()
    render: RenderConfig = RenderConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    qa: QAConfig = QAConfig()

    @model_validator(mode="after")
    def _evidence_possible(self) -> "Config":
        if self.qa.label_source == "in_view_and_evident" and self.annotate.evidence != "twin":
            raise ValueError("qa.label_source: in_view_and_evident needs annotate.evidence: twin")
        if self.annotate.evidence == "twin" and self.objects.source.kind == "anomaly_shapenet":
            raise ValueError("annotate.evidence: twin needs each object's defect-free mesh, which the "
                             "anomaly_shapenet source does not have (use off)")
        return self

    @model_validator(mode="after")
    def _unseen_known(self) -> "Config":
        unknown = [c for c in self.qa.unseen_categories if c not in self.objects.categories]
        if unknown:
            raise ValueError(f"qa.unseen_categories: {unknown} are not in objects.categories")
        if self.qa.unseen_categories and len(self.qa.unseen_categories) >= len(self.objects.categories):
            raise ValueError("qa.unseen_categories: must leave at least one category for training")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_id(v, "name")


_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.]*): ")


def _key_part(p: Any) -> str:
    """One step of an error's key path; a key with odd characters (a newline, a dot, nothing) is
    shown quoted, so the error stays one unambiguous line."""
    if isinstance(p, str) and not (p and p.isprintable() and "." not in p):
        return repr(p)
    return str(p)


def _one(loc: tuple[Any, ...], e: dict[str, Any]) -> tuple[str, str]:
    """``(key, problem)`` of one pydantic error, in the config's own words."""
    key = ".".join(_key_part(p) for p in loc if not (isinstance(p, str) and "[" in p)) or "<root>"
    typ, msg = e["type"], e["msg"]
    if typ == "extra_forbidden":
        msg = "unknown key"
    elif typ == "missing":
        msg = "required key is missing"
    elif typ == "value_error":
        msg = str((e.get("ctx") or {}).get("error") or msg.removeprefix("Value error, "))
        m = _FIELD_PREFIX.match(msg)
        if m:   # a model-level check that names its field: "render" + "orbit_frames: ..." → render.orbit_frames
            key = m.group(1) if key == "<root>" else f"{key}.{m.group(1)}"
            msg = msg[m.end():]
    elif typ.endswith("_type") or typ in ("finite_number", "literal_error", "enum"):
        got = e.get("input")
        shown = repr(got) if len(repr(got)) <= 40 else repr(got)[:37] + "..."
        msg = f"{msg} (got {type(got).__name__} {shown})"
    return key, msg.replace("\n", " ")


def _format_errors(path: Path, err: ValidationError) -> str:
    """One line: the first problem, and how many more there are (with their keys)."""
    found = [_one(e["loc"], e) for e in err.errors(include_url=False)]
    key, msg = found[0]
    rest = sorted({k for k, _ in found[1:]})
    more = f" (and {len(found) - 1} more: {', '.join(rest)})" if rest else ""
    return f"{path}: {key}: {msg}{more}"


def _key_path(parents: tuple[str, ...]) -> str:
    return ".".join(parents) or "<root>"


def _check_nodes(node: yaml.Node, path: Path) -> None:
    """Refuse repeated keys (the last one would silently win) anywhere in the document. Each node is
    visited once, so aliases cannot blow the walk up."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(node, ())]
    while stack:
        n, parents = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in n.value:
                name = str(k.value) if isinstance(k, yaml.ScalarNode) else "<complex key>"
                line = k.start_mark.line + 1
                if name in first and name != "<<":
                    raise ConfigError(f"{path}: {_key_path((*parents, name))}: duplicate key (line {line}; "
                                      f"first at line {first[name]}); remove one")
                first.setdefault(name, line)
                stack.append((v, (*parents, name)))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend((v, (*parents[:-1], f"{parents[-1]}[{i}]") if parents else (f"[{i}]",))
                         for i, v in enumerate(n.value))


def _yaml_error(path: Path, e: yaml.YAMLError) -> ConfigError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    what = getattr(e, "problem", None) or str(e).splitlines()[0]
    return ConfigError(f"{where}: not valid YAML ({what})")


def read_yaml(path: str | Path) -> Any:
    """The YAML document of ``path``: UTF-8 only, nesting at most :data:`MAX_YAML_DEPTH`, no repeated
    keys. Every failure is one :class:`ConfigError` line naming the file (and line, key)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {e.object[e.start]:#04x}); save the file as UTF-8") \
            from None
    try:
        depth = 0   # the event parser is iterative: check the depth before anything recursive runs
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise ConfigError(f"{path}:{ev.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} "
                                      "levels (a config needs at most 4)")
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check_nodes(node, path)
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; raise :class:`ConfigError` naming the file and key (one line)."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: <root>: expected a mapping of keys, got "
                          f"{'an empty file' if raw is None else type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(path, e)) from None


def with_overrides(cfg: Config, overrides: dict[str, Any], source: str) -> Config:
    """``cfg`` with dotted keys replaced (``{"render.workers": 4}``), validated like the file;
    a bad value raises one :class:`ConfigError` line naming ``source`` (e.g. ``--workers -1``)."""
    data = cfg.model_dump()
    for dotted, value in overrides.items():
        *head, last = dotted.split(".")
        d = data
        for k in head:
            d = d[k]
        d[last] = value
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        key, msg = _one(e.errors(include_url=False)[0]["loc"], e.errors(include_url=False)[0])
        raise ConfigError(f"{source}: {key}: {msg}") from None


def config_dict(cfg: Config) -> dict:
    """JSON-ready dict of the full resolved config (defaults filled in)."""
    return cfg.model_dump(mode="json")
