"""Metrics (DESIGN §5): Q1 accuracy and balanced accuracy, Q2/Q3 accuracy, Q4 union-IoU with
R@IoU≥{0.3, 0.5, 0.7}, miss and hallucination rates, unparseable and option-text fallback counts,
Avg = mean of the four task scores; breakdowns by category, group, defect, environment, material.

Every score is in percent (0–100) in the outputs. An unparseable answer scores 0 for its task and is
counted; Q4 of an unparseable answer is IoU 0 and is neither a miss nor a hallucination.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from ..grammar import ParsedAnswer
from ..intervals import union_iou

THRESHOLDS = (0.3, 0.5, 0.7)
BREAKDOWNS = ("category", "group", "defect", "environment", "material")
TASK_KEYS = ("q1_acc", "q2_acc", "q3_acc", "q4_miou")


def score_record(rec: dict[str, Any], parsed: ParsedAnswer) -> dict[str, Any]:
    """Per-clip scores of one parsed answer against one QA record."""
    true4 = rec["visible_intervals"]
    iou = union_iou(parsed.q4, true4) if parsed.q4 is not None else 0.0
    return {
        "q1": parsed.q1 == rec["q1"]["answer"], "q2": parsed.q2 == rec["q2"]["answer"],
        "q3": parsed.q3 == rec["q3"]["answer"], "iou": iou,
        "positive": bool(true4), "pred_empty": None if parsed.q4 is None else not parsed.q4,
        "unparseable": [q for q in ("q1", "q2", "q3", "q4") if getattr(parsed, q) is None],
        "by_text": list(parsed.by_text),
    }


def _pct(num: float, den: int) -> Optional[float]:
    return round(100.0 * num / den, 2) if den else None


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
        "q3_acc": _pct(sum(s["q3"] for s in scores), n),
        "q4_miou": _pct(sum(s["iou"] for s in scores), n),
        "q4_miou_defective": _pct(sum(s["iou"] for s in pos), len(pos)),
    }
    for t in THRESHOLDS:
        out[f"r@{t}"] = _pct(sum(s["iou"] >= t for s in scores), n)
    out["miss_rate"] = _pct(sum(s["pred_empty"] is True for s in pos), len(pos))
    out["hallucination_rate"] = _pct(sum(s["pred_empty"] is False for s in neg), len(neg))
    out["unparseable"] = {q: sum(q in s["unparseable"] for s in scores) for q in ("q1", "q2", "q3", "q4")}
    out["by_text"] = {q: sum(q in s["by_text"] for s in scores) for q in ("q1", "q2", "q3")}
    tasks = [out[k] for k in TASK_KEYS]
    out["avg"] = round(sum(tasks) / 4, 2) if all(v is not None for v in tasks) else None
    return out


def breakdown(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]],
              keys: Iterable[str] = BREAKDOWNS) -> dict[str, dict[str, dict[str, Any]]]:
    """``{key: {value: aggregate}}``; a normal clip's ``defect`` is ``good`` (older files: null)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        groups: dict[str, list[dict[str, Any]]] = {}
        for rec, sc in zip(records, scores):
            v = rec.get(key)
            groups.setdefault("good" if (v is None and key == "defect") else str(v), []).append(sc)
        out[key] = {v: aggregate(g) for v, g in sorted(groups.items())}
    return out


def evaluate_scores(records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall summary plus all breakdowns."""
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} scores")
    return {"overall": aggregate(scores), "breakdown": breakdown(records, scores)}


# ---------------------------------------------------------------- Markdown (paper Tables 2–3 layout)

COLUMNS = (("Q1 Acc", "q1_acc"), ("Q1 BAcc", "q1_bacc"), ("Q2 Acc", "q2_acc"), ("Q3 Acc", "q3_acc"),
           ("Q4 mIoU", "q4_miou"), ("R@0.3", "r@0.3"), ("R@0.5", "r@0.5"), ("R@0.7", "r@0.7"), ("Avg", "avg"))


def _cell(v: Any) -> str:
    return "–" if v is None else f"{v:.1f}"


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]], first: str = "Model") -> str:
    """One row per (label, aggregate): the task columns of the paper's main table, then N."""
    head = f"| {first} | " + " | ".join(c for c, _ in COLUMNS) + " | N |"
    sep = "|---|" + "---:|" * (len(COLUMNS) + 1)
    body = [f"| {label} | " + " | ".join(_cell(agg[k]) for _, k in COLUMNS) + f" | {agg['n']} |"
            for label, agg in rows]
    return "\n".join([head, sep, *body])


def markdown_report(title: str, label: str, result: dict[str, Any]) -> str:
    """The full report: main table, diagnostics (miss, hallucination, unparseable, option-text
    fallbacks), then one breakdown table per key."""
    o = result["overall"]
    parts = [f"# {title}", "", markdown_table([(label, o)]), "",
             "## Diagnostics", "",
             "| metric | value |", "|---|---:|",
             f"| Q4 mIoU on defective clips | {_cell(o['q4_miou_defective'])} |",
             f"| Q4 miss rate (defective clips answered empty) | {_cell(o['miss_rate'])} |",
             f"| Q4 hallucination rate (normal clips answered non-empty) | {_cell(o['hallucination_rate'])} |",
             *(f"| unparseable {q} | {c} |" for q, c in o["unparseable"].items()),
             *(f"| {q} read from option text (no letter) | {c} |" for q, c in o["by_text"].items()), ""]
    for key, groups in result["breakdown"].items():
        parts += [f"## By {key}", "", markdown_table(list(groups.items()), first=key.capitalize()), ""]
    return "\n".join(parts)
