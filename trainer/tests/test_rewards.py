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


def test_answer_reward_q1_and_q3():
    out = answer_reward([resp("A", "C", "B", "[]"), resp("A", "C", "A", "[]"), resp("B", "C", "B", "[]"),
                         resp("B", "C", "A", "[]"), "garbage"], solution=[sol(REC)] * 5)
    assert out == [1.0, 0.5, 0.5, 0.0, 0.0]


def test_answer_reward_accepts_option_text():
    assert answer_reward([resp("A: Yes", "C", "vase", "[]")], solution=[sol(REC)]) == [1.0]


def test_defect_gate():
    s = [sol(REC)] * 3
    # right type with right q1; right type but q1 wrong (gate closes); wrong type
    assert defect_reward([resp("A", "C", "B", "[]"), resp("B", "C", "B", "[]"), resp("A", "D", "B", "[]")],
                         solution=s) == [1.0, 0.0, 0.0]
    assert defect_reward([resp("B", "E", "A", "[]"), resp("A", "E", "A", "[]")], solution=[sol(GOOD)] * 2) == [1.0, 0.0]


def test_temporal_every_case():
    assert temporal_score([], []) == K.empty_reward                      # M=0, N=0
    assert temporal_score([], [[0.4, 1.2]]) == K.miss_penalty            # M=0, N>0
    assert temporal_score([[0.1, 0.5]], []) == K.hallucination_penalty   # M>0, N=0
    assert temporal_score(None, [[0.4, 1.2]]) == K.unparseable_penalty   # unreadable
    # M>0, N>0: exact match → IoU 1 + full discovery bonus
    assert temporal_score([[0.4, 1.2]], [[0.4, 1.2]]) == pytest.approx(1.0 + K.discovery_bonus)
    # partial overlap above the discovery IoU: IoU 0.6/0.8 plus the bonus; below it: IoU only
    assert temporal_score([[0.6, 1.2]], [[0.4, 1.2]]) == pytest.approx(0.75 + K.discovery_bonus)
    assert temporal_score([[0.9, 1.2]], [[0.4, 1.2]]) == pytest.approx(0.375)
    # one of two GT intervals found: half the bonus
    assert temporal_score([[0.0, 0.5]], [[0.0, 0.5], [1.3, 2.0]]) == pytest.approx(1.0 + 0.5 * K.discovery_bonus)
    # extra intervals cost count_penalty each
    assert temporal_score([[0.4, 1.2], [1.5, 1.6], [1.7, 1.8]], [[0.4, 1.2]]) == pytest.approx(
        1.0 + K.discovery_bonus - 2 * K.count_penalty)
    # disjoint prediction: floored at the hallucination penalty
    many = [[1.5 + 0.01 * i, 1.505 + 0.01 * i] for i in range(20)]
    assert temporal_score(many, [[0.0, 0.2]]) == K.hallucination_penalty


def test_temporal_reward_reads_q4_and_constants_are_configurable():
    comps = [resp("A", "C", "B", "[[0.4, 1.2]]"), resp("A", "C", "B", "[]"), resp("A", "C", "B", "soon")]
    assert temporal_reward(comps, solution=[sol(REC)] * 3) == pytest.approx(
        [1.0 + K.discovery_bonus, K.miss_penalty, K.unparseable_penalty])
    fn = build_rewards(["temporal"], {"miss_penalty": -2.0})[0]
    assert fn.__name__ == "temporal"
    assert fn([comps[1]], solution=[sol(REC)]) == [-2.0]
    with pytest.raises(ValueError, match="unknown temporal"):
        build_rewards(["temporal"], {"nope": 1.0})
    with pytest.raises(ValueError, match="unknown reward"):
        build_rewards(["bogus"])


def test_trl_signature_extra_kwargs_ignored():
    out = format_reward([resp("A", "C", "B", "[]")], prompts=["p"], completion_ids=[[1]], trainer_state=None,
                        solution=[sol(REC)], clip_id=["x"])
    assert out == [1.0]
