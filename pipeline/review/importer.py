"""``mmviad review import FILE``: a Label Studio JSON export or the HTML page's JSON → the
``reviewed`` block of each job's annotation file.

All-or-nothing: the whole file is parsed and validated first (unknown clip ids, out-of-range,
inverted or overlapping intervals, malformed structure → :class:`ReviewError` naming the task), the
new annotation contents are computed for every touched job, and only then written (each file
atomically). The ``reviewed`` block (read by :mod:`pipeline.clips`)::

    "reviewed": {
      "intervals": [[s, e), ...],   ORBIT frames, 0-based half-open: union over applied clip reviews
      "covered":   [[s, e), ...],   orbit frames of the clips whose review applies
      "by": ..., "at": ..., "source": ...,            the latest applied review of this job
      "clips": {"<clip_id>": {"decision", "intervals" (orbit frames), "by", "at", "source", "note"}}}

Decisions ``accepted``, ``corrected`` and ``no_visible_defect`` apply; ``rejected`` and ``unsure``
are recorded for follow-up but leave the clip on its automatic label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..intervals import normalize
from ..io import DataError, parse_json, read_text, write_json
from ..layout import Layout
from ..records import Annotation, parse, read_annotation, read_clips_jsonl, unique
from .html_page import is_page_json, parse_page_json
from .labelstudio import parse_export
from .model import APPLIED, ClipReview, ReviewError


def load_reviews(path: Path, clips: dict[str, dict[str, Any]], default_by: str | None
                 ) -> tuple[str, list[ClipReview], list[str]]:
    """Parse ``path`` as the HTML page's JSON or a Label Studio export → (kind, reviews, skipped)."""
    fname = Path(path).name
    try:
        doc = parse_json(read_text(path), fname)
    except FileNotFoundError:
        raise ReviewError(f"{path}: file not found") from None
    except DataError as e:
        raise ReviewError(str(e).replace(str(path), fname, 1)) from None
    n_of = {cid: c["num_frames"] for cid, c in clips.items()}
    if is_page_json(doc):
        reviews, kind, skipped = parse_page_json(doc, fname, n_of, default_by), "html", []
    elif isinstance(doc, list):
        (reviews, skipped), kind = parse_export(doc, fname, n_of, default_by), "labelstudio"
    else:
        raise ReviewError(f"{fname}: neither a Label Studio JSON export (a list of tasks) nor the review "
                          "page's JSON (format 'mmviad-review/1')")
    dup = unique((r.clip_id, r.source) for r in reviews)   # linear: one pass with a dict
    if dup:
        cid, first, second = dup
        raise ReviewError(f"{fname}: clip {cid}: reviewed by more than one task ({first.rsplit('#', 1)[-1]} "
                          f"and {second.rsplit('#', 1)[-1]})")
    return kind, reviews, skipped


def merged_reviewed(ann: dict[str, Any], reviews: list[ClipReview], clips: dict[str, dict[str, Any]]
                    ) -> dict[str, Any]:
    """The job's new ``reviewed`` block: earlier clip reviews kept, these ones replacing theirs."""
    prev = ann.get("reviewed") or {}
    per_clip = dict(prev.get("clips", {}))
    for r in reviews:
        s = int(clips[r.clip_id]["start_frame"])
        per_clip[r.clip_id] = {"decision": r.decision, "intervals": [[a + s, b + s] for a, b in r.intervals],
                               "by": r.by, "at": r.at, "source": r.source, "note": r.note}
    applied = {cid: v for cid, v in per_clip.items() if v["decision"] in APPLIED}
    covered = normalize((int(clips[c]["start_frame"]), int(clips[c]["end_frame"])) for c in applied if c in clips)
    intervals = normalize(tuple(x) for v in applied.values() for x in v["intervals"])
    latest = max(applied.values(), key=lambda v: (v["at"], v["source"]), default=None)
    return {"intervals": [list(x) for x in intervals], "covered": [list(x) for x in covered],
            "by": latest["by"] if latest else None, "at": latest["at"] if latest else None,
            "source": latest["source"] if latest else None, "clips": per_clip}


def import_reviews(path: Path, out: Path, default_by: str | None = None) -> dict[str, Any]:
    """Validate everything in ``path``, then store it; returns counts for the command's summary."""
    layout = Layout(out)
    clips_path = layout.clips_jsonl()
    if not clips_path.exists():
        raise ReviewError(f"{clips_path}: no clips index; run `mmviad clips` before importing reviews")
    clips = {c["clip_id"]: c for c in read_clips_jsonl(clips_path)}
    kind, reviews, skipped = load_reviews(path, clips, default_by)
    by_job: dict[str, list[ClipReview]] = {}
    for r in reviews:
        by_job.setdefault(clips[r.clip_id]["job_id"], []).append(r)
    updates = {}
    for jid, rs in sorted(by_job.items()):
        p = layout.annotation(jid)
        if not p.exists():
            raise ReviewError(f"{Path(path).name}: clip {rs[0].clip_id}: annotation file {p} is missing")
        ann = read_annotation(p, jid).to_json()
        ann["reviewed"] = merged_reviewed(ann, rs, clips)
        updates[p] = parse(Annotation, ann, f"{p} (after importing {Path(path).name})").to_json()
    for p, ann in updates.items():   # validated in full above: now write
        write_json(p, ann, indent=None)
    counts: dict[str, int] = {}
    for r in reviews:
        counts[r.decision] = counts.get(r.decision, 0) + 1
    return {"kind": kind, "reviews": len(reviews), "jobs": len(updates), "skipped": len(skipped),
            "decisions": dict(sorted(counts.items()))}
