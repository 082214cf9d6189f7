"""Property-based fuzzing (hypothesis) of the three readers a user's hand reaches most: the config
loader, the review importer and the QA validator. For every generated input the result is either
valid or exactly one ``FILE: field: problem`` line (a ``ValueError`` of ours), never another
exception. Derandomized (the same examples every run) and bounded so the suite stays quick."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SMOKE
from pipeline.config import Config, ConfigError, load_config

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                          max_size=4), max_leaves=12)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict/list (for picking a place to mutate)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(obj: Any, path: tuple, value: Any, delete: bool) -> Any:
    obj = copy.deepcopy(obj)
    d = obj
    for k in path[:-1]:
        d = d[k]
    if delete and isinstance(d, dict):
        d.pop(path[-1], None)
    else:
        d[path[-1]] = value
    return obj


def _one_line(e: BaseException, start: str) -> None:
    msg = str(e)
    assert "\n" not in msg and msg.startswith(start), msg
    assert ": " in msg[len(start):] or msg[len(start):].startswith(":"), msg


# ---- config loader ------------------------------------------------------------------------------------

BASE_CFG = yaml.safe_load(SMOKE.read_text())


def _load(text: bytes) -> Config | None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.yaml"
        p.write_bytes(text)
        try:
            return load_config(p)
        except ConfigError as e:
            _one_line(e, str(p))
            return None


#: values of another kind than the one a key wants (YAML writes them as a user would type them)
odd_values = st.sampled_from([True, False, "8", "0.5", "yes", 8.0, None, [], {}, "vase0\n", float("nan")])
def _leaves(obj: Any) -> list[tuple]:
    return [p for p in _paths(obj) if not isinstance(_get(obj, p), (dict, list))]


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


@settings(FUZZ, max_examples=300)
@given(data=st.data(), odd=st.booleans(), delete=st.booleans())
def test_fuzz_config_values(data: st.DataObject, odd: bool, delete: bool) -> None:
    """The smoke config with one value replaced by one of another kind, or by anything, or removed."""
    path = data.draw(st.sampled_from(_leaves(BASE_CFG) if odd else _paths(BASE_CFG)))
    value = data.draw(odd_values if odd else json_values)
    doc = _mutate(BASE_CFG, path, value, delete and not odd)
    cfg = _load(yaml.safe_dump(doc, allow_unicode=True).encode())
    if cfg is not None:   # accepted: every value kept its kind (no true → 1, no "8" → 8)
        _same_kind(doc, cfg.model_dump(mode="json"))


def _same_kind(given: Any, loaded: Any) -> None:
    """Every value of ``given`` is in ``loaded`` as the same kind (bool, number, text, list, mapping)."""
    def kind(v: Any) -> str:
        return ("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else
                "list" if isinstance(v, (list, tuple)) else type(v).__name__)
    assert kind(given) == kind(loaded), (given, loaded)
    if isinstance(given, dict):
        for k, v in given.items():
            _same_kind(v, loaded[k])
    elif isinstance(given, list):
        assert len(given) == len(loaded)
        for a, b in zip(given, loaded):
            _same_kind(a, b)


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_config_raw_text(text: str | bytes) -> None:
    _load(text if isinstance(text, bytes) else text.encode())


@FUZZ
@given(lines=st.lists(st.sampled_from(SMOKE.read_text().splitlines() + ["render:", "  samples: 2", "seed: 1",
                                                                         "  - x", "name: t", "]", "  fps: 10"]),
                      max_size=40))
def test_fuzz_config_shuffled_lines(lines: list[str]) -> None:
    """Lines of a real config, repeated, dropped and reordered (duplicate sections, broken indentation)."""
    _load("\n".join(lines).encode())


# ---- review importer --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def review_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset folder without renders: one job's annotation and its three clips' index."""
    from pipeline.clips import clip_records, gather_clips
    from pipeline.io import write_json
    from pipeline.records import Annotation, Clip, parse

    out = tmp_path_factory.mktemp("review_fuzz")
    cfg = load_config(SMOKE)
    jid = "vase0-0000-bulge-t0"
    scores = [0] * 10 + [9] * 30 + [0] * 20
    ann = {"format_version": 2, "job_id": jid, "fps": 10, "num_frames": 60, "clip_frames": 20, "width": 64,
           "height": 36, "threshold_px": 2.0, "params": cfg.annotate.model_dump(mode="json"),
           "mask": {"scores": scores, "intervals": [[10, 40]]}, "diff": {"scores": scores, "intervals": [[10, 40]]},
           "agreement": {"iou": 1.0, "clip_iou": [1.0, 1.0, 1.0], "disagree_spans": [], "missed_spans": [],
                         "spurious_spans": [], "pixels": {"both": 270, "diff": 270, "mask": 270, "precision": 1.0,
                                                          "recall": 1.0}}}
    write_json(out / "annotations" / f"{jid}.json", parse(Annotation, ann, "fixture").to_json(), indent=None)
    recs = clip_records({"job_id": jid, "camera": {"start_azimuth_deg": 0.0}}, ann, cfg)
    write_json(out / "clips" / f"{jid}.clips.json", [parse(Clip, r, "fixture").to_json() for r in recs], indent=None)
    gather_clips(out)
    return out


CLIP_IDS = [f"vase0-0000-bulge-t0-c{i}" for i in range(3)]
#: what a value might become in a hand-edited or foreign export
special = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e300, -1e300, 2**80, 2.5, 4.0, True, False,
                           "3", "", None, [], {}, -1, 0, 21, "vase0-0000-bulge-t0-c9"])
frames = st.integers(1, 20)


@st.composite
def ls_exports(draw: st.DrawFn) -> list[dict]:
    """A well-formed Label Studio export of some of the clips (ranges 1-based inclusive)."""
    doc = []
    for k, cid in enumerate(draw(st.lists(st.sampled_from(CLIP_IDS), min_size=1, max_size=3))):
        a, b = sorted((draw(frames), draw(frames)))
        choice = draw(st.sampled_from(["candidate_ok", "corrected", "unsure", None]))
        res = [{"from_name": "visible", "to_name": "video", "type": "timelinelabels",
                "value": {"ranges": [{"start": a, "end": b}], "timelinelabels": ["defect_visible"]}}]
        if choice:
            res.append({"from_name": "review", "to_name": "video", "type": "choices", "value": {"choices": [choice]}})
        doc.append({"id": 100 + k, "data": {"clip_id": cid, "num_frames": 20},
                    "annotations": [{"id": 500 + k, "result": res, "was_cancelled": False, "completed_by": 1,
                                     "created_at": "2026-01-05T10:00:00Z"}]})
    return doc


@st.composite
def pages(draw: st.DrawFn) -> dict:
    """A well-formed download of the review page (intervals 0-based half-open)."""
    clips = []
    for cid in draw(st.lists(st.sampled_from(CLIP_IDS), min_size=1, max_size=3, unique=True)):
        a, b = sorted(draw(st.lists(st.integers(0, 20), min_size=2, max_size=2, unique=True)))
        clips.append({"clip_id": cid, "decision": draw(st.sampled_from(["accepted", "rejected"])), "num_frames": 20,
                      "intervals": [[a, b]], "reviewed_at": "2026-01-07T09:00:00Z"})
    return {"format": "mmviad-review/1", "reviewer": "bo", "saved_at": "2026-01-07T09:00:00Z", "clips": clips}


#: what a frame number might become in a hand-edited or foreign file
odd_numbers = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e300, 2**80, -1, 2.5, 4.0, True, "3", None])


@st.composite
def review_docs(draw: st.DrawFn) -> Any:
    """A well-formed review file with one frame number made odd, or with up to three values
    replaced or removed anywhere, or anything at all."""
    doc = draw(ls_exports() | pages())
    mode = draw(st.sampled_from(["frame", "anywhere", "anything"]))
    if mode == "anything":
        return draw(json_values)
    if mode == "frame":
        frames_at = [p for p in _paths(doc) if any(k in ("ranges", "intervals") for k in p[:-1])
                     and isinstance(p[-1], (int, str)) and p[-1] in (0, 1, "start", "end")]
        return _mutate(doc, draw(st.sampled_from(frames_at)), draw(odd_numbers), False)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(doc)
        if not places:
            break
        doc = _mutate(doc, draw(st.sampled_from(places)), draw(special | json_values), draw(st.booleans()))
    return doc


@settings(FUZZ, max_examples=300)
@given(doc=review_docs(), raw=st.none() | st.none() | st.none() | st.binary(max_size=60))
def test_fuzz_review_import(review_out: Path, doc: Any, raw: bytes | None) -> None:
    from pipeline.records import read_annotation
    from pipeline.review.importer import import_reviews

    ann = review_out / "annotations" / "vase0-0000-bulge-t0.json"
    before = ann.read_bytes()
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "review.json"
        f.write_bytes(raw if raw is not None else json.dumps(doc).encode())
        try:
            r = import_reviews(f, review_out, default_by=None)
        except ValueError as e:     # ReviewError, RecordError, DataError
            _one_line(e, "review.json")
            assert ann.read_bytes() == before      # all or nothing
            return
    assert r["reviews"] >= 0
    read_annotation(ann, "vase0-0000-bulge-t0")    # what was written reads back as a valid record
    ann.write_bytes(before)


# ---- QA validator ------------------------------------------------------------------------------------------

def _valid_record() -> dict:
    from pipeline.qa import qa_record

    clip = {"clip_id": "vase0-0000-bulge-t0-c1", "job_id": "vase0-0000-bulge-t0", "clip_index": 1,
            "video": "clips/vase0-0000-bulge-t0-c1.mp4", "video_marked": "clips/vase0-0000-bulge-t0-c1.marked.mp4",
            "fps": 30, "num_frames": 60, "duration": 2.0, "intervals": {"mask": [[0.4, 1.0], [1.5, 2.0]]}}
    job = {"job_id": "vase0-0000-bulge-t0", "category": "vase0", "group": "vase", "defect": "bulge",
           "material": {"name": "plastic"}, "environment": {"kind": "sky"}}
    return qa_record(clip, job, ["bottle", "bowl", "cup", "vase", "cap"], "mask", "train", seed=1)


VALID = _valid_record()


@FUZZ
@given(data=st.data(), value=json_values, delete=st.booleans())
def test_fuzz_qa_validator_mutations(data: st.DataObject, value: Any, delete: bool) -> None:
    from pipeline.qa import validate_qa_record
    from pipeline.records import QARecord

    path = data.draw(st.sampled_from(_paths(VALID)))
    rec = _mutate(VALID, path, value, delete)
    problems = validate_qa_record(rec)
    assert isinstance(problems, list) and all(isinstance(p, str) and "\n" not in p and ": " in p for p in problems)
    if not problems:   # accepted: a record that reads back to the same JSON
        assert QARecord.model_validate(rec).to_json() == rec


@FUZZ
@given(rec=json_values)
def test_fuzz_qa_validator_anything(rec: Any) -> None:
    from pipeline.qa import validate_qa_record

    problems = validate_qa_record(rec)
    assert problems and all(isinstance(p, str) and "\n" not in p for p in problems)
