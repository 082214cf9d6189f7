"""Trace synthesis (template and OpenAI-compatible teachers), filtering and dataset validation."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pipeline.grammar import parse_response

from mmviad_trainer.records import DatasetError, ground_truth, load_split, validate_record
from mmviad_trainer.teacher import OpenAITeacher, TemplateTeacher
from mmviad_trainer.traces import check_trace, synthesize

from conftest import RECORDS


def test_template_traces_all_kept_and_parse_to_ground_truth():
    kept, counts = synthesize(RECORDS, TemplateTeacher(seed=3), progress=False)
    assert counts["kept"] == counts["total"] == len(RECORDS) and counts["discarded"] == 0
    for row, rec in zip(kept, RECORDS):
        gt = ground_truth(rec)
        p = parse_response(row["trace"], gt.q2_options, gt.q3_options)
        assert (p.q1, p.q2, p.q3, p.q4) == (gt.q1, gt.q2, gt.q3, gt.intervals)
        assert row["trace"].index("<global_perception>") < row["trace"].index("<segment_perception>") \
            < row["trace"].index("<think>") < row["trace"].index("<answer>")


def test_template_teacher_is_seeded_and_varied():
    a = [TemplateTeacher(seed=1).write(r) for r in RECORDS]
    assert a == [TemplateTeacher(seed=1).write(r) for r in RECORDS]  # deterministic per (seed, clip)
    others = [TemplateTeacher(seed=s).write(RECORDS[0]) for s in range(12)]
    assert len(set(others)) > 1  # phrasing varies with the seed
    assert "crack" in a[0] and "0.40" in a[0]


def _swap(trace: str, old: str, new: str) -> str:
    assert old in trace
    return trace.replace(old, new, 1)


def test_filter_discards_and_counts():
    rec = RECORDS[0]  # answers A / C / B, [[0.40, 1.20]]
    good = TemplateTeacher(seed=0).write(rec)
    assert check_trace(good, rec) is None
    seg_start, seg_end = good.index("<segment_perception>"), good.index("</segment_perception>") + len("</segment_perception>")
    no_seg = good[:seg_start] + good[seg_end:]
    glob_end = good.index("</global_perception>") + len("</global_perception>")
    reordered = good[glob_end:seg_end] + good[:glob_end] + good[seg_end:]
    cases = {
        "missing_section": no_seg,
        "wrong_order": reordered,
        "answer_mismatch": _swap(good, "<q1>A</q1>", "<q1>B</q1>"),
        "unparseable_answer": _swap(good, "<q4>[[0.40, 1.20]]</q4>", "<q4>later</q4>"),
    }
    for reason, trace in cases.items():
        assert check_trace(trace, rec) == reason, reason
    assert check_trace(_swap(good, "<q4>[[0.40, 1.20]]</q4>", "<q4>[[0.40, 1.30]]</q4>"), rec) == "answer_mismatch"

    class Fixed:
        name = "fixed"

        def __init__(self, traces):
            self.traces = iter(traces)

        def write(self, rec):
            return next(self.traces)

    kept, counts = synthesize([rec] * 5, Fixed([good, *cases.values()]), progress=False)
    assert len(kept) == 1 and counts["kept"] == 1 and counts["discarded"] == 4
    assert all(counts[r] == 1 for r in cases)


class _ChatServer(BaseHTTPRequestHandler):
    reply = ""
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatServer.seen.append((self.path, body, self.headers.get("Authorization")))
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": _ChatServer.reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_teacher_over_http(monkeypatch):
    rec = RECORDS[1]
    _ChatServer.reply = TemplateTeacher(seed=9).write(rec)
    server = HTTPServer(("127.0.0.1", 0), _ChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TEST_TEACHER_KEY", "sk-test")
        t = OpenAITeacher(base_url=f"http://127.0.0.1:{server.server_port}/v1", model="m",
                          api_key_env="TEST_TEACHER_KEY", retries=0)
        kept, counts = synthesize([rec], t, progress=False)
    finally:
        server.shutdown()
    assert counts["kept"] == 1 and kept[0]["teacher"] == "openai"
    path, body, auth = _ChatServer.seen[-1]
    assert path == "/v1/chat/completions" and body["model"] == "m" and auth == "Bearer sk-test"
    assert "[[0.00, 0.50], [1.30, 2.00]]" in body["messages"][1]["content"]


def test_openai_teacher_unreachable_is_counted():
    t = OpenAITeacher(base_url="http://127.0.0.1:9/v1", model="m", retries=0, timeout_s=2)
    kept, counts = synthesize([RECORDS[0]], t, progress=False)
    assert kept == [] and counts["teacher_error"] == 1


def test_bad_rows_name_file_and_field(dataset, tmp_path):
    assert len(load_split(dataset, "train")) == 4
    bad = dict(RECORDS[0])
    bad["q2"] = {**bad["q2"], "answer": "Z"}
    with pytest.raises(DatasetError, match=r"x\.jsonl:7: field 'q2\.answer'"):
        validate_record(bad, "x.jsonl:7")
    missing = {k: v for k, v in RECORDS[0].items() if k != "duration"}
    with pytest.raises(DatasetError, match="field 'duration': missing"):
        validate_record(missing, "x.jsonl:1")
    qa = tmp_path / "qa" / "standard"
    qa.mkdir(parents=True)
    (qa / "train.jsonl").write_text("\n{not json\n")
    with pytest.raises(DatasetError, match=r"train\.jsonl:2: not valid JSON"):
        load_split(tmp_path, "train")
    (qa / "train.jsonl").write_text(json.dumps(RECORDS[0]) + "\n")
    with pytest.raises(DatasetError, match=r"record 1 .*field 'video'"):
        load_split(tmp_path, "train")
