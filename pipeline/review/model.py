"""Shared pieces of the review loop: the error type, one clip's review decision, the review task
built from a clip record and its annotation, and interval checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from .. import evidence_stats
from ..intervals import clip_local
from ..records import DECISIONS

Decision = Literal[DECISIONS]
APPLIED: tuple[str, ...] = ("accepted", "corrected", "no_visible_defect")  # these set reviewed intervals
CANDIDATE_SOURCES: tuple[str, ...] = ("diff", "mask")


class ReviewError(ValueError):
    """A review file that cannot be imported; the message names the file and the task or field."""


@dataclass(frozen=True)
class ClipReview:
    """One reviewer's decision on one clip. ``intervals`` are clip frames, 0-based, half-open."""
    clip_id: str
    decision: str
    intervals: tuple[tuple[int, int], ...]
    by: str
    at: str
    source: str
    note: str = ""


@dataclass
class ReviewTask:
    """What an annotator sees for one clip (JSON-ready via :meth:`to_json`)."""
    clip_id: str
    job_id: str
    clip_index: int
    fps: int
    num_frames: int
    start_frame: int
    video_marked: str
    video_unmarked: str
    category: str
    defect: str | None
    candidate_source: str
    candidates: list[list[int]]
    reference: list[list[int]]
    scores: dict[str, list[int]]
    threshold_px: float
    reviewed: list[list[int]] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: with evidence: the clip's strength (``pipeline.evidence_stats.clip_evidence``) and whether the mask
    #: says visible while the unmarked video mostly shows nothing (reviewed first)
    evidence: dict[str, Any] | None = None
    weak_evidence: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_task(clip: dict[str, Any], ann: dict[str, Any], job: dict[str, Any], candidate_source: str,
               video_marked: str, video_unmarked: str) -> ReviewTask:
    """A review task for one clip: candidates from ``candidate_source``, the other source as the
    reference, per-frame scores of both (and of the evidence when measured), and the reviewer's
    earlier intervals if any."""
    s, e = int(clip["start_frame"]), int(clip["end_frame"])
    other = "mask" if candidate_source == "diff" else "diff"

    def local(key: str) -> list[list[int]]:
        return [list(x) for x in clip_local([tuple(v) for v in ann[key]["intervals"]], s, e)]

    reviewed = None
    rev_clip = (ann.get("reviewed") or {}).get("clips", {}).get(clip["clip_id"])
    if rev_clip is not None and rev_clip.get("decision") in APPLIED:
        reviewed = [list(x) for x in clip_local([tuple(v) for v in rev_clip["intervals"]], s, e)]
    return ReviewTask(
        clip_id=clip["clip_id"], job_id=clip["job_id"], clip_index=int(clip["clip_index"]),
        fps=int(clip["fps"]), num_frames=int(clip["num_frames"]), start_frame=s,
        video_marked=video_marked, video_unmarked=video_unmarked,
        category=str(job.get("category", "")), defect=job.get("defect"),
        candidate_source=candidate_source, candidates=local(candidate_source), reference=local(other),
        scores={k: [int(x) for x in ann[k]["scores"][s:e]] for k in ("diff", "mask", "evidence") if k in ann},
        threshold_px=float(ann["threshold_px"]), reviewed=reviewed,
        labels={"material": str(job.get("material", {}).get("name", "")),
                "environment": str(job.get("environment", {}).get("kind", ""))},
        evidence=clip.get("evidence"), weak_evidence=evidence_stats.is_weak(clip.get("evidence")),
    )


def _as_int(v: Any, where: str) -> int:
    """A frame number: an int, or a float with a whole value (Label Studio may write ``4.0``)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)) \
            or int(v) != v:
        raise ReviewError(f"{where}: expected a whole frame number, got {v!r}")
    return int(v)


def check_intervals(pairs: Sequence[tuple[Any, Any]], num_frames: int, where: str,
                    inclusive_one_based: bool = False) -> tuple[tuple[int, int], ...]:
    """Validate clip-local intervals and return them 0-based half-open, sorted, touching ones merged.

    ``inclusive_one_based``: the pairs are Label Studio ranges (``1 <= start <= end <= n``);
    otherwise ``0 <= start < end <= n``. Inverted, out-of-range and overlapping intervals raise
    :class:`ReviewError` naming ``where``."""
    out: list[tuple[int, int]] = []
    for k, (a, b) in enumerate(pairs):
        a, b = _as_int(a, f"{where}: interval {k} start"), _as_int(b, f"{where}: interval {k} end")
        if inclusive_one_based:
            if a > b:
                raise ReviewError(f"{where}: interval {k} is inverted (start {a} > end {b})")
            if a < 1 or b > num_frames:
                raise ReviewError(f"{where}: interval {k} [{a}, {b}] is outside frames 1..{num_frames}")
            a -= 1
        else:
            if a >= b:
                raise ReviewError(f"{where}: interval {k} is inverted or empty ([{a}, {b}) needs start < end)")
            if a < 0 or b > num_frames:
                raise ReviewError(f"{where}: interval {k} [{a}, {b}) is outside frames [0, {num_frames})")
        out.append((a, b))
    out.sort()
    merged: list[list[int]] = []
    for a, b in out:
        if merged and a < merged[-1][1]:
            raise ReviewError(f"{where}: intervals overlap ([{merged[-1][0]}, {merged[-1][1]}) and [{a}, {b}),"
                              " 0-based half-open)")
        if merged and a == merged[-1][1]:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return tuple((a, b) for a, b in merged)
