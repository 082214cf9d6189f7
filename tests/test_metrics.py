"""Metrics on hand-computed cases."""

import pytest

from pipeline.eval.metrics import aggregate, evaluate_scores, markdown_report, score_record
from pipeline.grammar import ParsedAnswer


def rec(answer1, q2ans, q3ans, vis, category="vase0", defect="bulge"):
    return {"visible_intervals": vis, "category": category, "group": category[:-1], "defect": defect,
            "environment": "sky", "material": "plastic",
            "q1": {"answer": answer1}, "q2": {"answer": q2ans}, "q3": {"answer": q3ans}}


def test_score_record_union_iou_and_empty_cases():
    r = rec("A", "C", "B", [[0.0, 1.0], [1.5, 2.0]])
    # prediction [0.5, 1.75]: intersection 0.5 + 0.25 = 0.75, union = 1.25 + 1.5 - 0.75 = 2.0 → 0.375
    s = score_record(r, ParsedAnswer("A", "C", "D", [[0.5, 1.75]]))
    assert (s["q1"], s["q2"], s["q3"]) == (True, True, False)
    assert s["iou"] == pytest.approx(0.375)
    assert score_record(rec("B", "E", "A", []), ParsedAnswer("B", "E", "A", []))["iou"] == 1.0
    assert score_record(rec("B", "E", "A", []), ParsedAnswer("B", "E", "A", [[0, 1]]))["iou"] == 0.0
    assert score_record(r, ParsedAnswer("A", "C", "B", []))["iou"] == 0.0
    bad = score_record(r, ParsedAnswer(None, "C", "B", None))
    assert bad["iou"] == 0.0 and bad["unparseable"] == ["q1", "q4"] and bad["pred_empty"] is None


def test_aggregate_hand_computed():
    recs = [rec("A", "C", "B", [[0.0, 1.0]]),            # defective
            rec("A", "C", "B", [[1.0, 2.0]]),            # defective
            rec("B", "E", "A", [], defect=None),         # normal
            rec("B", "E", "A", [], defect=None)]         # normal
    parsed = [ParsedAnswer("A", "C", "B", [[0.0, 0.5]]),   # IoU 0.5
              ParsedAnswer("B", "E", "B", []),             # miss, IoU 0
              ParsedAnswer("B", "E", "A", []),             # IoU 1
              ParsedAnswer("A", None, "A", [[0.0, 2.0]])]  # hallucination, q2 unparseable
    scores = [score_record(r, p) for r, p in zip(recs, parsed)]
    a = aggregate(scores)
    assert a["q1_acc"] == 50.0                      # 2 of 4
    assert a["q1_bacc"] == 50.0                     # (1/2 + 1/2) / 2
    assert a["q2_acc"] == 50.0 and a["q3_acc"] == 100.0
    assert a["q4_miou"] == 37.5                     # (0.5 + 0 + 1 + 0) / 4
    assert a["q4_miou_defective"] == 25.0
    assert (a["r@0.3"], a["r@0.5"], a["r@0.7"]) == (50.0, 50.0, 25.0)
    assert a["miss_rate"] == 50.0 and a["hallucination_rate"] == 50.0
    assert a["unparseable"] == {"q1": 0, "q2": 1, "q3": 0, "q4": 0}
    assert a["avg"] == pytest.approx((50 + 50 + 100 + 37.5) / 4, abs=0.01)


def test_balanced_accuracy_differs_from_accuracy_on_imbalance():
    recs = [rec("A", "C", "B", [[0, 1]])] * 3 + [rec("B", "E", "A", [], defect=None)]
    scores = [score_record(r, ParsedAnswer("A", "C", "B", [[0, 1]])) for r in recs]
    a = aggregate(scores)
    assert a["q1_acc"] == 75.0 and a["q1_bacc"] == 50.0


def test_breakdown_and_markdown():
    recs = [rec("A", "C", "B", [[0, 1]], category="vase0"), rec("B", "E", "A", [], category="cup0", defect=None)]
    scores = [score_record(recs[0], ParsedAnswer("A", "C", "B", [[0, 1]])),
              score_record(recs[1], ParsedAnswer("A", "E", "A", [[0, 1]]))]
    res = evaluate_scores(recs, scores)
    assert res["breakdown"]["category"]["vase0"]["avg"] == 100.0
    assert res["breakdown"]["category"]["cup0"]["q1_acc"] == 0.0
    assert set(res["breakdown"]["defect"]) == {"bulge", "good"}
    md = markdown_report("t", "m", res)
    assert "| m | 50.0 | 50.0 | 100.0 | 100.0 | 50.0 |" in md
    assert "## By material" in md and "| cup0 |" in md
    with pytest.raises(ValueError):
        evaluate_scores(recs, scores[:1])


def test_score_predictions_is_the_shared_entry_point(smoke_built):
    """The trainer's final eval calls this; perfect answers score 100, garbage scores 0 and is counted."""
    from pipeline.eval import score_predictions
    from pipeline.grammar import format_answer
    from pipeline.io import read_jsonl

    recs = read_jsonl(smoke_built / "qa" / "standard" / "test.jsonl")
    perfect = [format_answer(r["q1"]["answer"], r["q2"]["answer"], r["q3"]["answer"], r["q4"]["answer"]) for r in recs]
    good = score_predictions(recs, perfect)["overall"]
    assert good["q1_acc"] == good["q2_acc"] == good["q3_acc"] == good["q4_miou"] == 100.0
    bad = score_predictions(recs, ["I cannot tell."] * len(recs))["overall"]
    assert bad["q1_acc"] == bad["q4_miou"] == 0.0 and bad["unparseable"]["q4"] == len(recs)
