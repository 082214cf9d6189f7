"""Metrics on hand-computed cases: gated Q2, Q4 clipped to the clip, R@IoU on all and on defective
clips, Avg as the plain mean of the four task scores, and how answers were read."""

import pytest

from pipeline.eval.metrics import aggregate, clip_intervals, evaluate_scores, markdown_report, q4_iou, score_record
from pipeline.grammar import ParsedAnswer


def rec(answer1, q2ans, q3ans, vis, category="vase0", defect="bulge", duration=2.0):
    return {"visible_intervals": vis, "category": category, "group": category[:-1], "defect": defect,
            "environment": "sky", "material": "plastic", "duration": duration,
            "q1": {"answer": answer1}, "q2": {"answer": q2ans}, "q3": {"answer": q3ans}}


def test_score_record_union_iou_and_empty_cases():
    r = rec("A", "C", "B", [[0.0, 1.0], [1.5, 2.0]])
    # prediction [0.5, 1.75]: intersection 0.5 + 0.25 = 0.75, union = 1.25 + 1.5 - 0.75 = 2.0 → 0.375
    s = score_record(r, ParsedAnswer("A", "C", "D", [[0.5, 1.75]]))
    assert (s["q1"], s["q2"], s["q2_gated"], s["q3"]) == (True, True, True, False)
    assert s["iou"] == pytest.approx(0.375)
    assert score_record(rec("B", "E", "A", []), ParsedAnswer("B", "E", "A", []))["iou"] == 1.0
    assert score_record(rec("B", "E", "A", []), ParsedAnswer("B", "E", "A", [[0, 1]]))["iou"] == 0.0
    assert score_record(r, ParsedAnswer("A", "C", "B", []))["iou"] == 0.0
    bad = score_record(r, ParsedAnswer(None, "C", "B", None))
    assert bad["iou"] == 0.0 and bad["unparseable"] == ["q1", "q4"] and bad["pred_empty"] is None
    assert bad["q2"] and not bad["q2_gated"]  # Q2 right, Q1 unread: the gate closes


def test_q4_is_clipped_to_the_clip():
    assert clip_intervals([[-0.5, 0.5], [1.8, 3.0], [2.5, 3.0]], 2.0) == [[0.0, 0.5], [1.8, 2.0]]
    # [1.0, 4.0] on a 2 s clip is [1.0, 2.0]: IoU with [1.0, 2.0] is 1 (unclipped it would be 1/3)
    assert q4_iou([[1.0, 4.0]], [[1.0, 2.0]], 2.0) == 1.0
    # an answer wholly outside the clip, or of zero length, is not "nothing visible"
    assert q4_iou([[2.5, 3.0]], [], 2.0) == 0.0
    assert q4_iou([[0.5, 0.5]], [], 2.0) == 0.0
    assert q4_iou([], [], 2.0) == 1.0 and q4_iou(None, [], 2.0) == 0.0


def test_aggregate_hand_computed():
    recs = [rec("A", "C", "B", [[0.0, 1.0]]),            # defective
            rec("A", "C", "B", [[1.0, 2.0]]),            # defective
            rec("B", "E", "A", [], defect=None),         # normal
            rec("B", "E", "A", [], defect=None)]         # normal
    parsed = [ParsedAnswer("A", "C", "B", [[0.0, 0.5]]),   # IoU 0.5
              ParsedAnswer("B", "C", "B", []),             # miss, IoU 0; Q2 right but Q1 wrong
              ParsedAnswer("B", "E", "A", []),             # IoU 1
              ParsedAnswer("A", None, "A", [[0.0, 2.0]])]  # hallucination, q2 unparseable
    scores = [score_record(r, p) for r, p in zip(recs, parsed)]
    a = aggregate(scores)
    assert a["q1_acc"] == 50.0                      # 2 of 4
    assert a["q1_bacc"] == 50.0                     # (1/2 + 1/2) / 2
    assert a["q2_acc"] == 75.0 and a["q2_gated_acc"] == 50.0
    assert a["q3_acc"] == 100.0
    assert a["q4_miou"] == 37.5                     # (0.5 + 0 + 1 + 0) / 4
    assert a["q4_miou_defective"] == 25.0           # (0.5 + 0) / 2
    assert (a["r@0.3"], a["r@0.5"], a["r@0.7"]) == (50.0, 50.0, 25.0)
    assert (a["r@0.3_defective"], a["r@0.5_defective"], a["r@0.7_defective"]) == (50.0, 50.0, 0.0)
    assert a["miss_rate"] == 50.0 and a["hallucination_rate"] == 50.0
    assert a["unparseable"] == {"q1": 0, "q2": 1, "q3": 0, "q4": 0}
    assert a["avg"] == pytest.approx((50 + 75 + 100 + 37.5) / 4, abs=0.01)
    assert a["avg_gated"] == pytest.approx((50 + 50 + 100 + 37.5) / 4, abs=0.01)


def test_balanced_accuracy_differs_from_accuracy_on_imbalance():
    recs = [rec("A", "C", "B", [[0, 1]])] * 3 + [rec("B", "E", "A", [], defect=None)]
    scores = [score_record(r, ParsedAnswer("A", "C", "B", [[0, 1]])) for r in recs]
    a = aggregate(scores)
    assert a["q1_acc"] == 75.0 and a["q1_bacc"] == 50.0


def test_parsing_stats_count_where_and_how_answers_were_read():
    r = rec("A", "C", "B", [[0.0, 1.0]])
    ps = [ParsedAnswer("A", "C", "B", [[0, 1]], how={"q1": "tag", "q2": "tag", "q3": "tag", "q4": "tag"}),
          ParsedAnswer("A", "C", "B", [[0, 1]], how={"q1": "json", "q2": "json", "q3": "json", "q4": "json"},
                       by_text=["q2"]),
          ParsedAnswer("A", None, None, None, how={"q1": "line", "q2": "line", "q3": "line", "q4": "line"},
                       ambiguous=["q2"])]
    res = evaluate_scores([r] * 3, [score_record(r, p) for p in ps])
    q2 = res["parsing"]["q2"]
    assert (q2["read"], q2["tag"], q2["json"], q2["line"], q2["option_text"], q2["ambiguous"], q2["unparseable"]) \
        == (2, 1, 1, 0, 1, 1, 0)
    assert res["parsing"]["q3"]["unparseable"] == 1 and res["parsing"]["q1"]["line"] == 1
    assert res["parsing"]["q1"]["read_pct"] == 100.0
    md = markdown_report("t", "m", res)
    assert "| Q2 | 2 | 66.7 | 1 | 1 | 0 | 0 | 1 | 1 | 0 |" in md


def test_breakdown_and_markdown():
    recs = [rec("A", "C", "B", [[0, 1]], category="vase0"), rec("B", "E", "A", [], category="cup0", defect=None)]
    scores = [score_record(recs[0], ParsedAnswer("A", "C", "B", [[0, 1]])),
              score_record(recs[1], ParsedAnswer("A", "E", "A", [[0, 1]]))]
    res = evaluate_scores(recs, scores)
    assert res["breakdown"]["category"]["vase0"]["avg"] == 100.0
    assert res["breakdown"]["category"]["cup0"]["q1_acc"] == 0.0
    assert set(res["breakdown"]["defect"]) == {"bulge", "good"}
    md = markdown_report("t", "m", res)
    assert "| m | 50.0 | 50.0 | 100.0 | 50.0 | 100.0 | 50.0 |" in md
    assert "## By material" in md and "| cup0 |" in md and "## How the answers were read" in md
    with pytest.raises(ValueError):
        evaluate_scores(recs, scores[:1])


def test_score_predictions_is_the_shared_entry_point(smoke_built):
    """Perfect answers score 100, garbage scores 0 and is counted."""
    from pipeline.eval import score_predictions
    from pipeline.grammar import format_answer
    from pipeline.io import read_jsonl

    recs = read_jsonl(smoke_built / "qa" / "standard" / "test.jsonl")
    perfect = [format_answer(r["q1"]["answer"], r["q2"]["answer"], r["q3"]["answer"], r["q4"]["answer"]) for r in recs]
    good = score_predictions(recs, perfect)["overall"]
    assert good["q1_acc"] == good["q2_acc"] == good["q3_acc"] == good["q4_miou"] == good["avg"] == 100.0
    bad = score_predictions(recs, ["I cannot tell."] * len(recs))
    assert bad["overall"]["q1_acc"] == bad["overall"]["q4_miou"] == 0.0
    assert bad["overall"]["unparseable"]["q4"] == len(recs) == bad["parsing"]["q4"]["unparseable"]
