"""The standalone HTML review page (no server): the template ``assets/review/review.html`` with the
tasks embedded as JSON, and reading the JSON the page downloads.

Safety: the data goes into a ``<script type="application/json">`` block with ``<``, ``>``, ``&``
and U+2028/2029 escaped as ``\\uXXXX``, so no text in it can close the block; the page's script puts
every string into the DOM with ``textContent`` / attributes, never ``innerHTML``.

The page's JSON (``format: "mmviad-review/1"``)::

    {"format": "mmviad-review/1", "reviewer": "alice", "saved_at": "2026-01-02T10:00:00Z",
     "dataset": "default",
     "clips": [{"clip_id": "...", "decision": "accepted" | "rejected", "num_frames": 60,
                "intervals": [[12, 40]],        (clip frames, 0-based, half-open)
                "candidates": [[10, 40]], "reviewed_at": "...", "note": "..."}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..paths import ASSETS
from .model import ClipReview, ReviewError, ReviewTask, check_intervals

TEMPLATE = ASSETS / "review" / "review.html"
FORMAT = "mmviad-review/1"
PLACEHOLDER = "/*__MMVIAD_DATA__*/"


def embed_json(obj: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    s = json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_page(tasks: list[ReviewTask], dataset: str, template: Path = TEMPLATE) -> str:
    """The page with ``tasks`` embedded; deterministic for equal inputs."""
    html = template.read_text(encoding="utf-8")
    if html.count(PLACEHOLDER) != 1:
        raise ValueError(f"{template}: expected exactly one {PLACEHOLDER} placeholder")
    data = {"format": FORMAT, "dataset": dataset, "tasks": [t.to_json() for t in tasks]}
    return html.replace(PLACEHOLDER, embed_json(data))


def is_page_json(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def parse_page_json(doc: Any, fname: str, num_frames_of: dict[str, int], default_by: str | None
                    ) -> list[ClipReview]:
    """Decisions from the page's downloaded JSON; raises :class:`ReviewError` naming the clip."""
    if not is_page_json(doc):
        raise ReviewError(f"{fname}: format: expected {FORMAT!r}")
    clips = doc.get("clips")
    if not isinstance(clips, list):
        raise ReviewError(f"{fname}: clips: expected a list")
    reviewer = doc.get("reviewer")
    by = reviewer.strip() if isinstance(reviewer, str) and reviewer.strip() else default_by
    if not by:
        raise ReviewError(f"{fname}: reviewer: empty (type a name in the page, or pass --by NAME)")
    saved = doc.get("saved_at")
    out, seen = [], set()
    for i, c in enumerate(clips):
        if not isinstance(c, dict) or not isinstance(c.get("clip_id"), str):
            raise ReviewError(f"{fname}: clips[{i}]: expected an object with a clip_id")
        cid = c["clip_id"]
        where = f"{fname}: clip {cid}"
        if cid not in num_frames_of:
            raise ReviewError(f"{where}: unknown clip id (not in clips.jsonl)")
        if cid in seen:
            raise ReviewError(f"{where}: appears twice")
        seen.add(cid)
        n = num_frames_of[cid]
        if c.get("num_frames", n) != n:
            raise ReviewError(f"{where}: num_frames {c.get('num_frames')!r} != {n} frames of the clip")
        decision = c.get("decision")
        if decision not in ("accepted", "rejected"):
            raise ReviewError(f"{where}: decision: expected 'accepted' or 'rejected', got {decision!r}")
        iv = c.get("intervals")
        if not isinstance(iv, list) or not all(isinstance(p, list) and len(p) == 2 for p in iv):
            raise ReviewError(f"{where}: intervals: expected a list of [start, end] pairs")
        intervals = check_intervals([tuple(p) for p in iv], n, where)
        cand = c.get("candidates")
        if decision == "accepted":
            if not intervals:
                decision = "no_visible_defect"
            elif isinstance(cand, list) and [list(p) for p in intervals] != cand:
                decision = "corrected"
        at = c.get("reviewed_at") or saved
        if not isinstance(at, str) or not at:
            raise ReviewError(f"{where}: reviewed_at: missing (and no saved_at)")
        note = c.get("note", "")
        out.append(ClipReview(clip_id=cid, decision=decision, intervals=intervals, by=by, at=at,
                              source=f"html:{fname}", note=note if isinstance(note, str) else ""))
    return out
