"""Reading the dataset's QA JSONL (docs/architecture.md, docs/formats.md) for training.

The trainer reads only ``<data>/qa/<protocol>/<split>.jsonl`` and the MP4 each line points at. Every
line is checked against the pipeline's own QA contract, :class:`pipeline.records.QARecord` (the
model ``mmviad qa`` validates before writing and ``mmviad eval`` validates before scoring), so the
trainer accepts exactly the lines the pipeline writes; a bad line raises
:class:`pipeline.records.RecordError` ``<file>:<line>: <field>: <problem>``. Needs pydantic, no torch,
so the rewards and the trace teacher can be tested without a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pipeline.grammar import format_intervals
from pipeline.layout import Layout
from pipeline.records import QARecord, RecordError
from pipeline.records import iter_records as iter_model_records


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

    def as_record(self) -> dict[str, Any]:
        """The QA-record fields the benchmark's scorer reads (:func:`pipeline.eval.metrics.score_response`)."""
        return {"q1": {"answer": self.q1}, "q2": {"answer": self.q2, "options": self.q2_options},
                "q3": {"answer": self.q3, "options": self.q3_options},
                "visible_intervals": self.intervals, "duration": self.duration}

    @property
    def q4(self) -> str:
        """The Q4 answer string in the project grammar."""
        return format_intervals(self.intervals)


def ground_truth(rec: dict[str, Any]) -> GroundTruth:
    """The reward/filter view of one validated QA record."""
    return GroundTruth(q1=rec["q1"]["answer"], q2=rec["q2"]["answer"], q3=rec["q3"]["answer"],
                       q2_options=dict(rec["q2"]["options"]), q3_options=dict(rec["q3"]["options"]),
                       intervals=[[round(float(a), 2), round(float(b), 2)] for a, b in rec["visible_intervals"]],
                       duration=float(rec["duration"]))


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The QA records of one JSONL file as the pipeline writes them (:meth:`QARecord.to_json`); the
    first bad line raises :class:`RecordError` naming ``path:line`` and the field."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: QA file not found (build the dataset with `make render` first)")
    for _, rec in iter_model_records(QARecord, path):
        yield rec.to_json()


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
            raise RecordError(f"{path}: record {i} ({rec['clip_id']}): video: {video} does not exist")
        rows.append(rec)
    return rows
