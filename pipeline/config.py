"""Typed dataset config. Unknown keys and bad values are rejected with the file and key named."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .ids import DEFECT_TYPES, validate_id


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Range = tuple[float, float]


def _check_range(v: Range, lo: float, hi: float, name: str) -> Range:
    a, b = v
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} range [{a}, {b}] must satisfy {lo} <= min <= max <= {hi}")
    return v


class SourceConfig(_Strict):
    """Where objects come from. ``procedural`` is the built-in library in ``assets/objects``."""
    kind: Literal["procedural"] = "procedural"
    library: Optional[Path] = None  # defaults to the repo's assets/objects


class ObjectsConfig(_Strict):
    source: SourceConfig = SourceConfig()
    categories: list[str] = Field(min_length=1)
    objects_per_category: int = Field(1, ge=1, le=10_000)
    normal_share: float = Field(0.25, ge=0.0, le=1.0)
    # Relative weights of the defect types; the planner allocates counts to match them exactly.
    defects: dict[str, float] = Field(default_factory=lambda: {d: 1.0 for d in ("bulge", "concavity")})
    trajectories_per_object: int = Field(1, ge=1, le=100)
    defect_area: Range = (0.015, 0.05)   # fraction of the surface area
    defect_depth: Range = (0.05, 0.12)   # fraction of the object's height

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
            if not (w > 0):
                raise ValueError(f"weight of {k!r} must be > 0")
        return v

    @field_validator("defect_area")
    @classmethod
    def _area(cls, v: Range) -> Range:
        return _check_range(v, 1e-4, 0.5, "defect_area")

    @field_validator("defect_depth")
    @classmethod
    def _depth(cls, v: Range) -> Range:
        return _check_range(v, 1e-4, 0.5, "defect_depth")


class VisibilityConfig(_Strict):
    """Visibility-aware orbit planning (``pipeline/scenery/visibility.py``): ray-cast the defect
    faces from the planned camera path before rendering. With ``target_share`` set, start azimuths
    are chosen so that this share of *all* clips (normal objects included) shows the defect."""
    predict: bool = True
    target_share: Optional[float] = Field(None, ge=0.0, le=1.0)
    candidates: int = Field(36, ge=1, le=3600)     # start azimuths tried per job (multiples of one frame)
    samples: int = Field(96, ge=1, le=100_000)      # defect faces ray-cast per frame


class SceneConfig(_Strict):
    """Randomized scene parameters (camera orbit, pose, look). Look specs come from
    ``assets`` (folders materials/, environments/, floors/; default: the repo's assets/)."""
    elevation_deg: Range = (15.0, 35.0)
    distance_factor: Range = (2.6, 3.2)   # camera distance / object bounding radius
    yaw_deg: Range = (0.0, 360.0)
    tilt_deg: Range = (0.0, 5.0)          # tilt about a random horizontal axis
    scale: Range = (0.9, 1.1)
    lens_mm: float = Field(35.0, gt=5, lt=300)
    jitter_deg: float = Field(1.0, ge=0.0, le=10.0)          # smooth elevation/azimuth wobble bound
    jitter_distance: float = Field(0.02, ge=0.0, le=0.2)     # relative distance wobble bound
    assets: Optional[Path] = None
    material_groups: Optional[list[str]] = None   # restrict to these groups (default: all)
    environments: Optional[list[str]] = None      # restrict to these environment names (default: all)
    floors: Optional[list[str]] = None            # restrict to these floor names (default: all)
    hdri_dir: Optional[Path] = None               # *.exr / *.hdr files here join the environment pool
    hdri_share: float = Field(0.5, ge=0.0, le=1.0)  # chance of an HDRI when hdri_dir holds any
    hdri_strength: Range = (0.6, 1.4)
    visibility: VisibilityConfig = VisibilityConfig()

    @field_validator("tilt_deg")
    @classmethod
    def _tilt(cls, v: Range) -> Range:
        return _check_range(v, 0.0, 30.0, "tilt_deg")

    @field_validator("hdri_strength")
    @classmethod
    def _hdri(cls, v: Range) -> Range:
        return _check_range(v, 0.0, 100.0, "hdri_strength")

    @field_validator("elevation_deg")
    @classmethod
    def _elev(cls, v: Range) -> Range:
        return _check_range(v, -10.0, 80.0, "elevation_deg")

    @field_validator("distance_factor")
    @classmethod
    def _dist(cls, v: Range) -> Range:
        return _check_range(v, 1.2, 20.0, "distance_factor")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: Range) -> Range:
        return _check_range(v, 0.01, 100.0, "scale")


class RenderConfig(_Strict):
    """Render settings. ``profile`` fills in defaults for keys the config does not set
    (``pipeline/profiles.py``: ``cpu``, the default, and ``paper``, 1920×1080 at 30 fps on GPU)."""
    profile: Literal["cpu", "paper"] = "cpu"
    width: int = Field(320, ge=16, le=7680)
    height: int = Field(180, ge=16, le=4320)
    samples: int = Field(8, ge=1, le=65536)
    denoise: Literal["off", "fast", "high"] = "fast"
    fps: int = Field(30, ge=1, le=240)
    orbit_frames: int = Field(180, ge=2, le=100_000)   # frames of one full 360° orbit
    clip_seconds: float = Field(2.0, gt=0, le=600)
    device: Literal["cpu", "gpu"] = "cpu"
    threads: int = Field(0, ge=0, le=1024)             # 0 = all cores of the worker
    workers: int = Field(0, ge=0, le=100_000)          # parallel Blender processes; 0 = cores // threads
    persistent_data: bool = True
    marked: Literal["render", "composite"] = "render"
    retries: int = Field(2, ge=0, le=10)
    timeout_s: int = Field(3600, ge=10, le=7 * 24 * 3600)
    adaptive_threshold: float = Field(0.0, ge=0.0, le=1.0)  # Cycles adaptive sampling noise threshold; 0 = off
    kernel_cache_dir: Optional[Path] = None  # GPU kernel caches (CUDA/OptiX/Cycles) on a persistent volume

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
        if abs(self.clip_seconds * self.fps - self.clip_frames) > 1e-6:
            raise ValueError(f"clip_seconds * fps = {self.clip_seconds * self.fps} must be a whole number of frames")
        if self.clip_frames > self.orbit_frames:
            raise ValueError(f"a clip ({self.clip_frames} frames) is longer than the orbit ({self.orbit_frames} frames)")
        return self


class AnnotateConfig(_Strict):
    """Visibility: a frame shows the defect when >= max(min_visible_px, min_visible_frac * W * H)
    defect pixels are seen; runs shorter than ``min_len`` frames are dropped and gaps of at most
    ``min_gap`` frames merged."""
    min_visible_px: int = Field(4, ge=1)
    min_visible_frac: float = Field(0.0, ge=0.0, le=1.0)
    min_len: int = Field(2, ge=1)
    min_gap: int = Field(2, ge=0)
    # Diff test: a pixel counts when the marked frame is redder than the unmarked one by this much
    # (red chroma r - max(g, b), 0-255) *and* differs by at least ``diff_threshold`` in max channel.
    diff_threshold: int = Field(24, ge=1, le=255)
    red_chroma_threshold: int = Field(40, ge=0, le=255)
    diff_open_px: int = Field(1, ge=0, le=16)  # morphological opening radius for the diff mask


class QAConfig(_Strict):
    label_source: Literal["mask", "diff"] = "mask"
    test_fraction: float = Field(0.27, ge=0.0, le=1.0)
    crf: int = Field(20, ge=0, le=51)
    encode_preset: Literal["ultrafast", "veryfast", "fast", "medium", "slow"] = "veryfast"


class Config(_Strict):
    name: str
    seed: int = Field(0, ge=0, lt=2**63)
    num_shards: int = Field(1, ge=1, le=100_000)
    objects: ObjectsConfig
    scene: SceneConfig = SceneConfig()
    render: RenderConfig = RenderConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    qa: QAConfig = QAConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_id(v, "name")


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {key}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; raise :class:`ConfigError` naming the file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: <root>: expected a mapping of keys, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(path, e)) from None


def config_dict(cfg: Config) -> dict:
    """JSON-ready dict of the full resolved config (defaults filled in)."""
    return cfg.model_dump(mode="json")
