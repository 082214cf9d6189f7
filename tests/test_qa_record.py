import json

import pytest

from pipeline.grammar import Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT, format_intervals, parse_intervals, parse_response
from pipeline.qa import qa_record, split_jobs, validate_qa_record

GROUPS = ["bottle", "bowl", "cup", "vase", "cap"]


def job(defect="bulge", group="vase", jid="vase0-0000-bulge-t0"):
    return {"job_id": jid, "category": "vase0", "group": group, "defect": defect,
            "material": {"name": "plastic"}, "environment": {"kind": "sky"}}


def clip(mask, diff=None, reviewed=None, cid="vase0-0000-bulge-t0-c1"):
    iv = {"mask": mask, "diff": diff if diff is not None else mask}
    if reviewed is not None:
        iv["reviewed"] = reviewed
    return {"clip_id": cid, "job_id": "vase0-0000-bulge-t0", "clip_index": 1, "video": f"clips/{cid}.mp4",
            "video_marked": f"clips/{cid}.marked.mp4", "fps": 30, "num_frames": 60, "duration": 2.0,
            "intervals": iv}


def test_visible_clip_labels_and_wording():
    r = qa_record(clip([[0.4, 1.17], [1.5, 2.0]]), job(), GROUPS, "mask", "train", seed=1)
    assert validate_qa_record(r) == []
    assert r["q1"]["question"] == Q1_TEXT and r["q2"]["question"] == Q2_TEXT
    assert r["q3"]["question"] == Q3_TEXT and r["q4"]["question"] == Q4_TEXT
    assert r["q1"]["answer"] == "A"
    assert r["q2"]["options"][r["q2"]["answer"]] == "bulge"
    assert r["q3"]["options"][r["q3"]["answer"]] == "vase"
    assert r["q4"]["answer"] == "[[0.40, 1.17], [1.50, 2.00]]"
    assert r["provenance"] == "mask"


def test_defective_object_with_nothing_visible_is_good():
    r = qa_record(clip([]), job(), GROUPS, "mask", "test", seed=1)
    assert r["q1"]["answer"] == "B" and r["q2"]["options"][r["q2"]["answer"]] == "good"
    assert r["q4"]["answer"] == "[]" and validate_qa_record(r) == []


def test_normal_object_is_always_no_good_empty():
    r = qa_record(clip([[0.1, 0.3]]), job(defect=None), GROUPS, "diff", "test", seed=1)
    assert (r["q1"]["answer"], r["q2"]["options"][r["q2"]["answer"]], r["q4"]["answer"]) == ("B", "good", "[]")


def test_reviewed_intervals_win_and_are_recorded():
    r = qa_record(clip([[0.4, 2.0]], reviewed=[[0.5, 1.0]]), job(), GROUPS, "mask", "train", seed=1)
    assert r["provenance"] == "reviewed" and r["visible_intervals"] == [[0.5, 1.0]]


def test_option_shuffle_is_seeded_per_clip():
    a = qa_record(clip([[0, 1]]), job(), GROUPS, "mask", "train", seed=1)
    b = qa_record(clip([[0, 1]]), job(), GROUPS, "mask", "train", seed=1)
    orders = {json.dumps(qa_record(clip([[0, 1]], cid=f"vase0-0000-bulge-t0-c{i}"), job(), GROUPS, "mask",
                                   "train", seed=1)["q2"]["options"]) for i in range(8)}
    assert a == b and len(orders) > 1


def test_validator_catches_contradictions():
    r = qa_record(clip([[0.4, 1.0]]), job(), GROUPS, "mask", "train", seed=1)
    bad = json.loads(json.dumps(r))
    bad["q1"]["answer"] = "B"
    assert any("q1.answer" in p for p in validate_qa_record(bad))
    bad = json.loads(json.dumps(r))
    bad["q4"]["answer"] = "[[0.40, 1.10]]"
    assert any("q4" in p for p in validate_qa_record(bad))


def test_split_is_orbit_level_stratified_and_deterministic():
    jobs = [{"job_id": f"c{i}-0000-{d}-t0", "defect": None if d == "good" else d}
            for i in range(12) for d in ("good", "bulge", "concavity")]
    s1, s2 = split_jobs(jobs, 0.25, seed=3), split_jobs(list(reversed(jobs)), 0.25, seed=3)
    assert s1 == s2
    test = [j for j, s in s1.items() if s == "test"]
    assert len(test) == 9
    assert {j.split("-")[2] for j in test} == {"good", "bulge", "concavity"}


@pytest.mark.parametrize("text,want", [
    ("[[0.40, 1.17], [1.50, 2.00]]", [[0.4, 1.17], [1.5, 2.0]]),
    ("[0.5, 2.0]", [[0.5, 2.0]]),
    ("[]", []),
    ("none", []),
    ("0.5-1.0", [[0.5, 1.0]]),
    ("sometime", None),
    ("[[1.0, 0.5]]", None),
])
def test_q4_grammar(text, want):
    assert parse_intervals(text) == want


def test_q4_format_round_trip():
    iv = [[0.0, 0.33], [1.5, 2.0]]
    assert parse_intervals(format_intervals(iv)) == iv


def test_parse_response_uses_last_answer_block():
    q2 = {"A": "hole", "B": "good"}
    q3 = {"A": "cap", "B": "vase"}
    text = ("<think>..</think><answer><q1>B</q1><q2>B</q2><q3>A</q3><q4>[]</q4></answer>"
            "<answer><q1>A</q1><q2>A: hole</q2><q3>vase</q3><q4>[[0.40, 1.17]]</q4></answer>")
    p = parse_response(text, q2, q3)
    assert (p.q1, p.q2, p.q3, p.q4) == ("A", "A", "B", [[0.4, 1.17]]) and p.errors == []
