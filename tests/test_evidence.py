"""Evidence against the defect-free twin: the per-frame measure, the twin's geometry, and a real
build whose labels count only frames where the defect is both in view and evident."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline import evidence, evidence_stats
from pipeline.annotate import diff_mask
from pipeline.config import AnnotateConfig, Config, ConfigError, load_config
from pipeline.eval.metrics import evaluate_scores, evidence_class
from pipeline.objects import DefectMesh
from pipeline.objects.sources import object_mesh
from pipeline.plan import plan_jobs
from pipeline.records import Clip, QARecord, read_annotation
from pipeline.render.region import from_json, inside
from pipeline.render.scene import build_twin
from pipeline.scenery.pose import pose_matrix, posed_mesh

from conftest import REPO, SMOKE, run_mmviad

A = AnnotateConfig(evidence="twin", evidence_dilate_px=1, evidence_floor_percentile=99.0, evidence_floor_min=6)


def _frames(noise: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.full((40, 60, 3), 120, np.uint8)
    other = base.astype(np.int16) + rng.integers(-noise, noise + 1, base.shape) if noise else base.astype(np.int16)
    return base, np.clip(other, 0, 255).astype(np.uint8)


def _mask() -> np.ndarray:
    m = np.zeros((40, 60), bool)
    m[15:20, 25:32] = True   # 35 defect pixels
    return m


def test_change_inside_the_mask_above_the_floor_is_evidence():
    unmarked, twin = _frames(noise=2)
    unmarked = unmarked.copy()
    unmarked[_mask()] = (160, 120, 120)   # the defect changes its own pixels by 40 levels
    ev = evidence.frame_evidence(unmarked, twin, _mask(), (15, 8, 45, 30), A)
    assert ev.pixels == 35
    assert ev.floor == 6.0                # the ring's noise (2 levels) is below the minimum floor
    assert 37 <= ev.contrast <= 43


def test_a_twin_identical_to_the_object_shows_no_evidence():
    unmarked, twin = _frames(noise=0)
    ev = evidence.frame_evidence(unmarked, twin, _mask(), (15, 8, 45, 30), A)
    assert (ev.pixels, ev.contrast) == (0, 0.0)


def test_noise_around_the_defect_raises_the_floor():
    unmarked, twin = _frames(noise=25, seed=3)    # ±25 levels of noise everywhere
    unmarked = unmarked.copy()
    unmarked[_mask()] = np.clip(twin[_mask()].astype(int) + 15, 0, 255)   # a 15-level change: within the noise
    ev = evidence.frame_evidence(unmarked, twin, _mask(), (15, 8, 45, 30), A)
    assert ev.floor >= 20
    assert ev.pixels == 0


def test_no_rectangle_means_the_defect_is_not_seen():
    unmarked, twin = _frames()
    unmarked = unmarked.copy()
    unmarked[_mask()] = 0
    assert evidence.frame_evidence(unmarked, twin, _mask(), None, A).pixels == 0


def test_in_view_and_evident_needs_both():
    frames = [evidence.FrameEvidence(p, 10.0, 6.0) for p in (9, 9, 9, 0, 0, 0, 9, 9, 9, 9)]
    mask = [9, 9, 9, 9, 9, 9, 0, 0, 0, 0]
    t = evidence.track(frames, mask, 4, AnnotateConfig(min_len=2, min_gap=0))
    assert t["intervals"] == [[0, 3]]


def test_clip_strength_and_weak_flag():
    ann = {"threshold_px": 4, "mask": {"scores": [5, 5, 5, 5, 0, 0]},
           "evidence": {"scores": [5, 0, 0, 0, 0, 0], "contrast": [12.0, 0, 0, 0, 0, 0]}}
    block = evidence_stats.clip_evidence(ann, 0, 6)
    assert block == {"in_view_frames": 4, "evident_frames": 1, "contrast": 3.0}
    assert evidence_stats.is_weak(block)
    assert not evidence_stats.is_weak(evidence_stats.clip_evidence(ann, 4, 6))   # nothing in view


def test_config_refuses_evidence_labels_without_the_twin_pass(tmp_path):
    doc = yaml.safe_load(SMOKE.read_text())
    doc["qa"] = {"label_source": "in_view_and_evident"}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="qa.label_source.*annotate.evidence: twin"):
        load_config(p)


def test_posing_the_twin_uses_the_objects_lift():
    """A defect that is the object's lowest point (a bulge underneath) must not lift its twin."""
    v = np.array([[0, 0, 0.0], [1, 0, 0], [0, 1, 0], [0, 0, -0.2]])
    obj = DefectMesh(v, [[0, 1, 2], [0, 1, 3]], [False, False, False, True], [False, True])
    twin = DefectMesh.normal(v[:3], [[0, 1, 2]])
    pose = {"yaw_deg": 30.0, "tilt_deg": 0.0, "tilt_axis_deg": 0.0, "scale": 1.0}
    posed_obj, posed_twin = posed_mesh(obj, pose), posed_mesh(twin, pose, lift_from=obj)
    assert np.allclose(posed_obj.vertices[:3], posed_twin.vertices)


def test_twin_coincides_with_the_object_outside_the_defect(tmp_path):
    """Every vertex the defect left alone sits exactly where the posed twin's original vertex sits."""
    doc = yaml.safe_load(SMOKE.read_text())
    doc["objects"].update({"categories": ["vase0", "cup0", "bottle0"], "objects_per_category": 2,
                           "normal_share": 0.0,
                           "defects": {k: 1 for k in ("bulge", "concavity", "crack", "scratch", "hole", "broken")}})
    doc["annotate"]["evidence"] = "twin"
    cfg = Config.model_validate(doc)
    jobs = plan_jobs(cfg, progress=False)
    assert {j["defect"] for j in jobs} == {"bulge", "concavity", "crack", "scratch", "hole", "broken"}
    for job in jobs:
        raw = object_mesh(job, cfg)                     # unposed, with each vertex's original index
        twin = build_twin(job, cfg, raw)
        rot = pose_matrix(job["pose"]).T
        lift = (raw.vertices @ rot)[:, 2].min()
        kept = ~raw.vertex_mask & (raw.origin >= 0)
        assert kept.any() and raw.vertex_mask.any()
        obj_world = raw.vertices[kept] @ rot - [0, 0, lift]
        np.testing.assert_allclose(twin.vertices[raw.origin[kept]], obj_world, atol=1e-9, err_msg=job["job_id"])
        assert not twin.has_defect


EV_YAML = SMOKE.read_text().replace("name: smoke", "name: smokeevidence").replace(
    "  min_gap: 2\n", "  min_gap: 2\n  evidence: twin\nqa:\n  label_source: in_view_and_evident\n")


@pytest.fixture(scope="module")
def evidence_build(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke dataset with the twin pass, ``marked: region`` (the default configs' mode)."""
    root = tmp_path_factory.mktemp("evidence")
    doc = yaml.safe_load(EV_YAML)
    doc["render"]["marked"] = "region"
    cfg = root / "ev.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = root / "out"
    run_mmviad("build", "--config", str(cfg), "--out", str(out), "--no-progress")
    return cfg, out


def _img(p: Path) -> np.ndarray:
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    assert img is not None, p
    return img


def test_twin_pass_is_a_region_render_of_the_same_scene(evidence_build):
    _, out = evidence_build
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    defective = [j for j in jobs if j["defect"]]
    assert defective
    for j in defective:
        d = out / "renders" / j["job_id"]
        meta = json.loads((d / "meta.json").read_text())
        rects = from_json(meta["twin"]["rects"])
        assert meta["twin"]["frames_rendered"] == sum(r is not None for r in rects) > 0
        assert len(meta["timings"]["twin_s"]) == meta["twin"]["frames_rendered"]
        changed_inside = red_twin = red_marked = 0
        for i, rect in enumerate(rects):
            un, tw = _img(d / "unmarked" / f"{i:04d}.png"), _img(d / "twin" / f"{i:04d}.png")
            outside = ~inside(rect, *un.shape[:2])
            # no denoiser in this config: outside its rectangle the twin frame is the unmarked frame
            assert np.array_equal(un[outside], tw[outside]), (j["job_id"], i)
            changed_inside += int(np.count_nonzero(np.abs(un.astype(int) - tw).max(axis=2)))
            red_twin += int(np.count_nonzero(diff_mask(tw, un, A)))
            red_marked += int(np.count_nonzero(diff_mask(_img(d / "marked" / f"{i:04d}.png"), un, A)))
        assert changed_inside > 0, j["job_id"]   # the twin really has another mesh
        assert red_marked > 10 * red_twin, j["job_id"]   # ... and not the red paint


def test_labels_count_only_frames_in_view_and_evident(evidence_build):
    _, out = evidence_build
    for f in sorted((out / "annotations").glob("*.json")):
        ann = json.loads(f.read_text())
        ev, mask, thr = ann["evidence"], ann["mask"], ann["threshold_px"]
        assert len(ev["scores"]) == ann["num_frames"]
        both = {i for i in range(ann["num_frames"]) if ev["scores"][i] >= thr and mask["scores"][i] >= thr}
        in_labels = {i for a, b in ev["intervals"] for i in range(a, b)}
        in_mask = {i for a, b in mask["intervals"] for i in range(a, b)}
        assert in_labels <= in_mask | {i + d for i in in_mask for d in (-2, -1, 1, 2)}
        if "-good-" in f.name:
            assert not any(ev["scores"]) and not ev["intervals"]
        else:
            assert both, f"{f.name}: no frame in view and evident"
    clips = [json.loads(x) for x in (out / "clips.jsonl").read_text().splitlines()]
    qa = {r["clip_id"]: r for s in ("train", "test")
          for r in map(json.loads, (out / "qa" / "standard" / f"{s}.jsonl").read_text().splitlines())}
    for c in clips:
        r = qa[c["clip_id"]]
        assert r["provenance"] == "in_view_and_evident"
        assert r["visible_intervals"] == c["intervals"]["in_view_and_evident"]
        assert r["evidence"] == c["evidence"]
        assert c["evidence"]["evident_frames"] <= c["evidence"]["in_view_frames"]
    # the records with their evidence blocks read back to the same JSON (the files' contract)
    for f in (out / "annotations").glob("*.json"):
        assert read_annotation(f).to_json() == json.loads(f.read_text())
    for c in clips:
        assert Clip.model_validate(c).to_json() == c
    for r in qa.values():
        assert QARecord.model_validate(r).to_json() == r
    card = (out / "README.md").read_text()
    assert "## Evidence" in card and (out / "card" / "evidence.png").stat().st_size > 0


def test_identical_twin_renders_the_unmarked_frames(evidence_build, tmp_path):
    """The twin pass with the object's own mesh as the 'twin' must give the unmarked frames back,
    bit for bit (same scene, seed and settings), in both marked modes: no evidence from noise."""
    _, out = evidence_build
    job = next(p for p in sorted((out / "renders").iterdir()) if "-good-" not in p.name and p.is_dir()
               and not p.name.startswith("."))
    for mode in ("render", "region"):
        dest = tmp_path / mode
        dest.mkdir()
        shutil.copy(job / "object.npz", dest / "object.npz")
        spec = json.loads((job / "scene.json").read_text())
        spec.update({"mesh": str(dest / "object.npz"), "twin_mesh": str(dest / "object.npz"),
                     "output": str(dest), "marked": mode})
        (dest / "scene.json").write_text(json.dumps(spec))
        subprocess.run([sys.executable, str(REPO / "blender_scripts" / "render_job.py"), str(dest / "scene.json")],
                       check=True, capture_output=True, timeout=600)
        twins = sorted((dest / "twin").glob("*.png"))
        assert twins
        for p in twins:
            assert np.array_equal(_img(p), _img(dest / "unmarked" / p.name)), (mode, p.name)


def test_evaluator_reports_the_evident_subset():
    base = {"in_view_frames": 4, "contrast": 1.0}
    recs = [{"evidence": {**base, "evident_frames": 1}}, {"evidence": {**base, "evident_frames": 4}},
            {"evidence": {"in_view_frames": 0, "evident_frames": 0, "contrast": 0.0}}]
    assert [evidence_class(r) for r in recs] == ["weak", "evident", "not in view"]
    assert evidence_class({}) == "unmeasured"
    score = {"q1": True, "q2": True, "q2_gated": True, "q3": True, "iou": 1.0, "positive": True,
             "pred_empty": False, "unparseable": [], "ambiguous": [], "how": {}, "by_text": []}
    bad = {**score, "q1": False, "q2": False, "q2_gated": False, "q3": False, "iou": 0.0}
    res = evaluate_scores([{**r, "category": "c"} for r in recs], [bad, score, score])
    assert res["evident_subset"]["n"] == 2 and res["evident_subset"]["q1_acc"] == 100.0
    assert res["overall"]["q1_acc"] < 100.0
    assert set(res["breakdown"]["evidence"]) == {"weak", "evident", "not in view"}


def test_review_export_puts_weak_clips_first(evidence_build, tmp_path):
    cfg, built = evidence_build
    out = tmp_path / "out"
    shutil.copytree(built, out)
    rows = [json.loads(x) for x in (out / "clips.jsonl").read_text().splitlines()]
    last_seen = max(i for i, c in enumerate(rows) if c["evidence"]["in_view_frames"])
    rows[last_seen]["evidence"]["evident_frames"] = 0          # as if the unmarked video showed nothing
    (out / "clips.jsonl").write_text("".join(json.dumps(c, sort_keys=True) + "\n" for c in rows))
    run_mmviad("review", "export", "--config", str(cfg), "--out", str(out))
    tasks = json.loads(next((out / "review").glob("*/labelstudio/tasks.json")).read_text())
    first = tasks[0]["data"]
    assert first["clip_id"] == rows[last_seen]["clip_id"] and first["weak_evidence"] is True
    assert "WEAK" in first["info"] and len(first["evidence_scores"]) == first["num_frames"]
    assert not any(t["data"]["weak_evidence"] for t in tasks[1:])


def test_jobs_published_without_frames_reannotate_their_evidence_exactly(evidence_build, tmp_path):
    """keep_frames: none keeps the evidence track's per-frame scores in the annotation: changed
    interval params re-annotate it from those (and the mask video) to the file the frames give."""
    from pipeline.annotate import annotate_jobs
    from pipeline.config import with_overrides
    from pipeline.layout import Layout
    from pipeline.farm import publish_job

    cfg_path, out = evidence_build
    ids = [json.loads(x)["job_id"] for x in (out / "jobs.jsonl").read_text().splitlines()]
    frames, src, bare = tmp_path / "frames", tmp_path / "src", tmp_path / "bare"
    shutil.copytree(out, frames)
    shutil.copytree(out, src)
    for jid in ids:
        publish_job(Layout(src), Layout(bare), jid, "none")
    assert not any(Layout(bare).frames_dir(j, p).exists() for j in ids for p in ("unmarked", "twin", "mask"))
    cfg = with_overrides(load_config(cfg_path), {"annotate.min_len": 3, "annotate.min_gap": 0,
                                                 "annotate.min_visible_px": 3}, "test")
    assert {j: o.state for j, o in annotate_jobs(ids, cfg, frames, progress=False).items()} == {j: "done" for j in ids}
    assert {j: o.state for j, o in annotate_jobs(ids, cfg, bare, progress=False).items()} == {j: "done" for j in ids}
    changed = 0
    for jid in ids:
        new = Layout(bare).annotation(jid).read_bytes()
        assert new == Layout(frames).annotation(jid).read_bytes(), jid
        assert "evidence" in json.loads(new)
        changed += new != Layout(out).annotation(jid).read_bytes()
    assert changed, "the changed params changed no annotation"
    # a changed evidence pixel param needs the frames
    px = with_overrides(cfg, {"annotate.evidence_floor_min": 9}, "test")
    status = annotate_jobs(ids, px, bare, progress=False)
    assert all(o.failed and o.error.startswith("annotate params evidence_floor_min (6 → 9)")
               for o in status.values()), status
