"""Reading the dataset's QA JSONL (docs/architecture.md, docs/formats.md) with errors that name the file, line and field.

The trainer reads only ``<data>/qa/<protocol>/<split>.jsonl`` and the MP4 each line points at.
Stdlib only, so the rewards and the trace teacher can be tested without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pipeline.grammar import Q1_OPTIONS, format_intervals, parse_intervals
from pipeline.layout import Layout


class DatasetError(ValueError):
    """A QA line that does not follow the QA record contract (docs/formats.md)."""


_REQUIRED: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("clip_id", str), ("video", str), ("fps", (int, float)), ("num_frames", int),
    ("duration", (int, float)), ("category", str), ("group", str), ("visible_intervals", list),
    ("q1", dict), ("q2", dict), ("q3", dict), ("q4", dict),
)


@dataclass(frozen=True)
class GroundTruth:
    """What the rewards and the trace filter compare against (letters, options, seconds)."""
    q1: str
    q2: str
    q3: str
    q2_options: dict[str, str]
    q3_options: dict[str, str]
    intervals: list[list[float]]
    duration: float

    def to_json(self) -> str:
        """A JSON string: Arrow-safe as one dataset column (the GRPO ``solution`` column)."""
        return json.dumps({"q1": self.q1, "q2": self.q2, "q3": self.q3, "q2_options": self.q2_options,
                           "q3_options": self.q3_options, "intervals": self.intervals,
                           "duration": self.duration}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "GroundTruth":
        d = json.loads(text)
        return cls(q1=d["q1"], q2=d["q2"], q3=d["q3"], q2_options=d["q2_options"], q3_options=d["q3_options"],
                   intervals=[[float(a), float(b)] for a, b in d["intervals"]], duration=float(d["duration"]))

    @property
    def q4(self) -> str:
        """The Q4 answer string in the project grammar."""
        return format_intervals(self.intervals)


def _fail(where: str, field: str, why: str) -> DatasetError:
    return DatasetError(f"{where}: field {field!r}: {why}")


def validate_record(rec: Any, where: str) -> dict[str, Any]:
    """Check the fields the trainer uses; raise :class:`DatasetError` naming ``where`` and the field."""
    if not isinstance(rec, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    for key, typ in _REQUIRED:
        if key not in rec:
            raise _fail(where, key, "missing")
        if not isinstance(rec[key], typ) or isinstance(rec[key], bool):
            raise _fail(where, key, f"expected {getattr(typ, '__name__', typ)}, got {type(rec[key]).__name__}")
    if rec["q1"].get("options") != Q1_OPTIONS or rec["q1"].get("answer") not in Q1_OPTIONS:
        raise _fail(where, "q1", f"options must be {Q1_OPTIONS} and answer one of their letters")
    for q in ("q2", "q3"):
        opts = rec[q].get("options")
        if not isinstance(opts, dict) or not opts or not all(isinstance(v, str) for v in opts.values()):
            raise _fail(where, f"{q}.options", "expected a non-empty object of letter → text")
        if rec[q].get("answer") not in opts:
            raise _fail(where, f"{q}.answer", f"{rec[q].get('answer')!r} is not one of {sorted(opts)}")
    for i, iv in enumerate(rec["visible_intervals"]):
        if (not isinstance(iv, list) or len(iv) != 2 or not all(isinstance(x, (int, float)) for x in iv)
                or not 0 <= iv[0] <= iv[1]):
            raise _fail(where, f"visible_intervals[{i}]", f"expected [start, end] seconds, got {iv!r}")
    if not isinstance(rec["q4"].get("answer"), str) or parse_intervals(rec["q4"]["answer"]) is None:
        raise _fail(where, "q4.answer", f"unparseable interval list {rec['q4'].get('answer')!r}")
    if rec["duration"] <= 0 or rec["fps"] <= 0 or rec["num_frames"] <= 0:
        raise _fail(where, "duration/fps/num_frames", "must be positive")
    return rec


def ground_truth(rec: dict[str, Any]) -> GroundTruth:
    """The reward/filter view of one validated QA record."""
    return GroundTruth(q1=rec["q1"]["answer"], q2=rec["q2"]["answer"], q3=rec["q3"]["answer"],
                       q2_options=dict(rec["q2"]["options"]), q3_options=dict(rec["q3"]["options"]),
                       intervals=[[round(float(a), 2), round(float(b), 2)] for a, b in rec["visible_intervals"]],
                       duration=float(rec["duration"]))


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Validated QA records of one JSONL file; a bad line raises naming ``path:line`` and the field."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: QA file not found (build the dataset with `make render` first)")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{where}: not valid JSON ({e.msg})") from None
            yield validate_record(rec, where)


def qa_path(data: Path, split: str, protocol: str = "standard") -> Path:
    """``<data>/qa/<protocol>/<split>.jsonl`` (:meth:`pipeline.layout.Layout.qa_file`)."""
    return Layout(data).qa_file(protocol, split)


def load_split(data: Path, split: str, protocol: str = "standard") -> list[dict[str, Any]]:
    """All validated records of a split, each video path checked to exist."""
    rows = []
    path = qa_path(data, split, protocol)
    for i, rec in enumerate(iter_records(path), 1):
        video = Path(data) / rec["video"]
        if not video.exists():
            raise DatasetError(f"{path}: record {i} ({rec['clip_id']}): field 'video': {video} does not exist")
        rows.append(rec)
    return rows
