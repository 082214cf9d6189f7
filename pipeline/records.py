"""Typed, strictly validated records that flow between stages: one definition per record.

``docs/formats.md`` is the contract; each model's :meth:`Record.to_json` gives exactly the JSON
object the stages write (same keys, same number types, so the files keep their bytes).

- :class:`Annotation`: ``<out>/annotations/<job_id>.json`` (``format_version`` 2, with the
  optional ``reviewed`` block that ``mmviad review import`` adds).
- :class:`Clip`: one row of ``<out>/clips/<job_id>.clips.json`` and ``<out>/clips.jsonl``.
- :class:`QARecord`: one line of ``<out>/qa/<protocol>/<split>.jsonl``.
- :class:`Job`: one line of ``<out>/jobs.jsonl`` (its look blocks and source-specific keys are
  kept as written: only the fields the stages rely on are typed).

Validation is strict: no bool → int, no "8" → 8, no NaN/Infinity, no nulls where a value is
required, no unknown fields, and the cross-field rules (intervals inside the clip and in order,
answers that agree with the intervals, seconds derived from frames, ...). Problems come back as
``field: problem`` strings (:func:`problems_of`) or as one :class:`RecordError` line naming the
file (and line) first. Only pydantic and the standard library are needed (the trainer imports it).
File errors (bad bytes, broken JSON, nesting too deep) are :class:`pipeline.io.DataError` lines.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Iterable, Iterator, Literal, Optional, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .grammar import LETTERS, Q1_OPTIONS, format_intervals, parse_intervals
from .ids import DEFECT_TYPES, GOOD, InvalidIdError, clip_window, validate_id
from .io import DataError, parse_json, read_text

ANNOTATION_FORMAT = 2
SOURCES: tuple[str, ...] = ("mask", "diff", "in_view_and_evident", "reviewed")   # interval sources of a clip
Q2_CHOICES: tuple[str, ...] = (*DEFECT_TYPES, GOOD)
OBJECT_SOURCES: tuple[str, ...] = ("procedural", "anomaly_shapenet")   # a job's object.source
DECISIONS: tuple[str, ...] = ("accepted", "corrected", "no_visible_defect", "rejected", "unsure")


class RecordError(DataError):
    """A record that breaks the contract: one line, ``<where>: <field>: <problem>``."""


class _Problems(ValueError):
    """Cross-field problems of one record (raised inside a model validator)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# ---- field types ------------------------------------------------------------------------------

def _id(v: str) -> str:
    try:
        return validate_id(v, "id")
    except InvalidIdError as e:
        raise ValueError(str(e).replace("id ", "", 1)) from None


def _rel_path(v: str) -> str:
    p = PurePosixPath(v)
    if not v or p.is_absolute() or ".." in p.parts or "\\" in v or "\x00" in v:
        raise ValueError(f"{v!r} must be a relative path inside the dataset folder")
    return v


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


def _frame_pair(v: list[int]) -> list[int]:
    if not 0 <= v[0] < v[1]:
        raise ValueError(f"[{v[0]}, {v[1]}) must satisfy 0 <= start < end")
    return v


def _sec_pair(v: list[float]) -> list[float]:
    if not 0 <= v[0] < v[1]:
        raise ValueError(f"[{v[0]}, {v[1]}] must satisfy 0 <= start < end")
    return v


Id = Annotated[str, AfterValidator(_id)]
RelPath = Annotated[str, AfterValidator(_rel_path)]
PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Number = Annotated[Any, AfterValidator(_number)]   # int or float, kept as given (bytes unchanged)


def _param(v: Any) -> Any:
    return v if isinstance(v, str) else _number(v)


#: an annotation parameter: a finite number, or a mode name such as ``evidence: twin``
Param = Annotated[Any, AfterValidator(_param)]
#: ``[start, end)`` in frames, 0-based
FrameInterval = Annotated[list[NonNegInt], Field(min_length=2, max_length=2), AfterValidator(_frame_pair)]
#: ``[start, end]`` in seconds
SecInterval = Annotated[list[float], Field(min_length=2, max_length=2), AfterValidator(_sec_pair)]


def _ordered(intervals: list[list[Any]], where: str, limit: float | None, what: str) -> list[str]:
    """Problems with a list of intervals: out of order, overlapping, or past ``limit``."""
    out = []
    for k, (a, b) in enumerate(intervals):
        if k and a < intervals[k - 1][1]:
            out.append(f"{where}[{k}]: starts before the previous interval ends (sorted, disjoint intervals expected)")
        if limit is not None and b > limit + 1e-6:
            out.append(f"{where}[{k}]: ends at {b}, past the {what} ({limit})")
    return out


class Record(BaseModel):
    """Base of every record: strict types, no unknown fields, finite floats, immutable."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    #: fields left out of the JSON form when they are None (optional blocks, not nulls)
    _omit_if_none: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _consistent(self):
        found = self.problems()
        if found:
            raise _Problems(found)
        return self

    def problems(self) -> list[str]:
        """Cross-field problems (``field: problem``); empty when consistent."""
        return []

    def to_json(self) -> dict[str, Any]:
        """The JSON object as the stages write it (``json.dumps(..., sort_keys=True)`` gives the file)."""
        return _drop_none(self)


def _drop_none(m: BaseModel) -> dict[str, Any]:
    out = {}
    for name in type(m).model_fields:
        v = getattr(m, name)
        if v is None and name in getattr(m, "_omit_if_none", ()):
            continue
        out[name] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, Record):
        return v.to_json()
    if isinstance(v, BaseModel):
        return _drop_none(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# ---- annotation ----------------------------------------------------------------------------------

class Track(Record):
    """Per-frame defect pixel counts of one source and the visible intervals derived from them."""
    scores: list[NonNegInt]
    intervals: list[FrameInterval]


class Pixels(Record):
    both: NonNegInt
    diff: NonNegInt
    mask: NonNegInt
    precision: float = Field(ge=0.0, le=1.0)
    recall: float = Field(ge=0.0, le=1.0)


class Agreement(Record):
    """How far the diff's intervals are from the mask's (see ``pipeline/annotate.py``)."""
    iou: float = Field(ge=0.0, le=1.0)
    clip_iou: list[Annotated[float, Field(ge=0.0, le=1.0)]]
    disagree_spans: list[FrameInterval]
    missed_spans: list[FrameInterval]
    spurious_spans: list[FrameInterval]
    pixels: Pixels


class Evidence(Record):
    """Per-frame evidence against the defect-free twin (``pipeline/evidence.py``) and the
    ``in_view_and_evident`` intervals."""
    scores: list[NonNegInt]
    contrast: list[Annotated[float, Field(ge=0.0)]]
    floor: list[Annotated[float, Field(ge=0.0)]]
    intervals: list[FrameInterval]


class ClipEvidence(Record):
    """A clip's evidence strength: frames with the defect in view, how many of them are evident,
    and their mean contrast in 8-bit levels."""
    in_view_frames: NonNegInt
    evident_frames: NonNegInt
    contrast: float = Field(ge=0.0)

    def problems(self) -> list[str]:
        if self.evident_frames > self.in_view_frames:
            return [f"evident_frames: {self.evident_frames} is more than in_view_frames ({self.in_view_frames})"]
        return []


class ClipReviewEntry(Record):
    """One clip's review inside ``reviewed.clips``; ``intervals`` are ORBIT frames."""
    decision: Literal[DECISIONS]
    intervals: list[FrameInterval]
    by: str = Field(min_length=1)
    at: str = Field(min_length=1)
    source: str = Field(min_length=1)
    note: str = ""

    def problems(self) -> list[str]:
        out = _ordered(self.intervals, "intervals", None, "")
        if self.decision == "no_visible_defect" and self.intervals:
            out.append("intervals: 'no_visible_defect' with intervals")
        return out


class Reviewed(Record):
    """The ``reviewed`` block: the union of applied clip reviews (orbit frames), the frames those
    clips cover, the latest applied review's who/when/source (null when none applies), per clip."""
    _omit_if_none: ClassVar[tuple[str, ...]] = ("covered",)
    intervals: list[FrameInterval]
    covered: Optional[list[FrameInterval]] = None    # absent: the review covers the whole orbit
    by: Optional[str]
    at: Optional[str]
    source: Optional[str]
    clips: dict[Id, ClipReviewEntry] = Field(default_factory=dict)

    def problems(self) -> list[str]:
        return (_ordered(self.intervals, "intervals", None, "")
                + _ordered(self.covered or [], "covered", None, ""))


class Annotation(Record):
    """``<out>/annotations/<job_id>.json``: visibility of the defect per orbit frame."""
    _omit_if_none: ClassVar[tuple[str, ...]] = ("reviewed", "evidence")
    format_version: Literal[2]
    job_id: Id
    fps: PosInt
    num_frames: PosInt
    clip_frames: PosInt
    width: PosInt
    height: PosInt
    threshold_px: float = Field(gt=0.0)
    params: dict[str, Param]
    mask: Track
    diff: Track
    agreement: Agreement
    evidence: Optional[Evidence] = None      # with annotate.evidence: twin
    reviewed: Optional[Reviewed] = None

    def problems(self) -> list[str]:
        n, out = self.num_frames, []
        if self.clip_frames > n:
            out.append(f"clip_frames: {self.clip_frames} is longer than the orbit ({n} frames)")
        for src in ("mask", "diff"):
            t: Track = getattr(self, src)
            if len(t.scores) != n:
                out.append(f"{src}.scores: {len(t.scores)} values for {n} frames")
            out += _ordered(t.intervals, f"{src}.intervals", n, "orbit's last frame")
        if self.evidence is not None:
            ev = self.evidence
            for k in ("scores", "contrast", "floor"):
                if len(getattr(ev, k)) != n:
                    out.append(f"evidence.{k}: {len(getattr(ev, k))} values for {n} frames")
            out += _ordered(ev.intervals, "evidence.intervals", n, "orbit's last frame")
        for k in ("disagree_spans", "missed_spans", "spurious_spans"):
            out += _ordered(getattr(self.agreement, k), f"agreement.{k}", n, "orbit's last frame")
        if len(self.agreement.clip_iou) != n // self.clip_frames:
            out.append(f"agreement.clip_iou: {len(self.agreement.clip_iou)} values for {n // self.clip_frames} clips")
        if self.reviewed is not None:
            r = self.reviewed
            out += [p for p in _ordered(r.intervals, "reviewed.intervals", n, "orbit's last frame") if "past" in p]
            out += [p for p in _ordered(r.covered or [], "reviewed.covered", n, "orbit's last frame") if "past" in p]
            for cid, c in r.clips.items():
                if not cid.startswith(f"{self.job_id}-c"):
                    out.append(f"reviewed.clips.{cid}: not a clip of job {self.job_id}")
                out += [p for p in _ordered(c.intervals, f"reviewed.clips.{cid}.intervals", n, "orbit's last frame")
                        if "past" in p]
        return out


# ---- clip ----------------------------------------------------------------------------------------

class _ClipFields(Record):
    """The fields a clip record and its QA line share (same names, same meaning)."""
    _omit_if_none: ClassVar[tuple[str, ...]] = ("evidence",)
    clip_id: Id
    job_id: Id
    clip_index: NonNegInt
    video: RelPath
    video_marked: RelPath
    fps: PosInt
    num_frames: PosInt
    duration: float = Field(gt=0.0)
    evidence: Optional[ClipEvidence] = None   # with annotate.evidence: twin (an extra, optional field)


class Clip(_ClipFields):
    """One clip of an orbit: its videos, frame window and visible intervals per source
    (``intervals_frames`` in clip frames, ``intervals`` the same in seconds)."""
    start_frame: NonNegInt
    end_frame: PosInt
    azimuth_deg: Annotated[list[float], Field(min_length=2, max_length=2)]
    intervals_frames: dict[Literal[SOURCES], list[FrameInterval]]
    intervals: dict[Literal[SOURCES], list[SecInterval]]

    def problems(self) -> list[str]:
        out = []
        if self.clip_id != f"{self.job_id}-c{self.clip_index}":
            out.append(f"clip_id: {self.clip_id!r} is not <job_id>-c<clip_index> ({self.job_id}-c{self.clip_index})")
        for k, suffix in (("video", ".mp4"), ("video_marked", ".marked.mp4")):
            if getattr(self, k) != f"clips/{self.clip_id}{suffix}":
                out.append(f"{k}: {getattr(self, k)!r} is not clips/{self.clip_id}{suffix}")
        if self.evidence is not None and self.evidence.in_view_frames > self.num_frames:
            out.append(f"evidence.in_view_frames: {self.evidence.in_view_frames} is more than num_frames")
        if self.end_frame - self.start_frame != self.num_frames:
            out.append(f"end_frame: [{self.start_frame}, {self.end_frame}) does not hold num_frames ({self.num_frames})")
        start = clip_window(self.clip_index, self.num_frames)[0]
        if self.start_frame != start:
            out.append(f"start_frame: {self.start_frame} is not clip_index × num_frames ({start})")
        if abs(self.duration - round(self.num_frames / self.fps, 6)) > 1e-9:
            out.append(f"duration: {self.duration} is not num_frames / fps ({round(self.num_frames / self.fps, 6)})")
        for k in ("mask", "diff"):
            if k not in self.intervals_frames:
                out.append(f"intervals_frames.{k}: missing")
        if set(self.intervals) != set(self.intervals_frames):
            out.append(f"intervals: sources {sorted(self.intervals)} differ from intervals_frames "
                       f"{sorted(self.intervals_frames)}")
        for k, iv in self.intervals_frames.items():
            out += _ordered(iv, f"intervals_frames.{k}", self.num_frames, "clip's last frame")
            secs = [[round(a / self.fps, 2), round(b / self.fps, 2)] for a, b in iv]
            if k in self.intervals and self.intervals[k] != secs:
                out.append(f"intervals.{k}: {self.intervals[k]} is not intervals_frames.{k} in seconds ({secs})")
        return out


# ---- QA record ---------------------------------------------------------------------------------

class Question(Record):
    question: str = Field(min_length=1)
    options: dict[str, str]
    answer: str


class IntervalQuestion(Record):
    question: str = Field(min_length=1)
    answer: str


def _letters(options: dict[str, str], n: int | None, where: str) -> list[str]:
    keys = list(options)
    want = list(LETTERS[:len(keys)])
    out = []
    if n is not None and len(keys) != n:
        out.append(f"{where}.options: {len(keys)} options, expected {n}")
    if sorted(keys) != want:
        out.append(f"{where}.options: letters {keys} are not {want}")
    return out


class QARecord(_ClipFields):
    """One QA line: four aligned questions about one clip (docs/formats.md)."""
    category: Id
    group: str = Field(min_length=1)
    defect: Literal[Q2_CHOICES]
    visible_intervals: list[SecInterval]
    provenance: Literal[SOURCES]
    split: Literal["train", "test"]
    material: str
    environment: str
    q1: Question
    q2: Question
    q3: Question
    q4: IntervalQuestion

    def problems(self) -> list[str]:
        out = []
        if self.clip_id != f"{self.job_id}-c{self.clip_index}":
            out.append(f"clip_id: {self.clip_id!r} is not <job_id>-c<clip_index> ({self.job_id}-c{self.clip_index})")
        if abs(self.duration - round(self.num_frames / self.fps, 6)) > 1e-9:
            out.append(f"duration: {self.duration} is not num_frames / fps ({round(self.num_frames / self.fps, 6)})")
        vis = self.visible_intervals
        out += _ordered(vis, "visible_intervals", self.duration, "clip's duration")
        has = bool(vis)
        if self.q1.options != Q1_OPTIONS:
            out.append(f"q1.options: must be {Q1_OPTIONS}")
        if self.q1.answer != ("A" if has else "B"):
            out.append(f"q1.answer: {self.q1.answer!r} contradicts visible_intervals (expected {'A' if has else 'B'})")
        out += _letters(self.q2.options, len(Q2_CHOICES), "q2")
        if sorted(self.q2.options.values()) != sorted(Q2_CHOICES):
            out.append(f"q2.options: must be the six defect types and good, got {sorted(self.q2.options.values())}")
        want = self.defect if has else GOOD
        if self.q2.options.get(self.q2.answer) != want:
            out.append(f"q2.answer: {self.q2.answer!r} contradicts the label policy (expected the letter of {want!r})")
        out += _letters(self.q3.options, 4, "q3")
        if len(set(self.q3.options.values())) != len(self.q3.options):
            out.append("q3.options: repeated option")
        if self.q3.options.get(self.q3.answer) != self.group:
            out.append(f"q3.answer: {self.q3.answer!r} is not the letter of the true group {self.group!r}")
        parsed = parse_intervals(self.q4.answer)
        if parsed is None or [[round(a, 2), round(b, 2)] for a, b in vis] != parsed:
            out.append(f"q4.answer: {self.q4.answer!r} does not match visible_intervals ({format_intervals(vis)})")
        return out


# ---- job -----------------------------------------------------------------------------------------

def _object(v: Any) -> Any:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object, got {type(v).__name__}")
    return v


def _object_or_none(v: Any) -> Any:
    return v if v is None else _object(v)


def _positive(v: Any) -> Any:
    _number(v)
    if v <= 0.0:
        raise ValueError(f"must be > 0.0, got {v!r}")
    return v


def _defect(v: Any) -> Any:
    if v is not None and v not in DEFECT_TYPES:
        raise ValueError(f"{v!r} is not null or one of {', '.join(DEFECT_TYPES)}")
    return v


def _count(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected a non-negative integer, got {v!r}")
    return v


def _source(v: Any) -> Any:
    if v not in OBJECT_SOURCES:
        raise ValueError(f"{v!r} is not {' or '.join(OBJECT_SOURCES)}")
    return v


def _non_empty(v: Any) -> Any:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v


#: a JSON object block whose keys the stage that reads it checks (looks, free-form parts)
JsonObject = Annotated[Any, AfterValidator(_object)]
Positive = Annotated[Any, AfterValidator(_positive)]   # a finite number > 0, kept as given
Count = Annotated[Any, AfterValidator(_count)]         # an integer >= 0 (not a bool)


class _Open(Record):
    """A job block: the named fields are checked, any other key is kept as it is (the planner adds
    look- and source-specific keys that later stages read by name)."""
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)

    def to_json(self) -> dict[str, Any]:
        return {**_drop_none(self), **{k: _plain(v) for k, v in (self.model_extra or {}).items()}}


def _block(model: type) -> Any:
    """A nested job block that must be a JSON object (same wording as any other object field)."""
    return Annotated[model, BeforeValidator(_object)]


class JobObject(_Open):
    """``object``: where the mesh comes from and the resolved defect (``null`` for a normal object)."""
    source: Annotated[Any, AfterValidator(_source)]
    defect_params: Annotated[Any, AfterValidator(_object_or_none)] = None


class JobPose(_Open):
    """``pose``: yaw, tilt and scale of the object (``pipeline/scenery/pose.py``)."""
    yaw_deg: Number
    scale: Positive


class JobCamera(_Open):
    """``camera``: the orbit's choices (``pipeline/scenery/orbit.py``); ``jitter``, ``center_y`` and
    ``fstop`` are kept as written."""
    elevation_deg: Number
    distance_factor: Positive
    start_azimuth_deg: Number
    lens_mm: Positive


class JobSeeds(_Open):
    """``seeds``: ``cycles`` (Cycles' seed) and ``qa`` (option shuffling)."""
    cycles: Count


class Job(_Open):
    """One line of ``<out>/jobs.jsonl``: every random choice of one orbit, resolved by ``mmviad plan``.

    The stages pass jobs around as the plain dicts of :meth:`to_json`; this model is their contract
    (``pipeline.plan.check_job``). ``visibility`` is the planner's prediction (absent when
    ``scene.visibility.predict`` is off); other unknown keys are kept, as before."""
    _omit_if_none: ClassVar[tuple[str, ...]] = ("visibility",)
    job_id: Id
    shard: Count
    category: Id
    group: Annotated[Any, AfterValidator(_non_empty)]
    object_index: Count
    defect: Annotated[Any, AfterValidator(_defect)]
    trajectory: Count
    object: _block(JobObject)
    pose: _block(JobPose)
    camera: _block(JobCamera)
    material: JsonObject
    environment: JsonObject
    floor: JsonObject
    seeds: _block(JobSeeds)
    visibility: Annotated[Any, AfterValidator(_object_or_none)] = None

    def problems(self) -> list[str]:
        dp = self.object.defect_params
        if dp is not None and dp.get("kind") != self.defect:
            return [f"object.defect_params: kind {dp.get('kind')!r} does not match defect {self.defect!r}"]
        return []


# ---- turning errors into lines --------------------------------------------------------------------

def _loc(loc: tuple[Any, ...]) -> str:
    s = ""
    for part in loc:
        if isinstance(part, int):
            s += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part in ("function-after", "list", "dict")):
            continue   # pydantic's internal step names (validators, unions), not fields
        else:
            s += ("." if s else "") + str(part)
    return s or "<record>"


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def problems_of(err: ValidationError) -> list[str]:
    """``field: problem`` lines of a validation error (cross-field problems included)."""
    out = []
    for e in err.errors(include_url=False):
        where, typ, msg = _loc(e["loc"]), e["type"], e["msg"]
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):   # a nested record's cross-field problems: prefix its place
            prefix = "" if where == "<record>" else where + "."
            out += [prefix + p for p in cause.problems]
            continue
        if typ == "value_error":
            msg = str(cause) if cause is not None else msg.removeprefix("Value error, ")
        elif typ == "missing":
            msg = "missing"
        elif typ == "extra_forbidden":
            msg = "unknown field"
        elif typ.endswith("_type") or typ in ("finite_number", "literal_error"):
            msg = f"{msg[0].lower()}{msg[1:]}, got {_short(e['input'])}"
        out.append(f"{where}: {msg}")
    return [p.replace("\n", "\\n") for p in out]


R = TypeVar("R", bound=Record)


def check(model: type[R], data: Any) -> tuple[Optional[R], list[str]]:
    """``(record, [])`` when ``data`` is a valid ``model``, else ``(None, problems)``; never raises."""
    if not isinstance(data, dict):
        return None, [f"<record>: expected a JSON object, got {type(data).__name__}"]
    try:
        return model.model_validate(data), []
    except ValidationError as e:
        return None, problems_of(e) or ["<record>: invalid"]
    except RecursionError:
        return None, ["<record>: nested too deeply"]


def parse(model: type[R], data: Any, where: str) -> R:
    """The validated record, or :class:`RecordError` ``<where>: <field>: <problem>`` (one line)."""
    rec, found = check(model, data)
    if rec is None:
        more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        raise RecordError(f"{where}: {found[0]}{more}")
    return rec


# ---- files -----------------------------------------------------------------------------------------

def read_annotation(path: str | Path, job_id: str | None = None) -> Annotation:
    """``<out>/annotations/<job_id>.json``, validated (its ``job_id`` must match ``job_id`` when given)."""
    ann = parse(Annotation, parse_json(read_text(path), str(path)), str(path))
    if job_id is not None and ann.job_id != job_id:
        raise RecordError(f"{path}: job_id: {ann.job_id!r} is not the file's job {job_id!r}")
    return ann


def read_clip_index(path: str | Path, job_id: str | None = None) -> list[Clip]:
    """``<out>/clips/<job_id>.clips.json``: the job's clips in order, validated."""
    doc = parse_json(read_text(path), str(path))
    if not isinstance(doc, list):
        raise RecordError(f"{path}: <root>: expected a list of clips, got {type(doc).__name__}")
    clips = [parse(Clip, c, f"{path}: clip {i}") for i, c in enumerate(doc)]
    for i, c in enumerate(clips):
        if job_id is not None and c.job_id != job_id:
            raise RecordError(f"{path}: clip {i}: job_id: {c.job_id!r} is not the file's job {job_id!r}")
        if c.clip_index != i:
            raise RecordError(f"{path}: clip {i}: clip_index: {c.clip_index} out of order (expected {i})")
    return clips


def iter_records(model: type[R], path: str | Path) -> Iterator[tuple[int, R]]:
    """``(line number, record)`` of a JSONL file of ``model`` records; the first bad line raises
    :class:`RecordError` ``<path>:<line>: <field>: <problem>``."""
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if line.strip():
            where = f"{path}:{lineno}"
            yield lineno, parse(model, parse_json(line, where), where)


def unique(items: Iterable[tuple[str, str]]) -> Optional[tuple[str, str, str]]:
    """The first repeated key of ``(key, where)`` pairs as ``(key, first where, second where)``; linear."""
    seen: dict[str, str] = {}
    for key, where in items:
        if key in seen:
            return key, seen[key], where
        seen[key] = where
    return None


def read_clips_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The validated rows of ``<out>/clips.jsonl`` (a bad line raises naming the file, line and field;
    a repeated clip id names both lines). Kept here, beside :class:`Clip`, so that the review stage
    reads the clip list without importing the clips stage."""
    rows = [(n, c.to_json()) for n, c in iter_records(Clip, path)]
    dup = unique((c["clip_id"], str(n)) for n, c in rows)
    if dup:
        raise RecordError(f"{path}:{dup[2]}: clip_id: {dup[0]!r} also on line {dup[1]}")
    return [c for _, c in rows]
