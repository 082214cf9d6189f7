"""Label Studio: the labeling config, tasks with pre-annotations (``predictions``), and reading a
full JSON export back into :class:`ClipReview` decisions.

Frame convention: ``timelinelabels`` ranges are clip frame
numbers, **1-based and inclusive**. Our half-open 0-based ``[s, e)`` becomes ``{"start": s + 1,
"end": e}`` and back. ``tests/test_label_studio_live.py`` confirms this on a running Label Studio
1.23.2: its frame counter shows frame ``k`` at video time ``(k - 1) / fps`` and its region editor
takes ``1..N`` for both ends.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from .model import ClipReview, ReviewError, ReviewTask, check_intervals

FROM_NAME = "visible"        # the TimelineLabels control
TO_NAME = "video"            # the marked video object
CHOICES_NAME = "review"      # the decision control
LABEL = "defect_visible"
#: Label Studio choice value → our decision
CHOICES: dict[str, str] = {"candidate_ok": "accepted", "corrected": "corrected",
                           "no_visible_defect": "no_visible_defect", "unsure": "unsure"}
CHOICE_HINTS: dict[str, str] = {"candidate_ok": "Candidate intervals are right",
                                "corrected": "I corrected the intervals",
                                "no_visible_defect": "No visible defect in this clip",
                                "unsure": "Unsure (not applied)"}


def label_config() -> str:
    """The labeling config: the marked clip with a timeline, visible spans, a decision, and the
    unmarked clip synced below it for comparison."""
    choices = "\n".join(f"      <Choice value={quoteattr(v)} hint={quoteattr(CHOICE_HINTS[v])}/>" for v in CHOICES)
    return f"""<View>
  <Header value="$clip_id"/>
  <Text name="info" value="$info"/>
  <Video name="{TO_NAME}" value="$video" frameRate="$fps" timelineHeight="120"/>
  <TimelineLabels name="{FROM_NAME}" toName="{TO_NAME}">
    <Label value="{LABEL}" background="#d62728"/>
  </TimelineLabels>
  <Choices name="{CHOICES_NAME}" toName="{TO_NAME}" choice="single" showInline="true" required="true">
{choices}
  </Choices>
  <Header value="Unmarked clip (what the benchmark shows)" size="6"/>
  <Video name="unmarked" value="$video_unmarked" frameRate="$fps" sync="{TO_NAME}" muted="true"/>
</View>
"""


def ranges(intervals: list[list[int]]) -> list[dict[str, int]]:
    """``[[s, e), ...]`` (0-based half-open) → ``[{"start": s + 1, "end": e}, ...]`` (1-based inclusive)."""
    return [{"start": int(s) + 1, "end": int(e)} for s, e in intervals]


def task(t: ReviewTask, model_version: str) -> dict[str, Any]:
    """One Label Studio task; each candidate interval is one prediction result item."""
    info = (f"{t.job_id} clip {t.clip_index}: {t.category}, defect {t.defect or 'none'}; "
            f"candidates from {t.candidate_source}, {t.num_frames} frames at {t.fps} fps")
    if t.evidence is not None:
        info += (f"; evidence in {t.evidence['evident_frames']} of {t.evidence['in_view_frames']} in-view frames"
                 + (" (WEAK: check the unmarked clip)" if t.weak_evidence else ""))
    result = [{"id": f"cand{k}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "timelinelabels",
               "value": {"ranges": [r], "timelinelabels": [LABEL]}}
              for k, r in enumerate(ranges(t.candidates))]
    return {
        "data": {"video": t.video_marked, "video_unmarked": t.video_unmarked, "fps": t.fps,
                 "clip_id": t.clip_id, "job_id": t.job_id, "num_frames": t.num_frames,
                 "start_frame": t.start_frame, "info": info, "candidate_source": t.candidate_source,
                 "diff_scores": t.scores["diff"], "mask_scores": t.scores["mask"],
                 **({"evidence_scores": t.scores["evidence"], "weak_evidence": t.weak_evidence,
                     "evident_frames": t.evidence["evident_frames"], "in_view_frames": t.evidence["in_view_frames"]}
                    if t.evidence is not None and "evidence" in t.scores else {})},
        "predictions": [{"model_version": model_version, "score": 1.0, "result": result}],
    }


def _who(ann: dict[str, Any]) -> str | None:
    c = ann.get("completed_by")
    if isinstance(c, dict):
        c = c.get("email") or c.get("username") or c.get("id")
    if isinstance(c, bool) or not isinstance(c, (int, str)) or c == "":
        return None
    return f"labelstudio:{c}"


def _pick(annotations: list[Any], where: str) -> dict[str, Any] | None:
    """The annotation that counts: not cancelled; a ground-truth one first, else the latest."""
    live = []
    for k, a in enumerate(annotations):
        if not isinstance(a, dict):
            raise ReviewError(f"{where}: annotations[{k}] is not an object")
        if not a.get("was_cancelled", False):
            live.append(a)
    if not live:
        return None
    return max(live, key=lambda a: (bool(a.get("ground_truth")), str(a.get("updated_at") or a.get("created_at") or ""),
                                    a.get("id") if isinstance(a.get("id"), int) else -1))


def parse_export(doc: Any, fname: str, num_frames_of: dict[str, int], default_by: str | None
                 ) -> tuple[list[ClipReview], list[str]]:
    """Read a Label Studio full JSON export. Returns the reviews and the clip ids of tasks without
    an annotation (skipped). Raises :class:`ReviewError` naming the task on anything malformed."""
    if not isinstance(doc, list):
        raise ReviewError(f"{fname}: a Label Studio JSON export is a list of tasks, got {type(doc).__name__}")
    reviews, skipped = [], []
    for i, t in enumerate(doc):
        tid = t.get("id", i) if isinstance(t, dict) else i
        where = f"{fname}: task {tid}"
        if not isinstance(t, dict) or not isinstance(t.get("data"), dict):
            raise ReviewError(f"{where}: a task must be an object with a 'data' object")
        cid = t["data"].get("clip_id")
        if not isinstance(cid, str):
            raise ReviewError(f"{where}: data.clip_id is missing")
        where = f"{fname}: task {tid} (clip {cid})"
        if cid not in num_frames_of:
            raise ReviewError(f"{where}: unknown clip id (not in clips.jsonl)")
        n = num_frames_of[cid]
        if "num_frames" in t["data"] and t["data"]["num_frames"] != n:
            raise ReviewError(f"{where}: data.num_frames {t['data']['num_frames']!r} != {n} frames of the clip")
        anns = t.get("annotations", [])
        if not isinstance(anns, list):
            raise ReviewError(f"{where}: 'annotations' must be a list")
        a = _pick(anns, where)
        if a is None:
            skipped.append(cid)
            continue
        res = a.get("result")
        if not isinstance(res, list):
            raise ReviewError(f"{where}: annotation result must be a list")
        pairs, choice = [], None
        for k, r in enumerate(res):
            if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
                raise ReviewError(f"{where}: result[{k}] must be an object with a 'value' object")
            if r.get("from_name") == FROM_NAME:
                rg = r["value"].get("ranges")
                if not isinstance(rg, list) or not rg:
                    raise ReviewError(f"{where}: result[{k}].value.ranges must be a non-empty list")
                for q in rg:
                    if not isinstance(q, dict) or "start" not in q or "end" not in q:
                        raise ReviewError(f"{where}: result[{k}] range needs 'start' and 'end'")
                    pairs.append((q["start"], q["end"]))
            elif r.get("from_name") == CHOICES_NAME:
                ch = r["value"].get("choices")
                if not isinstance(ch, list) or len(ch) != 1 or ch[0] not in CHOICES:
                    raise ReviewError(f"{where}: result[{k}] choice must be one of {', '.join(CHOICES)}")
                choice = ch[0]
        intervals = check_intervals(pairs, n, where, inclusive_one_based=True)
        if choice is None:
            if not intervals:
                raise ReviewError(f"{where}: no interval and no choice; pick 'no_visible_defect' to say so")
            choice = "corrected"
        decision = CHOICES[choice]
        if decision == "no_visible_defect" and intervals:
            raise ReviewError(f"{where}: 'no_visible_defect' chosen but {len(intervals)} interval(s) are marked")
        by = _who(a) or default_by
        if not by:
            raise ReviewError(f"{where}: annotation has no completed_by; pass --by NAME")
        at = a.get("updated_at") or a.get("created_at")
        if not isinstance(at, str) or not at:
            raise ReviewError(f"{where}: annotation has no created_at/updated_at time")
        reviews.append(ClipReview(clip_id=cid, decision=decision, intervals=intervals, by=by, at=at,
                                  source=f"labelstudio:{fname}#task={tid}"))
    return reviews, skipped
