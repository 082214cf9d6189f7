"""Bad-input corpus (issue 16): inputs a new user might feed the commands, each checked through
``mmviad`` itself (in-process ``main``, so any escaping exception fails the test) or through the
QA validator's API. The contract for every case:

- ``fatal``: exit 2 and exactly ONE stderr line, ``mmviad: ...``, naming the file (and line, task
  or clip) and the field; nothing the command would have written is changed;
- ``job``: the stage exits 1, the bad job's ``FAILED`` line names the file and field, the other
  jobs are untouched;
- ``qa``: :func:`pipeline.qa.validate_qa_record` returns ``field: problem`` lines (never raises).

The slower kinds (broken meshes and GT files through a real render, read-only and full disks)
live in ``tests/test_bad_input.py``; ``tests/test_fuzz.py`` adds generated inputs.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import SMOKE
from pipeline.cli import main

BASE = "name: t\nobjects:\n  categories: [vase0, cup0, bowl0]\n"


@dataclass
class Ctx:
    """What a case may build on: a private folder and (lazily) a private copy of the smoke build."""
    tmp: Path
    get_smoke: Callable[[], Path]
    files: dict[str, Any] = field(default_factory=dict)
    _smoke: Path | None = None

    @property
    def smoke(self) -> Path:
        if self._smoke is None:
            self._smoke = self.get_smoke()
        return self._smoke


@dataclass(frozen=True)
class Case:
    kind: str                                   # fatal | job
    build: Callable[[Ctx], tuple[list[str], list[str]]]   # → (argv, needles the line must hold)
    job: str | None = None                      # job kind: the job that must fail


CASES: dict[str, Case] = {}


def case(name: str, kind: str = "fatal", job: str | None = None):
    def deco(fn):
        assert name not in CASES
        CASES[name] = Case(kind, fn, job)
        return fn
    return deco


# ---- config files (`mmviad plan --config FILE`) -----------------------------------------------------

def _plan(ctx: Ctx, text: str | bytes, *needles: str) -> tuple[list[str], list[str]]:
    p = ctx.tmp / "c.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return ["plan", "--config", str(p), "--out", str(ctx.tmp / "out"), "--no-progress"], [str(p), *needles]


CONFIG_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "dup_top_level_key": (BASE + "seed: 1\nseed: 2\n", ("seed", "duplicate")),
    "repeated_render_section": (BASE + "render:\n  samples: 4\nrender:\n  fps: 10\n", ("render", "duplicate")),
    "dup_nested_key": (BASE + "render:\n  samples: 4\n  samples: 8\n", ("render.samples", "duplicate")),
    "dup_key_in_flow_mapping": (BASE + "scene:\n  visibility: {predict: true, predict: false}\n",
                                ("scene.visibility.predict", "duplicate")),
    "bool_for_int": (BASE + "render:\n  samples: true\n", ("render.samples",)),
    "string_for_int": (BASE + "render:\n  samples: \"8\"\n", ("render.samples",)),
    "float_for_int": (BASE + "render:\n  width: 640.0\n", ("render.width",)),
    "bool_for_float": (BASE.replace("bowl0]", "bowl0]\n  normal_share: true"), ("objects.normal_share",)),
    "string_for_float": (BASE.replace("bowl0]", "bowl0]\n  normal_share: \"0.5\""), ("objects.normal_share",)),
    "string_for_bool": (BASE + "render:\n  persistent_data: \"yes\"\n", ("render.persistent_data",)),
    "int_for_bool": (BASE + "scene:\n  visibility:\n    predict: 1\n", ("scene.visibility.predict",)),
    "bool_seed": (BASE + "seed: true\n", ("seed",)),
    "seed_too_large": (BASE + "seed: 9223372036854775808\n", ("seed",)),
    "orbit_not_a_multiple_of_the_clip": (BASE + "render:\n  fps: 10\n  orbit_frames: 50\n", ("render.orbit_frames",)),
    "clip_not_whole_frames": (BASE + "render:\n  fps: 10\n  clip_seconds: 0.15\n", ("render", "clip_seconds")),
    "name_with_newline": ("name: \"t\\n\"\nobjects:\n  categories: [vase0]\n", ("name",)),
    "category_with_newline": ("name: t\nobjects:\n  categories: [\"vase0\\n\", cup0]\n", ("objects.categories",)),
    "unseen_category_with_newline": (BASE + "qa:\n  unseen_categories: [\"vase0\\n\"]\n", ("qa.unseen_categories",)),
    "latin1_bytes": (b"name: t\nobjects:\n  categories: [vase0]\n# caf\xe9\n", ("UTF-8",)),
    "nul_bytes": (b"name: t\x00\nobjects:\n  categories: [vase0]\n", ()),
    "deep_yaml_list": (BASE + "x: " + "[" * 20000 + "]" * 20000 + "\n", ("nest",)),
    "deep_yaml_mapping": (BASE + "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n",
                          ("nest",)),
    "unknown_category": ("name: t\nobjects:\n  categories: [vase0, teapot9]\n", ("objects.categories", "teapot9")),
    "empty_file": ("", ("mapping",)),
    "top_level_list": ("- 1\n- 2\n", ("mapping",)),
    "section_is_a_scalar": (BASE + "render: 5\n", ("render",)),
    "bool_defect_weight": (BASE.replace("bowl0]", "bowl0]\n  defects: {bulge: true}"), ("objects.defects",)),
    "range_as_string": (BASE + "scene:\n  yaw_deg: \"0, 360\"\n", ("scene.yaw_deg",)),
    "range_with_three_values": (BASE + "scene:\n  yaw_deg: [0, 90, 360]\n", ("scene.yaw_deg",)),
    "categories_as_a_string": ("name: t\nobjects:\n  categories: vase0\n", ("objects.categories",)),
    "missing_name": ("objects:\n  categories: [vase0]\n", ("name",)),
    "unknown_top_level_key": (BASE + "rendr:\n  samples: 2\n", ("rendr", "unknown key")),
    "yaml_syntax_error": ("name: [unclosed\nobjects: {}\n", ("c.yaml:2: not valid YAML",)),
    "tab_indentation": ("name: t\nobjects:\n\tcategories: [vase0]\n", ("c.yaml:3: not valid YAML",)),
    "several_errors_still_one_line": (BASE + "seed: -1\nrender:\n  fps: 0\n  samples: 0\n", ("seed",)),
    "alias_bomb": (BASE + "bomb: &a [x, x, x, x, x, x, x, x, x]\n"
                   + "".join(f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 9) + "]\n"
                             for i in range(9)), ("bomb", "unknown key")),
    "non_string_key": (BASE + "render:\n  1: 2\n", ("render",)),
    "profile_is_a_list": (BASE + "render:\n  profile: [paper]\n", ("render.profile",)),
    "unknown_profile": (BASE + "render:\n  profile: film\n", ("render.profile",)),
    "nan_range_bound": (BASE + "scene:\n  tilt_deg: [.nan, 2]\n", ("scene.tilt_deg",)),
    "unknown_label_map_target": ("name: t\nobjects:\n  categories: [vase0]\n  source: {kind: anomaly_shapenet, "
                                 "root: /x, label_map: {bending: twisted}}\n", ("objects.source.label_map",)),
}


for _name, (_text, _needles) in CONFIG_CASES.items():
    case(f"config_{_name}")(lambda ctx, t=_text, n=_needles: _plan(ctx, t, *n))


@case("config_is_a_folder")
def _(ctx: Ctx):
    return ["plan", "--config", str(ctx.tmp), "--out", str(ctx.tmp / "out")], [str(ctx.tmp), "is a folder"]


# ---- command-line arguments ---------------------------------------------------------------------------

@case("cli_negative_workers")
def _(ctx: Ctx):
    return ["render", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--workers", "-1"], ["--workers"]


@case("cli_zero_shards")
def _(ctx: Ctx):
    return ["render", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--num-shards", "0"], ["--num-shards"]


@case("cli_negative_shard")
def _(ctx: Ctx):
    return ["annotate", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--shard", "-1"], ["--shard"]


@case("cli_shard_out_of_range")
def _(ctx: Ctx):
    return ["annotate", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--shard", "5"], ["--shard 5"]


@case("cli_too_many_workers")
def _(ctx: Ctx):
    return ["render", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--workers", "100001"], \
        ["--workers 100001", "render.workers"]


@case("cli_not_a_number")
def _(ctx: Ctx):
    return ["render", "--config", str(SMOKE), "--out", str(ctx.tmp / "o"), "--workers", "many"], ["--workers"]


# ---- job files (`--jobs FILE`) --------------------------------------------------------------------------

def _jobs_file(ctx: Ctx, content: str | bytes, *needles: str, stage: str = "annotate"):
    p = ctx.tmp / "jobs.jsonl"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return [stage, "--config", str(SMOKE), "--out", str(ctx.smoke), "--jobs", str(p), "--no-progress"], \
        [str(p), *needles]


@case("jobs_empty_file")
def _(ctx: Ctx):
    return _jobs_file(ctx, "", "no jobs", stage="render")


@case("jobs_blank_lines_only")
def _(ctx: Ctx):
    return _jobs_file(ctx, "\n  \n\n", "no jobs", stage="render")


@case("jobs_not_utf8")
def _(ctx: Ctx):
    return _jobs_file(ctx, b'{"job_id": "caf\xe9"}\n', "UTF-8")


@case("jobs_deep_nesting")
def _(ctx: Ctx):
    return _jobs_file(ctx, "[" * 100_000 + "]" * 100_000 + "\n", ":1", "nest")


@case("jobs_id_with_newline")
def _(ctx: Ctx):
    return _jobs_file(ctx, json.dumps({"job_id": "vase0-0000-good-t0\n"}) + "\n", ":1", "job_id")


@case("jobs_file_is_a_folder")
def _(ctx: Ctx):
    return ["annotate", "--config", str(SMOKE), "--out", str(ctx.smoke), "--jobs", str(ctx.tmp)], [str(ctx.tmp)]


def _edited_jobs(ctx: Ctx, edit: Callable[[dict], None]) -> tuple[list[str], list[str]]:
    jobs = [json.loads(x) for x in (ctx.smoke / "jobs.jsonl").read_text().splitlines()]
    edit(jobs[0])
    p = ctx.tmp / "edited.jsonl"
    p.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    ctx.files["job"] = jobs[0]["job_id"]
    return ["annotate", "--config", str(SMOKE), "--out", str(ctx.smoke), "--jobs", str(p), "--no-progress"], \
        [f"{p}:1", "pose.yaw_deg"]


@case("jobs_nan_in_a_job", kind="job")
def _(ctx: Ctx):
    return _edited_jobs(ctx, lambda j: j["pose"].update(yaw_deg=float("nan")))


@case("jobs_infinity_in_a_job", kind="job")
def _(ctx: Ctx):
    return _edited_jobs(ctx, lambda j: j["pose"].update(yaw_deg=float("inf")))


# ---- clip indexes read by `mmviad qa` -------------------------------------------------------------------

def _clip_index(ctx: Ctx, edit: Callable[[list], Any], *needles: str, raw: str | None = None):
    f = sorted((ctx.smoke / "clips").glob("*.clips.json"))[0]
    if raw is None:
        doc = json.loads(f.read_text())
        edit(doc)
        raw = json.dumps(doc)
    f.write_text(raw)
    return ["qa", "--config", str(SMOKE), "--out", str(ctx.smoke), "--no-progress"], [str(f), *needles]


def _first_clip(fn: Callable[[dict], None]) -> Callable[[list], None]:
    return lambda doc: fn(doc[0])


@case("clips_inverted_interval")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c["intervals_frames"].update(mask=[[9, 3]])),
                       "intervals_frames.mask[0]")


@case("clips_interval_past_the_clip")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c["intervals_frames"].update(mask=[[0, 99]])),
                       "intervals_frames.mask")


@case("clips_missing_fps")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c.pop("fps")), "fps", "missing")


@case("clips_missing_num_frames")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c.pop("num_frames")), "num_frames", "missing")


@case("clips_not_json")
def _(ctx: Ctx):
    return _clip_index(ctx, lambda d: None, "not valid JSON", raw="[{\"clip_id\": ")


@case("clips_nan_duration")
def _(ctx: Ctx):
    return _clip_index(ctx, lambda d: None, "duration", raw=json.dumps(
        [{**c, "duration": float("nan")} for c in json.loads(
            sorted((ctx.smoke / "clips").glob("*.clips.json"))[0].read_text())]))


@case("clips_not_a_list")
def _(ctx: Ctx):
    return _clip_index(ctx, lambda d: None, "list", raw="{}")


@case("clips_unknown_field")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c.update(colour="red")), "colour", "unknown field")


@case("clips_wrong_clip_id")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c.update(clip_id=c["clip_id"] + "x")), "clip_id")


@case("clips_string_fps")
def _(ctx: Ctx):
    return _clip_index(ctx, _first_clip(lambda c: c.update(fps="10")), "fps")


# ---- annotation files read by `mmviad clips` and `mmviad annotate` ---------------------------------------

def _annotation(ctx: Ctx, edit: Callable[[dict], Any] | None, *needles: str, raw: bytes | None = None,
                stage: str = "clips"):
    f = sorted((ctx.smoke / "annotations").glob("*.json"))[0]
    ctx.files["job"] = f.stem
    if raw is None:
        doc = json.loads(f.read_text())
        edit(doc)
        raw = json.dumps(doc).encode()
    f.write_bytes(raw)
    return [stage, "--config", str(SMOKE), "--out", str(ctx.smoke), "--no-progress"], [str(f), *needles]


@case("annotation_corrupt", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, None, "not valid JSON", raw=b'{"format_version": 2, "mask": ')


@case("annotation_corrupt_at_annotate", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, None, "not valid JSON", raw=b"\x00\x00\x00", stage="annotate")


@case("annotation_nan_threshold", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a.update(threshold_px=float("nan")), "threshold_px")


@case("annotation_missing_mask", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a.pop("mask"), "mask", "missing")


@case("annotation_inverted_interval", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a["mask"].update(intervals=[[30, 10]]), "mask.intervals[0]")


@case("annotation_old_format", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a.update(format_version=1), "format_version")


@case("annotation_not_utf8", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, None, "UTF-8", raw=b'{"job_id": "caf\xe9"}')


@case("annotation_scores_wrong_length", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a["mask"].update(scores=a["mask"]["scores"][:5]), "mask.scores")


@case("annotation_of_another_job", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a.update(job_id="vase9-0000-good-t0"), "job_id")


@case("annotation_deep_nesting", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, None, "nest", raw=b"[" * 200_000 + b"]" * 200_000)


@case("annotation_null_reviewed_intervals", kind="job")
def _(ctx: Ctx):
    return _annotation(ctx, lambda a: a.update(reviewed={"intervals": None, "by": "x", "at": "t", "source": "s",
                                                         "clips": {}}), "reviewed.intervals")


# ---- review files (`mmviad review import FILE`) -------------------------------------------------------------

def _clips(ctx: Ctx) -> list[dict]:
    return [json.loads(x) for x in (ctx.smoke / "clips.jsonl").read_text().splitlines()]


def _ls_export(ctx: Ctx, ranges: list[dict] | None = None, n: int = 2) -> list[dict]:
    """A Label Studio export of the first ``n`` clips; the last task carries ``ranges``."""
    out = []
    for i, c in enumerate(_clips(ctx)[:n], 1):
        rg = ranges if (ranges is not None and i == n) else [{"start": 2, "end": 6}]
        out.append({"id": 100 + i, "data": {"clip_id": c["clip_id"], "num_frames": c["num_frames"]},
                    "annotations": [{"id": 500 + i, "was_cancelled": False, "completed_by": 1,
                                     "created_at": "2026-01-05T10:00:00Z",
                                     "result": [{"from_name": "visible", "to_name": "video", "type": "timelinelabels",
                                                 "value": {"ranges": rg, "timelinelabels": ["defect_visible"]}}]}]})
    return out


def _page(ctx: Ctx, intervals: Any) -> dict:
    c = _clips(ctx)[0]
    return {"format": "mmviad-review/1", "dataset": "smoke", "reviewer": "bo", "saved_at": "2026-01-07T09:00:00Z",
            "clips": [{"clip_id": c["clip_id"], "decision": "accepted", "num_frames": c["num_frames"],
                       "intervals": intervals}]}


def _review(ctx: Ctx, doc: Any, *needles: str, raw: bytes | None = None):
    f = ctx.tmp / "review.json"
    f.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return ["review", "import", str(f), "--config", str(SMOKE), "--out", str(ctx.smoke)], ["review.json", *needles]


@case("review_infinity_in_a_range")
def _(ctx: Ctx):
    return _review(ctx, None, "task 102", "end", raw=json.dumps(_ls_export(ctx, [{"start": 1, "end": float("inf")}])).encode())


@case("review_nan_in_a_page_interval")
def _(ctx: Ctx):
    return _review(ctx, None, "interval 0", raw=json.dumps(_page(ctx, [[float("nan"), 4]])).encode())


@case("review_huge_number")
def _(ctx: Ctx):
    return _review(ctx, _ls_export(ctx, [{"start": 1, "end": 1e300}]), "task 102", "outside")


@case("review_string_frame")
def _(ctx: Ctx):
    return _review(ctx, _ls_export(ctx, [{"start": "3", "end": 6}]), "task 102", "whole frame")


@case("review_bool_frame")
def _(ctx: Ctx):
    return _review(ctx, _ls_export(ctx, [{"start": True, "end": 6}]), "task 102", "whole frame")


@case("review_duplicate_clip")
def _(ctx: Ctx):
    doc = _ls_export(ctx)
    doc.append({**copy.deepcopy(doc[0]), "id": 999})
    return _review(ctx, doc, doc[0]["data"]["clip_id"], "more than one task")


@case("review_deep_nesting")
def _(ctx: Ctx):
    return _review(ctx, None, "nest", raw=b"[" * 200_000 + b"]" * 200_000)


@case("review_not_utf8")
def _(ctx: Ctx):
    return _review(ctx, None, "UTF-8", raw=b'[{"id": "caf\xe9"}]')


@case("review_top_level_number")
def _(ctx: Ctx):
    return _review(ctx, 42, "neither")


@case("review_annotations_not_a_list")
def _(ctx: Ctx):
    doc = _ls_export(ctx)
    doc[1]["annotations"] = {"result": []}
    return _review(ctx, doc, "task 102", "annotations")


@case("review_page_clips_not_a_list")
def _(ctx: Ctx):
    return _review(ctx, {**_page(ctx, []), "clips": "all"}, "clips")


@case("review_file_is_a_folder")
def _(ctx: Ctx):
    d = ctx.tmp / "review.json"
    d.mkdir()
    return ["review", "import", str(d), "--config", str(SMOKE), "--out", str(ctx.smoke)], ["review.json", "is a folder"]


@case("review_corrupt_clips_index")
def _(ctx: Ctx):
    doc = _ls_export(ctx)
    p = ctx.smoke / "clips.jsonl"
    p.write_text(p.read_text() + "{broken\n")
    n = len(p.read_text().splitlines())
    argv, _ = _review(ctx, doc)
    return argv, [f"clips.jsonl:{n}", "not valid JSON"]


@case("review_corrupt_annotation")
def _(ctx: Ctx):
    job = _clips(ctx)[1]["job_id"]
    (ctx.smoke / "annotations" / f"{job}.json").write_text("{")
    argv, _ = _review(ctx, _ls_export(ctx))
    return argv, [str(ctx.smoke / "annotations" / f"{job}.json"), "not valid JSON"]


@case("review_null_range_list")
def _(ctx: Ctx):
    doc = _ls_export(ctx)
    doc[1]["annotations"][0]["result"][0]["value"]["ranges"] = None
    return _review(ctx, doc, "task 102", "ranges")


@case("review_export_with_corrupt_annotation")
def _(ctx: Ctx):
    job = _clips(ctx)[0]["job_id"]
    f = ctx.smoke / "annotations" / f"{job}.json"
    f.write_text("[]")
    return ["review", "export", "--config", str(SMOKE), "--out", str(ctx.smoke)], [str(f)]


# ---- running the cases ---------------------------------------------------------------------------------------

def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:   # argparse
        return int(e.code or 0)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "logs" not in p.parts}


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus(name: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture) -> None:
    c = CASES[name]
    ctx = Ctx(tmp_path / "case", lambda: request.getfixturevalue("smoke_out"))
    ctx.tmp.mkdir()
    argv, needles = c.build(ctx)
    capsys.readouterr()
    smoke = ctx._smoke
    before = _snapshot(smoke) if smoke is not None and c.kind == "fatal" else None
    rc = _run(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if c.kind == "fatal":
        assert rc == 2, (rc, out, err)
        assert len(lines) == 1 and lines[0].startswith("mmviad: "), err
        for n in needles:
            assert n in lines[0], (n, lines[0])
        if before is not None:
            assert _snapshot(smoke) == before     # nothing written or changed
    else:
        assert rc == 1, (rc, out, err)
        job = ctx.files["job"]
        failed = [ln for ln in lines if ln.strip().startswith(f"FAILED {job}:")]
        assert len(failed) == 1, err
        for n in needles:
            assert n in failed[0], (n, failed[0])
        others = [ln for ln in lines if ln.strip().startswith("FAILED ") and job not in ln]
        assert not others, err


# ---- the QA validator: problems, never exceptions -----------------------------------------------------------

def _qa_rec() -> dict:
    from pipeline.qa import qa_record

    clip = {"clip_id": "vase0-0000-bulge-t0-c1", "job_id": "vase0-0000-bulge-t0", "clip_index": 1,
            "video": "clips/vase0-0000-bulge-t0-c1.mp4", "video_marked": "clips/vase0-0000-bulge-t0-c1.marked.mp4",
            "fps": 30, "num_frames": 60, "duration": 2.0, "intervals": {"mask": [[0.4, 1.0]], "diff": [[0.4, 1.0]]}}
    job = {"job_id": "vase0-0000-bulge-t0", "category": "vase0", "group": "vase", "defect": "bulge",
           "material": {"name": "plastic"}, "environment": {"kind": "sky"}}
    return qa_record(clip, job, ["bottle", "bowl", "cup", "vase", "cap"], "mask", "train", seed=1)


def _set(path: str, value: Any) -> Callable[[dict], Any]:
    def edit(r: dict) -> dict:
        *head, last = path.split(".")
        d = r
        for k in head:
            d = d[k]
        if value is _DEL:
            del d[last]
        else:
            d[last] = value
        return r
    return edit


_DEL = object()
QA_CASES: dict[str, tuple[Callable[[dict], Any], str]] = {
    "q1_null": (_set("q1", None), "q1"),
    "interval_is_a_string": (_set("visible_intervals", ["x"]), "visible_intervals[0]"),
    "record_is_an_array": (lambda r: [1, 2], "<record>"),
    "options_as_a_list": (_set("q2.options", ["crack", "good"]), "q2.options"),
    "nan_in_an_interval": (_set("visible_intervals", [[float("nan"), 1.0]]), "visible_intervals[0][0]"),
    "infinite_duration": (_set("duration", float("inf")), "duration"),
    "inverted_interval": (_set("visible_intervals", [[1.0, 0.4]]), "visible_intervals[0]"),
    "bool_fps": (_set("fps", True), "fps"),
    "missing_clip_id": (_set("clip_id", _DEL), "clip_id"),
    "q4_answer_a_number": (_set("q4.answer", 3), "q4.answer"),
    "record_is_none": (lambda r: None, "<record>"),
    "deeply_nested_interval": (_set("visible_intervals", json.loads("[" * 500 + "]" * 500)), "visible_intervals"),
    "string_record": (lambda r: "clip", "<record>"),
    "interval_past_the_clip": (_set("visible_intervals", [[0.4, 9.0]]), "visible_intervals[0]"),
    "answer_contradicts_intervals": (_set("q1.answer", "B"), "q1.answer"),
    "float_fps": (_set("fps", 30.0), "fps"),
    "q3_options_null": (_set("q3.options", None), "q3.options"),
    "path_escapes_the_dataset": (_set("video", "../../etc/passwd"), "video"),
}


@pytest.mark.parametrize("name", sorted(QA_CASES))
def test_qa_validator_corpus(name: str) -> None:
    from pipeline.qa import validate_qa_record

    edit, fld = QA_CASES[name]
    rec = _qa_rec()
    assert validate_qa_record(rec) == []
    edited = edit(copy.deepcopy(rec))
    problems = validate_qa_record(edited)
    assert problems and all(isinstance(p, str) and "\n" not in p for p in problems), problems
    assert any(p.startswith(fld) for p in problems), problems


def test_corpus_size() -> None:
    """The issue asks for at least 60 cases."""
    assert len(CASES) + len(QA_CASES) >= 60
