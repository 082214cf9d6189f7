"""pipeline/records.py: the typed records are the files' contract. Every file of a real smoke
build (and an annotation with a review) reads back into its record and writes out to the same
bytes; strict types and the cross-field rules refuse what the stages must not write."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pipeline.records import (Annotation, Clip, QARecord, RecordError, check, iter_records, parse, read_annotation,
                              read_clip_index, unique)


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_every_file_of_a_build_round_trips_to_the_same_bytes(smoke_out: Path) -> None:
    from pipeline.review.importer import import_reviews

    # a review, so that an annotation holds the optional `reviewed` block
    c = json.loads((smoke_out / "clips.jsonl").read_text().splitlines()[1])
    page = {"format": "mmviad-review/1", "dataset": "smoke", "reviewer": "bo", "saved_at": "2026-01-07T09:00:00Z",
            "clips": [{"clip_id": c["clip_id"], "decision": "accepted", "num_frames": c["num_frames"],
                       "intervals": [[2, 9]], "note": "edge"}]}
    (smoke_out / "page.json").write_text(json.dumps(page))
    import_reviews(smoke_out / "page.json", smoke_out)
    n = 0
    for f in sorted((smoke_out / "annotations").glob("*.json")):
        ann = read_annotation(f, f.stem)
        assert json.dumps(ann.to_json(), sort_keys=True, ensure_ascii=True) + "\n" == f.read_text(), f
        n += ann.reviewed is not None
    assert n == 1
    for f in sorted((smoke_out / "clips").glob("*.clips.json")):
        recs = read_clip_index(f, f.name.removesuffix(".clips.json"))
        assert json.dumps([r.to_json() for r in recs], sort_keys=True, ensure_ascii=True) + "\n" == f.read_text()
    for f, model in [(smoke_out / "clips.jsonl", Clip), *((p, QARecord) for p in sorted(smoke_out.glob("qa/*/*.jsonl")))]:
        lines = f.read_text().splitlines()
        got = [_canonical(r.to_json()) for _, r in iter_records(model, f)]
        assert got == lines and lines, f


def _clip() -> dict:
    return {"clip_id": "vase0-0000-bulge-t0-c1", "job_id": "vase0-0000-bulge-t0", "clip_index": 1,
            "video": "clips/vase0-0000-bulge-t0-c1.mp4", "video_marked": "clips/vase0-0000-bulge-t0-c1.marked.mp4",
            "fps": 10, "num_frames": 20, "duration": 2.0, "start_frame": 20, "end_frame": 40,
            "azimuth_deg": [10.0, 130.0], "intervals_frames": {"mask": [[3, 9]], "diff": [[3, 9], [12, 20]]},
            "intervals": {"mask": [[0.3, 0.9]], "diff": [[0.3, 0.9], [1.2, 2.0]]}}


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.update(fps=True), "fps"),                                   # no bool → int
    (lambda c: c.update(fps="10"), "fps"),                                   # no str → int
    (lambda c: c.update(fps=10.0), "fps"),                                   # no float → int
    (lambda c: c.update(duration=float("nan")), "duration"),
    (lambda c: c.update(azimuth_deg=[0.0, float("inf")]), "azimuth_deg[1]"),
    (lambda c: c.update(extra=1), "extra"),
    (lambda c: c.update(fps=None), "fps"),
    (lambda c: c["intervals_frames"].update(mask=[[9, 3]]), "intervals_frames.mask[0]"),
    (lambda c: c["intervals_frames"].update(mask=[[3, 9], [5, 12]]), "intervals_frames.mask[1]"),
    (lambda c: c["intervals_frames"].update(mask=[[3, 21]]), "intervals_frames.mask[0]"),
    (lambda c: c["intervals"].update(mask=[[0.3, 1.0]]), "intervals.mask"),  # seconds must be the frames'
    (lambda c: c.update(start_frame=0), "end_frame"),
    (lambda c: c.update(clip_id="vase0-0000-bulge-t0-c1\n"), "clip_id"),       # full match, no "$" hole
    (lambda c: c.update(video="../../etc/passwd"), "video"),
    (lambda c: c["intervals"].pop("diff"), "intervals"),
])
def test_clip_is_strict(edit, field) -> None:
    c = _clip()
    assert check(Clip, c) == (Clip.model_validate(c), [])
    bad = copy.deepcopy(c)
    edit(bad)
    rec, problems = check(Clip, bad)
    assert rec is None and any(p.startswith(field) for p in problems), problems


def test_parse_names_where_and_counts_the_rest() -> None:
    bad = {**_clip(), "fps": True, "num_frames": "20"}
    with pytest.raises(RecordError) as e:
        parse(Clip, bad, "x.clips.json: clip 1")
    assert str(e.value).startswith("x.clips.json: clip 1: fps: ") and "(and 1 more problem)" in str(e.value)


def test_nested_cross_field_problems_are_prefixed() -> None:
    from pipeline.records import ClipReviewEntry

    entry = {"decision": "no_visible_defect", "intervals": [[1, 4]], "by": "bo", "at": "t", "source": "s"}
    _, problems = check(ClipReviewEntry, entry)
    assert problems == ["intervals: 'no_visible_defect' with intervals"]
    ann_problems = check(Annotation, {"reviewed": {"intervals": [], "by": None, "at": None, "source": None,
                                                    "clips": {"j-c0": entry}}})[1]
    assert "reviewed.clips.j-c0.intervals: 'no_visible_defect' with intervals" in ann_problems


def test_unique_finds_the_first_repeat() -> None:
    assert unique([("a", "1"), ("b", "2"), ("a", "3"), ("b", "4")]) == ("a", "1", "3")
    assert unique((str(i), str(i)) for i in range(100_000)) is None


# ---- job ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planned_jobs(tmp_path_factory) -> list[dict]:
    from pipeline.config import load_config
    from pipeline.io import read_jsonl
    from pipeline.plan import write_plan

    root = Path(__file__).resolve().parents[1]
    path = write_plan(load_config(root / "manifests" / "smoke.yaml"), tmp_path_factory.mktemp("plan"), progress=False)
    return read_jsonl(path)


def test_planned_jobs_round_trip_to_the_same_bytes(planned_jobs) -> None:
    from pipeline.records import Job

    for j in planned_jobs:
        assert _canonical(parse(Job, j, "jobs.jsonl").to_json()) == _canonical(j)


@pytest.mark.parametrize("edit, message", [
    (lambda j: j["pose"].update(yaw_deg="ninety"), "pose.yaw_deg: expected a finite number, got 'ninety'"),
    (lambda j: j.update(defect="dent"), "defect: 'dent' is not null or one of crack, scratch"),
    (lambda j: j.pop("camera"), "camera: missing field"),
    (lambda j: [j.pop("camera"), j.pop("seeds")], "camera: missing field (also seeds)"),
    (lambda j: j.update(material=[0.5, 0.5, 0.5]), "material: expected an object, got list"),
    (lambda j: j.update(pose=[0.5]), "pose: expected an object, got list"),
    (lambda j: j["pose"].update(scale=-1.0), "pose.scale: must be > 0.0, got -1.0"),
    (lambda j: j["camera"].update(lens_mm=float("inf")), "camera.lens_mm: expected a finite number, got inf"),
    (lambda j: j["seeds"].update(cycles=True), "seeds.cycles: expected a non-negative integer, got True"),
    (lambda j: j.update(shard=-1), "shard: expected a non-negative integer, got -1"),
    (lambda j: j.update(group=""), "group: expected a non-empty string, got ''"),
    (lambda j: j.update(category="Vase"), "category: 'Vase' is not a valid id"),
    (lambda j: j["object"].update(source="shapenet"), "object.source: 'shapenet' is not procedural or anomaly_shapenet"),
    (lambda j: j["object"]["defect_params"].update(kind="hole"),
     "object.defect_params: kind 'hole' does not match defect"),
])
def test_job_is_checked_with_the_field_named(planned_jobs, edit, message) -> None:
    from pipeline.plan import check_job

    job = copy.deepcopy(next(j for j in planned_jobs if j["defect"]))
    check_job(job)
    edit(job)
    with pytest.raises(ValueError) as e:
        check_job(job)
    assert str(e.value).startswith(message), str(e.value)


def test_job_keeps_keys_it_does_not_know(planned_jobs) -> None:
    """Looks and sources carry keys of their own: they pass through unchanged (only the named
    fields are checked), as they did before the record existed."""
    from pipeline.records import Job

    job = copy.deepcopy(planned_jobs[0])
    job["camera"]["fstop"] = 2.8
    job["note"] = "edited"
    assert parse(Job, job, "x").to_json() == job
