"""The output tree (pipeline/layout.py): every path as docs/architecture.md and the README spell it,
ids checked before they become part of a path, and no stage joining those paths by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.ids import InvalidIdError
from pipeline.layout import Layout
from pipeline.paths import ASSETS, BLENDER_SCRIPTS, REPO_ROOT

ROOT = Path(__file__).resolve().parents[1]
JOB = "vase0-0000-bulge-t0"
CLIP = f"{JOB}-c1"


def test_every_path_is_the_documented_one(tmp_path):
    L = Layout(tmp_path)
    expected = {
        L.jobs(): "jobs.jsonl",
        L.jobs_fingerprint(): "jobs.fingerprint",
        L.plan_cache(): ".plan-cache",
        L.calibration_dir(JOB): f"calibration/{JOB}",
        L.renders(): "renders",
        L.render_dir(JOB): f"renders/{JOB}",
        L.staging_dir(JOB): f"renders/.staging/{JOB}",
        L.lock_file(JOB): f"renders/.locks/{JOB}.lock",
        L.done_marker(JOB): f"renders/{JOB}/DONE",
        L.annotation(JOB): f"annotations/{JOB}.json",
        L.reports_dir(): "reports",
        L.contact_sheet(): "contact_sheet.png",
        L.review_dir("smoke"): "review/smoke",
        L.review_dir("smoke", 3): "review/smoke-shard3",
        L.clips_dir(): "clips",
        L.clip_index(JOB): f"clips/{JOB}.clips.json",
        L.clip_video(CLIP): f"clips/{CLIP}.mp4",
        L.clip_video(CLIP, marked=True): f"clips/{CLIP}.marked.mp4",
        L.clips_jsonl(): "clips.jsonl",
        L.qa_dir("unseen"): "qa/unseen",
        L.qa_file("standard", "test"): "qa/standard/test.jsonl",
        L.card(): "README.md",
        L.card_dir(): "card",
        L.eval_dir("prior"): "eval/prior",
        L.log("render", JOB): f"logs/render/{JOB}.log",
        L.error_file("render", JOB): f"logs/render/{JOB}.error.json",
        L.log("clips", JOB): f"logs/clips/{JOB}.log",
    }
    assert {p.relative_to(tmp_path).as_posix(): rel for p, rel in expected.items()} == \
        {rel: rel for rel in expected.values()}
    assert Layout.clip_video_rel(CLIP) == f"clips/{CLIP}.mp4"
    assert L.resolve(Layout.clip_video_rel(CLIP, marked=True)) == L.clip_video(CLIP, marked=True)


def test_one_constructor_value_semantics(tmp_path):
    """str, Path or another Layout give the same, immutable, hashable object."""
    a, b, c = Layout(tmp_path), Layout(str(tmp_path)), Layout(Layout(tmp_path))
    assert a == b == c and len({a, b, c}) == 1
    with pytest.raises(AttributeError):
        a.root = Path("/elsewhere")  # type: ignore[misc]


def test_is_done_reads_the_marker(tmp_path):
    L = Layout(tmp_path)
    assert not L.is_done(JOB)
    L.render_dir(JOB).mkdir(parents=True)
    assert not L.is_done(JOB)          # a folder without DONE is not finished
    L.done_marker(JOB).write_text("{}")
    assert L.is_done(JOB)


BAD = ["../../evil", "a/b", "..", "/abs", "x\x00y", "caf\u00e9", "", "A"]


@pytest.mark.parametrize("bad", BAD)
def test_every_id_is_checked(tmp_path, bad):
    L = Layout(tmp_path)
    calls = [lambda: L.render_dir(bad), lambda: L.staging_dir(bad), lambda: L.lock_file(bad),
             lambda: L.done_marker(bad), lambda: L.is_done(bad), lambda: L.annotation(bad),
             lambda: L.clip_index(bad), lambda: L.clip_video(bad), lambda: Layout.clip_video_rel(bad, True),
             lambda: L.calibration_dir(bad), lambda: L.review_dir(bad), lambda: L.eval_dir(bad),
             lambda: L.qa_dir(bad), lambda: L.qa_file("standard", bad), lambda: L.qa_file(bad, "test"),
             lambda: L.log("render", bad), lambda: L.log(bad, JOB), lambda: L.error_file("render", bad)]
    for i, call in enumerate(calls):
        with pytest.raises(InvalidIdError):
            call()
            pytest.fail(f"call {i} accepted {bad!r}")


@pytest.mark.parametrize("shard", [-1, True, "3", 1.0])
def test_review_shard_is_a_whole_number(tmp_path, shard):
    with pytest.raises(ValueError, match="not a non-negative integer"):
        Layout(tmp_path).review_dir("smoke", shard)


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x.mp4", "clips/../../x.mp4", "clips\\..\\x.mp4"])
def test_resolve_stays_inside_the_dataset(tmp_path, rel):
    with pytest.raises(ValueError, match="not a path inside the dataset folder"):
        Layout(tmp_path).resolve(rel)


def test_repo_paths():
    assert REPO_ROOT == ROOT
    assert (ASSETS / "objects").is_dir() and (BLENDER_SCRIPTS / "render_job.py").is_file()


# Names of the top level of the output tree (and the DONE marker): a `/` with one of these as its
# right-hand string anywhere in pipeline/ but layout.py means a stage builds an output path by hand.
TREE_NAMES = {"renders", "annotations", "clips", "qa", "logs", "reports", "review", "card", "eval", "calibration",
              "DONE", ".plan-cache", "jobs.jsonl", "jobs.fingerprint", "clips.jsonl", ".staging", ".locks"}


REPO_NAMES = {"ASSETS", "BLENDER_SCRIPTS", "REPO_ROOT"}   # the repository's own files (pipeline/paths.py)


def _base(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        node = node.left
    return node


def _hand_built(tree: ast.AST) -> list[int]:
    return sorted(n.lineno for n in ast.walk(tree)
                  if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and isinstance(n.right, ast.Constant)
                  and isinstance(n.right.value, str) and n.right.value.split("/")[0] in TREE_NAMES
                  and not (isinstance(_base(n), ast.Name) and _base(n).id in REPO_NAMES))


def test_only_layout_joins_output_paths():
    assert _hand_built(ast.parse('p = out / "annotations" / f"{j}.json"\nq = d / "DONE"\nr = ASSETS / "review"')) == [1, 2]
    found = [f"{p.relative_to(ROOT)}:{line}" for p in sorted((ROOT / "pipeline").rglob("*.py"))
             if p.name != "layout.py" for line in _hand_built(ast.parse(p.read_text(encoding="utf-8")))]
    assert found == []
