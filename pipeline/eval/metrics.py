"""Metrics (docs/architecture.md), as the MMVIAD paper reports them plus the views that keep them honest.

Per clip (:func:`score_record`, after :func:`score_response` parsed the answer): Q1/Q2/Q3 right or wrong; Q2 *gated* (right only when Q1 is right
too, the paper's semantic gate); Q4 union-IoU of the predicted intervals, clipped to ``[0,
duration]``, against the true ones (1 when both are empty, 0 when exactly one is; a non-empty answer
that lies wholly outside the clip, or has zero length, is not an empty answer and scores 0).

Over clips (:func:`aggregate`), every score in percent: Q1 accuracy and balanced accuracy (mean of
the defective and the normal clips' accuracies, MMAD), Q2 accuracy over all clips and gated, Q3
accuracy, Q4 mIoU over all clips and over clips with a visible defect, R@IoU≥{0.3, 0.5, 0.7} over
all clips and over clips with a visible defect (empty-vs-empty scores IoU 1 and so inflates the
all-clips recall on normal clips), miss and hallucination rates, and **Avg = (Q1 Acc + Q2 Acc +
Q3 Acc + Q4 mIoU) / 4**, the plain mean of the four task scores (``avg_gated`` uses gated Q2).
An unparseable or ambiguous answer scores 0 for its task; how every answer was read is counted in
``parsing`` (:func:`parse_stats`).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from ..evidence_stats import is_weak
from ..grammar import SOURCES, TASKS, ParsedAnswer, parse_response
from ..ids import label_of
from ..intervals import union_iou

THRESHOLDS = (0.3, 0.5, 0.7)
BREAKDOWNS = ("category", "group", "defect", "environment", "material")
TASK_KEYS = ("q1_acc", "q2_acc", "q3_acc", "q4_miou")


def clip_intervals(pred: Sequence[Sequence[float]], duration: float) -> list[list[float]]:
    """Predicted intervals intersected with ``[0, duration]``; pieces of zero length are dropped."""
    out = []
    for a, b in pred:
        lo, hi = max(0.0, float(a)), min(float(duration), float(b))
        if hi > lo:
            out.append([lo, hi])
    return out


def q4_iou(pred: Optional[Sequence[Sequence[float]]], true: Sequence[Sequence[float]], duration: float) -> float:
    """Union-IoU of the clipped prediction and the truth; 0 for an unparseable answer or a
    non-empty answer with nothing inside the clip."""
    if pred is None:
        return 0.0
    clipped = clip_intervals(pred, duration)
    if pred and not clipped:
        return 0.0
    return union_iou(clipped, true)


def score_record(rec: dict[str, Any], parsed: ParsedAnswer) -> dict[str, Any]:
    """Per-clip scores of one parsed answer against one QA record."""
    true4 = rec["visible_intervals"]
    q1 = parsed.q1 == rec["q1"]["answer"]
    q2 = parsed.q2 == rec["q2"]["answer"]
    return {
        "q1": q1, "q2": q2, "q2_gated": q1 and q2, "q3": parsed.q3 == rec["q3"]["answer"],
        "iou": q4_iou(parsed.q4, true4, float(rec["duration"])),
        "positive": bool(true4), "pred_empty": None if parsed.q4 is None else not parsed.q4,
        "unparseable": [q for q in TASKS if getattr(parsed, q) is None],
        "ambiguous": list(parsed.ambiguous), "by_text": list(parsed.by_text), "how": dict(parsed.how),
    }


def score_response(rec: dict[str, Any], response: str) -> tuple[ParsedAnswer, dict[str, Any]]:
    """Parse one raw response against one QA record (its options and duration) and score it: the
    one parse-and-score step of the benchmark, which the evaluator, the lmms-eval task and the
    trainer's GRPO rewards all call, so a reward and the metric cannot read an answer differently."""
    parsed = parse_response(response, rec["q2"]["options"], rec["q3"]["options"], duration=rec["duration"])
    return parsed, score_record(rec, parsed)


def _pct(num: float, den: int) -> Optional[float]:
    return round(100.0 * num / den, 2) if den else None


def _mean4(vals: Sequence[Optional[float]]) -> Optional[float]:
    return round(sum(vals) / 4, 2) if all(v is not None for v in vals) else None  # type: ignore[misc]


def aggregate(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary metrics over per-clip scores from :func:`score_record` (percent; ``None`` if undefined)."""
    n = len(scores)
    pos = [s for s in scores if s["positive"]]
    neg = [s for s in scores if not s["positive"]]
    accs = [a for a in (_pct(sum(s["q1"] for s in pos), len(pos)), _pct(sum(s["q1"] for s in neg), len(neg)))
            if a is not None]
    out: dict[str, Any] = {
        "n": n, "n_defective": len(pos), "n_normal": len(neg),
        "q1_acc": _pct(sum(s["q1"] for s in scores), n),
        # MMAD: (normal_acc + anomaly_acc) / 2; over the classes present when one is absent.
        "q1_bacc": round(sum(accs) / len(accs), 2) if accs else None,
        "q2_acc": _pct(sum(s["q2"] for s in scores), n),
        "q2_gated_acc": _pct(sum(s["q2_gated"] for s in scores), n),
        "q3_acc": _pct(sum(s["q3"] for s in scores), n),
        "q4_miou": _pct(sum(s["iou"] for s in scores), n),
        "q4_miou_defective": _pct(sum(s["iou"] for s in pos), len(pos)),
    }
    for t in THRESHOLDS:
        out[f"r@{t}"] = _pct(sum(s["iou"] >= t for s in scores), n)
        out[f"r@{t}_defective"] = _pct(sum(s["iou"] >= t for s in pos), len(pos))
    out["miss_rate"] = _pct(sum(s["pred_empty"] is True for s in pos), len(pos))
    out["hallucination_rate"] = _pct(sum(s["pred_empty"] is False for s in neg), len(neg))
    out["unparseable"] = {q: sum(q in s["unparseable"] for s in scores) for q in TASKS}
    out["by_text"] = {q: sum(q in s["by_text"] for s in scores) for q in TASKS[:3]}
    out["avg"] = _mean4([out[k] for k in TASK_KEYS])
    out["avg_gated"] = _mean4([out["q1_acc"], out["q2_gated_acc"], out["q3_acc"], out["q4_miou"]])
    return out


def parse_stats(scores: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """How the answers were read, per task: ``read`` (count and percent of clips), where the read
    answers were found (``tag``/``json``/``line``/``positional``), how many Q1–Q3 answers came from
    option text, and how many were ambiguous or unparseable."""
    n = len(scores)
    out: dict[str, dict[str, Any]] = {}
    for q in TASKS:
        read = [s for s in scores if q not in s["unparseable"]]
        row: dict[str, Any] = {"read": len(read), "read_pct": _pct(len(read), n)}
        row.update({src: sum(s["how"].get(q) == src for s in read) for src in SOURCES})
        if q != "q4":
            row["option_text"] = sum(q in s["by_text"] for s in read)
        row["ambiguous"] = sum(q in s["ambiguous"] for s in scores)
        row["unparseable"] = n - len(read) - row["ambiguous"]
        out[q] = row
    return out


def breakdown(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]],
              keys: Iterable[str] = BREAKDOWNS) -> dict[str, dict[str, dict[str, Any]]]:
    """``{key: {value: aggregate}}``; a normal clip's ``defect`` is ``good`` (older files: null)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        groups: dict[str, list[dict[str, Any]]] = {}
        for rec, sc in zip(records, scores):
            v = rec.get(key)
            groups.setdefault(label_of(v) if key == "defect" else str(v), []).append(sc)
        out[key] = {v: aggregate(g) for v, g in sorted(groups.items())}
    return out


def evidence_class(rec: dict[str, Any]) -> str:
    """``weak`` (the defect in view by the mask but mostly not shown by the unmarked video),
    ``evident`` (in view and shown) or ``not in view``; records without evidence: ``unmeasured``."""
    ev = rec.get("evidence")
    if ev is None:
        return "unmeasured"
    if not ev["in_view_frames"]:
        return "not in view"
    return "weak" if is_weak(ev) else "evident"


def evaluate_scores(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall summary, how the answers were read, and all breakdowns; with evidence in the records,
    also the scores on the evident subset (every clip but the weak ones) and a breakdown by evidence."""
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} scores")
    result = {"overall": aggregate(scores), "parsing": parse_stats(scores), "breakdown": breakdown(records, scores)}
    classes = [{"evidence": evidence_class(r)} for r in records]
    if any(c["evidence"] != "unmeasured" for c in classes):
        result["evident_subset"] = aggregate([sc for c, sc in zip(classes, scores) if c["evidence"] != "weak"])
        result["breakdown"].update(breakdown(classes, scores, ("evidence",)))
    return result


# ---------------------------------------------------------------- Markdown (paper Tables 2–3 layout)

COLUMNS = (("Q1 Acc", "q1_acc"), ("Q1 BAcc", "q1_bacc"), ("Q2 Acc", "q2_acc"), ("Q2 Gated", "q2_gated_acc"),
           ("Q3 Acc", "q3_acc"), ("Q4 mIoU", "q4_miou"), ("R@0.3", "r@0.3"), ("R@0.5", "r@0.5"), ("R@0.7", "r@0.7"),
           ("Avg", "avg"))
DEFECTIVE_COLUMNS = (("Q4 mIoU", "q4_miou_defective"), ("R@0.3", "r@0.3_defective"), ("R@0.5", "r@0.5_defective"),
                     ("R@0.7", "r@0.7_defective"), ("Miss rate", "miss_rate"))


def _cell(v: Any) -> str:
    return "–" if v is None else f"{v:.1f}"


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]], first: str = "Model",
                   columns: Sequence[tuple[str, str]] = COLUMNS, count: str = "n") -> str:
    """One row per (label, aggregate): the task columns of the paper's main table, then N."""
    head = f"| {first} | " + " | ".join(c for c, _ in columns) + " | N |"
    sep = "|---|" + "---:|" * (len(columns) + 1)
    body = [f"| {label} | " + " | ".join(_cell(agg[k]) for _, k in columns) + f" | {agg[count]} |"
            for label, agg in rows]
    return "\n".join([head, sep, *body])


def parsing_table(parsing: dict[str, dict[str, Any]]) -> str:
    """Per task: share read, where it was found, option-text reads, ambiguous and unparseable."""
    head = ("| Task | Read | Read % | tag | json | line | positional | option text | ambiguous | unparseable |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [f"| {q.upper()} | {r['read']} | {_cell(r['read_pct'])} | "
            + " | ".join(str(r[s]) for s in SOURCES) + f" | {r.get('option_text', '–')} | {r['ambiguous']} | "
            f"{r['unparseable']} |" for q, r in parsing.items()]
    return "\n".join([head, *rows])


def markdown_report(title: str, label: str, result: dict[str, Any]) -> str:
    """The full report: main table, Q4 on clips with a visible defect, how the answers were read,
    diagnostics, then one breakdown table per key."""
    o = result["overall"]
    parts = [f"# {title}", "", markdown_table([(label, o)]), "",
             f"Avg = (Q1 Acc + Q2 Acc + Q3 Acc + Q4 mIoU) / 4 = {_cell(o['avg'])}; with gated Q2: "
             f"{_cell(o['avg_gated'])}.", "",
             "## Q4 on clips with a visible defect", "",
             markdown_table([(label, o)], columns=DEFECTIVE_COLUMNS, count="n_defective"), "",
             "## How the answers were read", "", parsing_table(result["parsing"]), "",
             "## Diagnostics", "",
             "| metric | value |", "|---|---:|",
             f"| Q4 hallucination rate (normal clips answered non-empty) | {_cell(o['hallucination_rate'])} |", ""]
    if "evident_subset" in result:
        parts += ["## On the evident subset", "",
                  "Clips whose defect the mask puts in view but the unmarked video mostly does not show "
                  "(weak evidence against the defect-free twin) left out:", "",
                  markdown_table([(label, result["evident_subset"])]), ""]
    for key, groups in result["breakdown"].items():
        parts += [f"## By {key}", "", markdown_table(list(groups.items()), first=key.capitalize()), ""]
    return "\n".join(parts)
