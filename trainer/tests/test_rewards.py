"""VISTA-GRPO rewards on hand-written completions."""

from __future__ import annotations

import pytest

from mmviad_trainer.records import ground_truth
from mmviad_trainer.rewards import (TemporalConstants, answer_reward, build_rewards, defect_reward, format_reward,
                                    temporal_reward, temporal_score)

from conftest import make_record

K = TemporalConstants()
REC = make_record("vase0-0000-crack-t0-c0", "vase", "crack", [[0.4, 1.2]])  # q1 A, q2 C (crack), q3 B (vase)
GOOD = make_record("cup0-0000-good-t0-c0", "cup", None, [])                  # q1 B, q2 E (good), q3 A (cup)


def resp(q1: str, q2: str, q3: str, q4: str) -> str:
    return (f"<global_perception>a vase</global_perception><segment_perception>0-2 s</segment_perception>"
            f"<think>reasoning</think><answer><q1>{q1}</q1><q2>{q2}</q2><q3>{q3}</q3><q4>{q4}</q4></answer>")


def sol(rec: dict) -> str:
    return ground_truth(rec).to_json()


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_format_accepts_structure_and_conversational_form():
    assert format_reward([resp("A", "C", "B", "[[0.4, 1.2]]")]) == [1.0]
    assert format_reward([conv(resp("A", "C", "B", "[]"))]) == [1.0]


@pytest.mark.parametrize("bad", [
    "<think>x</think><answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[]</q4></answer>",  # missing perception
    "<segment_perception>s</segment_perception><global_perception>g</global_perception><think>t</think>"
    "<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[]</q4></answer>",  # wrong order
    "<global_perception></global_perception><segment_perception>s</segment_perception><think>t</think>"
    "<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[]</q4></answer>",  # empty section
    "<global_perception>g</global_perception><segment_perception>s</segment_perception><think>t</think>"
    "<answer><q1>A</q1><q2>C</q2><q3>B</q3></answer>",  # q4 missing
    "<global_perception>g</global_perception><segment_perception>s</segment_perception><think>t</think>"
    "<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[]</q4></answer> trailing text",
    "just an answer: A",
])
def test_format_failures(bad):
    assert format_reward([bad]) == [0.0]


def test_answer_reward_is_r_ano_plus_r_obj():
    """Paper: R_ans = R_ano + R_obj, each 1 when right and 0 when wrong (0, 1 or 2)."""
    out = answer_reward([resp("A", "C", "B", "[]"), resp("A", "C", "A", "[]"), resp("B", "C", "B", "[]"),
                         resp("B", "C", "A", "[]"), "garbage"], solution=[sol(REC)] * 5)
    assert out == [2.0, 1.0, 1.0, 0.0, 0.0]


def test_answer_reward_accepts_option_text():
    assert answer_reward([resp("A: Yes", "C", "vase", "[]")], solution=[sol(REC)]) == [2.0]


def test_defect_gate_and_its_ablation():
    s = [sol(REC)] * 3
    # right type with right q1; right type but q1 wrong (gate closes); wrong type
    comps = [resp("A", "C", "B", "[]"), resp("B", "C", "B", "[]"), resp("A", "D", "B", "[]")]
    assert defect_reward(comps, solution=s) == [1.0, 0.0, 0.0]
    assert defect_reward([resp("B", "E", "A", "[]"), resp("A", "E", "A", "[]")], solution=[sol(GOOD)] * 2) == [1.0, 0.0]
    ungated = build_rewards(["defect"], defect_gate=False)[0]
    assert ungated.__name__ == "defect_reward"
    assert ungated(comps, solution=s) == [1.0, 1.0, 0.0]  # Table 5 "w/o gate": Q2 alone decides


def test_temporal_the_four_cases_of_the_figure():
    assert temporal_score([], []) == K.empty_reward == 1.0                # (i)   M=0, N=0: reward 1
    assert temporal_score([], [[0.4, 1.2]]) == -K.alpha_pen              # (ii)  M=0, N>0: penalty
    assert temporal_score([[0.1, 0.5]], []) == -K.alpha_pen              # (iii) M>0, N=0: the same penalty
    assert temporal_score([[0.4, 1.2]], [[0.4, 1.2]]) == pytest.approx(1.0)  # (iv) exact match
    assert temporal_score(None, [[0.4, 1.2]]) == -K.unparseable_penalty   # unreadable: below every case


def test_temporal_match_rewards_overlap_and_discovery():
    b, lam = K.discovery_weight, K.count_penalty
    # more overlap pays more
    assert temporal_score([[0.6, 1.2]], [[0.4, 1.2]]) == pytest.approx((1 - b) * 0.75 + b)
    # poor boundaries: a small overlap still earns the full discovery share (any overlap counts) ...
    poor = temporal_score([[1.1, 1.5]], [[0.4, 1.2]])
    assert poor == pytest.approx((1 - b) * 0.1 / 1.1 + b)
    # ... while a prediction next to the interval, overlapping nothing, earns nothing
    assert temporal_score([[1.2, 1.5]], [[0.4, 1.2]]) == pytest.approx(0.0)
    assert poor > 0.25


def test_temporal_count_penalty_both_ways():
    b, lam = K.discovery_weight, K.count_penalty
    gt2 = [[0.0, 0.5], [1.3, 2.0]]
    # under-segmentation: one interval for two GT intervals (M−N = −1)
    under = temporal_score([[0.0, 0.5]], gt2)
    assert under == pytest.approx((1 - b) * 0.5 / 1.2 + b * 0.5 - lam)
    # one interval spanning both GT intervals: IoU 1.2/2.0, both discovered, |M−N| = 1
    assert temporal_score([[0.0, 2.0]], gt2) == pytest.approx((1 - b) * 0.6 + b - lam)
    # over-segmentation: the exact interval plus two extra ones costs 2λ beyond the IoU loss
    over = temporal_score([[0.4, 1.2], [1.5, 1.6], [1.7, 1.8]], [[0.4, 1.2]])
    assert over == pytest.approx((1 - b) * 0.8 / 1.0 + b - 2 * lam)
    # the exact split scores 1, better than either
    assert temporal_score(gt2, gt2) == pytest.approx(1.0)
    assert max(under, over) < 0.8
    # spraying intervals is floored at the miss penalty
    many = [[1.5 + 0.01 * i, 1.505 + 0.01 * i] for i in range(20)]
    assert temporal_score(many, [[0.0, 0.2]]) == -K.alpha_pen


def test_flat_iou_ablation():
    flat = TemporalConstants(mode="flat_iou")
    assert temporal_score([], [], flat) == 0.0            # no reward for a correct empty answer
    assert temporal_score([], [[0.4, 1.2]], flat) == 0.0  # and no penalty for a miss ...
    assert temporal_score([[0.1, 0.5]], [], flat) == 0.0  # ... or a hallucination
    assert temporal_score(None, [[0.4, 1.2]], flat) == 0.0
    assert temporal_score([[0.6, 1.2]], [[0.4, 1.2]], flat) == pytest.approx(0.75)
    fn = build_rewards(["temporal"], {"mode": "flat_iou"})[0]
    assert fn([resp("A", "C", "B", "[[0.6, 1.2]]")], solution=[sol(REC)]) == pytest.approx([0.75])


def test_temporal_reward_reads_q4_and_constants_are_configurable():
    comps = [resp("A", "C", "B", "[[0.4, 1.2]]"), resp("A", "C", "B", "[]"), resp("A", "C", "B", "soon")]
    assert temporal_reward(comps, solution=[sol(REC)] * 3) == pytest.approx(
        [1.0, -K.alpha_pen, -K.unparseable_penalty])
    fn = build_rewards(["temporal"], {"alpha_pen": 2.0})[0]
    assert fn.__name__ == "temporal_reward"
    assert fn([comps[1]], solution=[sol(REC)]) == [-2.0]
    with pytest.raises(ValueError, match="unknown temporal"):
        build_rewards(["temporal"], {"nope": 1.0})
    with pytest.raises(ValueError, match="mode must be one of"):
        build_rewards(["temporal"], {"mode": "fuzzy"})
    with pytest.raises(ValueError, match="unknown reward"):
        build_rewards(["bogus"])


def test_trl_signature_extra_kwargs_ignored():
    out = format_reward([resp("A", "C", "B", "[]")], prompts=["p"], completion_ids=[[1]], trainer_state=None,
                        solution=[sol(REC)], clip_id=["x"])
    assert out == [1.0]


def test_docstring_examples():
    """The doctests in rewards.py quote the paper's rules with worked examples; run them here."""
    import doctest

    from mmviad_trainer import rewards

    result = doctest.testmod(rewards, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 20 and result.failed == 0


# Completions read in every layout the benchmark's grammar accepts, with Q4 answers that the
# evaluator clips (past the clip's end, wholly outside it, zero length, "until the end").
AGREEMENT_COMPLETIONS = [
    resp("A", "C", "B", "[[0.4, 1.2]]"),
    resp("B", "E", "A", "[]"),
    resp("A: Yes", "crack", "vase", "[[0.6, 1.9]]"),
    resp("A", "C", "B", "[[3.0, 4.0]]"),
    resp("A", "C", "D", "[[0.4, 0.4]]"),
    '{"q1": "A", "q2": "C", "q3": "B", "q4": [[0.0, 0.5], [1.3, 2.5]]}',
    "Q1: A\nQ2: D\nQ3: C\nQ4: from 1.0 s until the end",
    "<answer><q1>B</q1><q2>C</q2><q3>B</q3><q4>[]</q4></answer> <answer><q1>A</q1><q2>C</q2><q3>A</q3>"
    "<q4>throughout the clip</q4></answer>",
    "<answer>A C B</answer>",
    "garbage",
]


@pytest.mark.parametrize("i", range(len(AGREEMENT_COMPLETIONS)))
def test_rewards_equal_the_evaluators_per_clip_scores(tmp_path, i):
    """A GRPO reward and the benchmark metric never disagree: the evaluator (``mmviad eval``'s
    ``evaluate_records``, fed the completion as a predictions file) and the rewards read and score
    the same completion identically on every test record."""
    from conftest import RECORDS
    from pipeline.eval.run import evaluate_records
    from pipeline.eval.runners.predictions import PredictionsRunner
    from pipeline.io import read_jsonl, write_jsonl

    text = AGREEMENT_COMPLETIONS[i]
    preds = tmp_path / "answers.jsonl"
    write_jsonl(preds, [{"clip_id": r["clip_id"], "response": text} for r in RECORDS])
    evaluate_records(PredictionsRunner(preds), RECORDS, tmp_path, tmp_path / "report", progress=False)
    rows = {row["clip_id"]: row for row in read_jsonl(tmp_path / "report" / "predictions.jsonl")}
    ungated = build_rewards(["defect"], defect_gate=False)[0]
    flat = build_rewards(["temporal"], {"mode": "flat_iou"})[0]
    # with no discovery bonus and no count penalty, case (iv) is the IoU itself
    iou_only = build_rewards(["temporal"], {"discovery_weight": 0.0, "count_penalty": 0.0, "alpha_pen": 1.0})[0]
    for rec in RECORDS:
        ev, s, c = rows[rec["clip_id"]]["scores"], [sol(rec)], [conv(text)]
        assert answer_reward(c, solution=s) == [float(ev["q1"]) + float(ev["q3"])], rec["clip_id"]
        assert defect_reward(c, solution=s) == [float(ev["q2_gated"])], rec["clip_id"]
        assert ungated(c, solution=s) == [float(ev["q2"])], rec["clip_id"]
        pred = rows[rec["clip_id"]]["parsed"]["q4"]
        if pred and rec["visible_intervals"]:
            assert flat(c, solution=s) == [ev["iou"]], rec["clip_id"]
        if (pred == [] and not rec["visible_intervals"]) or (pred and rec["visible_intervals"]):  # cases (i), (iv)
            assert iou_only(c, solution=s) == [ev["iou"]], rec["clip_id"]
