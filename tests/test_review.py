"""Review export/import without a browser: the Label Studio files, a round trip through an export
file in Label Studio's documented format, the page's JSON, and rejected imports."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.io import iter_jsonl, read_json
from pipeline.review.importer import import_reviews
from pipeline.review.model import ReviewError

SMOKE = Path(__file__).resolve().parents[1] / "manifests" / "smoke.yaml"


def _export(out: Path) -> Path:
    assert main(["review", "export", "--config", str(SMOKE), "--out", str(out)]) == 0
    return out / "review" / "smoke"


def _qa(out: Path) -> dict[str, dict]:
    assert main(["clips", "--config", str(SMOKE), "--out", str(out), "--no-progress"]) == 0
    assert main(["qa", "--config", str(SMOKE), "--out", str(out)]) == 0
    rows = {}
    for s in ("train", "test"):
        for r in iter_jsonl(out / "qa" / "standard" / f"{s}.jsonl"):
            rows[r["clip_id"]] = r
    return rows


def _ls_export(tasks: list[dict]) -> list[dict]:
    """What Label Studio's full JSON export looks like after an annotator accepted the predictions:
    tasks with ids, annotations with result, completed_by, times."""
    out = []
    for i, t in enumerate(tasks, 1):
        res = copy.deepcopy(t["predictions"][0]["result"])
        res.append({"id": "ch", "from_name": "review", "to_name": "video", "type": "choices",
                    "value": {"choices": ["candidate_ok" if res else "no_visible_defect"]}})
        out.append({"id": 100 + i, "data": t["data"], "predictions": t["predictions"],
                    "annotations": [{"id": 500 + i, "result": res, "was_cancelled": False, "ground_truth": False,
                                     "completed_by": 1, "created_at": "2026-01-05T10:00:00.000000Z",
                                     "updated_at": "2026-01-05T10:00:00.000000Z", "lead_time": 12.5}]})
    return out


def test_labelstudio_export_files(smoke_out: Path) -> None:
    dest = _export(smoke_out)
    root = ET.fromstring((dest / "labelstudio" / "label_config.xml").read_text())
    video = root.find("Video[@name='video']")
    assert video is not None and video.get("value") == "$video" and video.get("frameRate") == "$fps"
    tl = root.find("TimelineLabels")
    assert tl.get("name") == "visible" and tl.get("toName") == "video"
    assert "no_visible_defect" in [c.get("value") for c in root.iter("Choice")]
    tasks = json.loads((dest / "labelstudio" / "tasks.json").read_text())
    clips = {c["clip_id"]: c for c in iter_jsonl(smoke_out / "clips.jsonl")}
    assert sorted(t["data"]["clip_id"] for t in tasks) == sorted(clips)
    for t in tasks:
        c = clips[t["data"]["clip_id"]]
        assert t["data"]["video"] == "/data/local-files/?d=" + c["video_marked"]
        assert t["data"]["video_unmarked"] == "/data/local-files/?d=" + c["video"]
        ranges = [r["value"]["ranges"][0] for r in t["predictions"][0]["result"]]
        # 1-based inclusive ranges == the clip's 0-based half-open diff intervals
        assert [[r["start"] - 1, r["end"]] for r in ranges] == c["intervals_frames"]["diff"]
        for r in t["predictions"][0]["result"]:
            assert r["type"] == "timelinelabels" and r["from_name"] == "visible" and r["to_name"] == "video"


def test_labelstudio_round_trip_gives_reviewed_qa(smoke_out: Path) -> None:
    dest = _export(smoke_out)
    tasks = json.loads((dest / "labelstudio" / "tasks.json").read_text())
    exp = _ls_export(tasks)
    # the annotator corrects the first defective clip: frames 4..15 (1-based inclusive) are visible
    target = next(t for t in exp if t["predictions"][0]["result"])
    cid = target["data"]["clip_id"]
    ann = target["annotations"][0]
    ann["result"] = [{"id": "r1", "from_name": "visible", "to_name": "video", "type": "timelinelabels",
                      "value": {"ranges": [{"start": 4, "end": 15}], "timelinelabels": ["defect_visible"]}},
                     {"id": "ch", "from_name": "review", "to_name": "video", "type": "choices",
                      "value": {"choices": ["corrected"]}}]
    ann["completed_by"] = {"id": 3, "email": "ann@example.org"}
    # a cancelled (skipped) annotation must not count
    target["annotations"].append({"id": 999, "result": [], "was_cancelled": True, "completed_by": 2,
                                  "created_at": "2026-01-06T00:00:00Z"})
    f = smoke_out / "ls_export.json"
    f.write_text(json.dumps(exp))
    assert main(["review", "import", str(f), "--config", str(SMOKE), "--out", str(smoke_out)]) == 0
    clip = next(c for c in iter_jsonl(smoke_out / "clips.jsonl") if c["clip_id"] == cid)
    rev = read_json(smoke_out / "annotations" / f"{clip['job_id']}.json")["reviewed"]
    s = clip["start_frame"]
    assert rev["clips"][cid]["intervals"] == [[s + 3, s + 15]]
    assert rev["clips"][cid]["by"] == "labelstudio:ann@example.org"
    assert rev["clips"][cid]["decision"] == "corrected"
    assert rev["clips"][cid]["at"] == "2026-01-05T10:00:00.000000Z"
    rows = _qa(smoke_out)
    assert all(r["provenance"] == "reviewed" for r in rows.values())   # every clip was reviewed
    fps = clip["fps"]
    assert rows[cid]["visible_intervals"] == [[round(3 / fps, 2), round(15 / fps, 2)]]
    # re-export: the page starts from the reviewed intervals and LS predictions keep the candidates
    page = (_export(smoke_out) / "review.html").read_text()
    assert '"reviewed":[[3,15]]' in page


def test_partial_review_keeps_other_clips_automatic(smoke_out: Path) -> None:
    clips = list(iter_jsonl(smoke_out / "clips.jsonl"))
    c = next(c for c in clips if c["intervals_frames"]["mask"])
    doc = {"format": "mmviad-review/1", "dataset": "smoke", "reviewer": "bo", "saved_at": "2026-01-07T09:00:00Z",
           "clips": [{"clip_id": c["clip_id"], "decision": "accepted", "num_frames": c["num_frames"],
                      "intervals": [[2, 9]], "candidates": c["intervals_frames"]["diff"]}]}
    f = smoke_out / "page.json"
    f.write_text(json.dumps(doc))
    r = import_reviews(f, smoke_out)
    assert r["decisions"] == {"corrected": 1}
    rows = _qa(smoke_out)
    for cid, row in rows.items():
        if cid == c["clip_id"]:
            assert row["provenance"] == "reviewed" and row["visible_intervals"] == [[0.2, 0.9]]
        else:
            assert row["provenance"] == "mask", cid   # the configured label_source
    # a second import replaces that clip's review and keeps the annotation valid
    doc["clips"][0].update(decision="rejected")
    f.write_text(json.dumps(doc))
    import_reviews(f, smoke_out)
    rows = _qa(smoke_out)
    assert rows[c["clip_id"]]["provenance"] == "mask"


def _page_doc(clips: list[dict], **over) -> dict:
    c = clips[0]
    entry = {"clip_id": c["clip_id"], "decision": "accepted", "num_frames": c["num_frames"],
             "intervals": [[1, 5]], "reviewed_at": "2026-01-07T09:00:00Z"}
    entry.update(over)
    return {"format": "mmviad-review/1", "dataset": "smoke", "reviewer": "bo", "saved_at": "2026-01-07T09:00:00Z",
            "clips": [{"clip_id": clips[1]["clip_id"], "decision": "accepted", "num_frames": clips[1]["num_frames"],
                       "intervals": [[0, 3]], "reviewed_at": "2026-01-07T09:00:00Z"}, entry]}


@pytest.mark.parametrize("over, msg", [
    ({"clip_id": "nope-0000-bulge-t0-c9"}, "unknown clip id"),
    ({"intervals": [[5, 2]]}, "inverted"),
    ({"intervals": [[0, 999]]}, "outside frames"),
    ({"intervals": [[0, 6], [4, 9]]}, "overlap"),
    ({"intervals": [[0.5, 3]]}, "whole frame"),
    ({"intervals": "0-3"}, "intervals"),
    ({"decision": "maybe"}, "decision"),
])
def test_bad_page_json_is_rejected_and_nothing_applied(smoke_out: Path, over: dict, msg: str) -> None:
    clips = list(iter_jsonl(smoke_out / "clips.jsonl"))
    before = {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")}
    f = smoke_out / "bad.json"
    f.write_text(json.dumps(_page_doc(clips, **over)))
    with pytest.raises(ReviewError, match=msg) as e:
        import_reviews(f, smoke_out)
    assert str(e.value).startswith("bad.json: ")
    after = {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")}
    assert after == before   # the good first clip was not applied either


def test_bad_labelstudio_exports_are_rejected(smoke_out: Path, capsys: pytest.CaptureFixture) -> None:
    tasks = json.loads((_export(smoke_out) / "labelstudio" / "tasks.json").read_text())
    good = _ls_export(tasks)
    f = smoke_out / "ls.json"

    def check(doc, msg: str) -> None:
        before = {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")}
        f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        assert main(["review", "import", str(f), "--config", str(SMOKE), "--out", str(smoke_out)]) == 2
        err = capsys.readouterr().err
        assert msg in err and "ls.json" in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert before == {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")}

    check("{not json", "not valid JSON")
    check({"tasks": []}, "neither a Label Studio")
    bad = copy.deepcopy(good)
    bad[-1]["data"]["clip_id"] = "ghost-0000-bulge-t0-c0"
    check(bad, f"task {bad[-1]['id']} (clip ghost-0000-bulge-t0-c0): unknown clip id")
    bad = copy.deepcopy(good)
    bad[-1]["annotations"][0]["result"] = [{"from_name": "visible", "to_name": "video", "type": "timelinelabels",
                                            "value": {"ranges": [{"start": 9, "end": 3}]}}]
    check(bad, "inverted")
    bad = copy.deepcopy(good)
    bad[-1]["annotations"][0]["result"] = [{"from_name": "visible", "to_name": "video", "type": "timelinelabels",
                                            "value": {"ranges": [{"start": 0, "end": 3}]}}]
    check(bad, "outside frames 1..20")
    bad = copy.deepcopy(good)
    bad[-1]["annotations"][0]["result"] = [
        {"from_name": "visible", "to_name": "video", "type": "timelinelabels", "value": {"ranges": [{"start": 1, "end": 8}]}},
        {"from_name": "visible", "to_name": "video", "type": "timelinelabels", "value": {"ranges": [{"start": 8, "end": 12}]}}]
    check(bad, "overlap")
    bad = copy.deepcopy(good)
    bad[-1]["annotations"][0]["result"] = [
        {"from_name": "visible", "to_name": "video", "type": "timelinelabels", "value": {"ranges": [{"start": 1, "end": 8}]}},
        {"from_name": "review", "to_name": "video", "type": "choices", "value": {"choices": ["no_visible_defect"]}}]
    check(bad, "no_visible_defect")
    bad = copy.deepcopy(good)
    bad[-1]["annotations"][0]["result"] = []
    check(bad, "no interval and no choice")
    bad = copy.deepcopy(good)
    del bad[-1]["annotations"][0]["created_at"], bad[-1]["annotations"][0]["updated_at"]
    check(bad, "no created_at")


@pytest.mark.parametrize("args, msg", [
    (["--url", "http://127.0.0.1:{port}", "--token", "abc"], "did not answer GET /api/projects/7/export"),
    (["--url", "localhost:8080", "--token", "abc"], "must start with http:// or https://"),
    (["--url", "http://127.0.0.1:{port}"], "no Label Studio API token"),
])
def test_pull_without_a_reachable_label_studio_fails_clearly(smoke_out: Path, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                             msg: str) -> None:
    from conftest import free_port

    port = free_port()
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    before = {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")}
    argv = ["review", "pull", "--config", str(SMOKE), "--out", str(smoke_out), "--project", "7",
            *[a.format(port=port) for a in args]]
    assert main(argv) == 2
    assert msg in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (smoke_out / "annotations").glob("*.json")} == before
