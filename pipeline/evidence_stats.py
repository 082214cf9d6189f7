"""Evidence strength of clips and datasets (standard library and :mod:`pipeline.ids` only: the
evaluator and the trainer's environment import it). Per-frame evidence is measured by :mod:`pipeline.evidence`."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from .ids import label_of

#: a clip whose in-view frames are evident less often than this is flagged as weak for review
WEAK_SHARE = 0.5
#: the label source (and clip interval key) of frames both in view and evident
LABEL_SOURCE = "in_view_and_evident"


def clip_evidence(ann: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    """A clip's evidence strength: its in-view frames (mask at the threshold), how many of them are
    evident, and their mean contrast (0 when none is in view)."""
    thr = ann["threshold_px"]
    ev = ann["evidence"]
    in_view = [i for i in range(start, end) if ann["mask"]["scores"][i] >= thr]
    evident = [i for i in in_view if ev["scores"][i] >= thr]
    contrast = sum(ev["contrast"][i] for i in in_view) / len(in_view) if in_view else 0.0
    return {"in_view_frames": len(in_view), "evident_frames": len(evident), "contrast": round(contrast, 3)}


def share(block: Optional[dict[str, Any]]) -> Optional[float]:
    """Evident share of a clip's in-view frames; ``None`` without evidence or with nothing in view."""
    if not block or not block["in_view_frames"]:
        return None
    return block["evident_frames"] / block["in_view_frames"]


def is_weak(block: Optional[dict[str, Any]], min_share: float = WEAK_SHARE) -> bool:
    """In view but mostly not evident: the clips a reviewer should look at first."""
    s = share(block)
    return s is not None and s < min_share


def _seconds(intervals: list[list[float]]) -> float:
    return sum(b - a for a, b in intervals)


def summarize(clips: Sequence[dict[str, Any]], defect_of: dict[str, Optional[str]]) -> dict[str, Any]:
    """Evidence over a dataset's clips (``clips.jsonl`` rows with evidence), per defect type and in
    total: in-view frames and the evident share of them, visible clip time by the mask and by
    ``in_view_and_evident`` (and the share of it without evidence), anomalous clips under each
    source, weak clips; plus every clip's evident share (for a histogram). ``defect_of`` maps
    job ids to their defect type (``None`` for a normal object)."""
    def empty() -> dict[str, Any]:
        return {"clips": 0, "in_view_frames": 0, "evident_frames": 0, "mask_s": 0.0, "evident_s": 0.0,
                "anomalous_mask": 0, "anomalous_evident": 0, "weak": 0}

    rows: dict[str, dict[str, Any]] = {}
    shares: list[float] = []
    for c in clips:
        ev = c.get("evidence")
        if ev is None:
            continue
        kind = label_of(defect_of.get(c["job_id"]))
        for key in (kind, "all"):
            r = rows.setdefault(key, empty())
            r["clips"] += 1
            r["in_view_frames"] += ev["in_view_frames"]
            r["evident_frames"] += ev["evident_frames"]
            r["mask_s"] += _seconds(c["intervals"]["mask"])
            r["evident_s"] += _seconds(c["intervals"].get(LABEL_SOURCE, []))
            r["anomalous_mask"] += bool(c["intervals"]["mask"])
            r["anomalous_evident"] += bool(c["intervals"].get(LABEL_SOURCE))
            r["weak"] += is_weak(ev)
        s = share(ev)
        if s is not None:
            shares.append(s)
    for r in rows.values():
        r["evident_share"] = round(r["evident_frames"] / r["in_view_frames"], 4) if r["in_view_frames"] else None
        r["time_without_evidence"] = round(1 - r["evident_s"] / r["mask_s"], 4) if r["mask_s"] else None
        r["mask_s"], r["evident_s"] = round(r["mask_s"], 2), round(r["evident_s"], 2)
    order = sorted(k for k in rows if k != "all") + (["all"] if "all" in rows else [])
    return {"by_defect": {k: rows[k] for k in order}, "clip_shares": shares}
