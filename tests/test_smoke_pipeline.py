"""End to end on the smoke config: real Ray, real Blender (bpy wheel), real MP4s."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, SMOKE, process_ids, run_mmviad, smoke_config
from pipeline.intervals import union_iou
from pipeline.io import read_jsonl
from pipeline.qa import validate_qa_record

pytestmark = pytest.mark.slow


def jobs_of(out: Path) -> list[dict]:
    return read_jsonl(out / "jobs.jsonl")


def test_layout_and_done_markers(smoke_built):
    for job in jobs_of(smoke_built):
        d = smoke_built / "renders" / job["job_id"]
        assert (d / "DONE").exists() and (d / "meta.json").exists()
        meta = json.loads((d / "meta.json").read_text())
        assert meta["blender_version"].startswith("5.0")
        assert meta["render"]["seed"] == job["seeds"]["cycles"]
        for p in ("unmarked", "marked", "mask"):
            assert len(list((d / p).glob("*.png"))) == meta["frames"]
    assert not any((smoke_built / "renders" / ".staging").glob("*"))


def _facing(out: Path, job_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the cosine between the defect's mean outward normal and the direction to the
    camera, and the largest such cosine over the individual defect faces."""
    import trimesh

    d = out / "renders" / job_id
    z = np.load(d / "object.npz")
    mesh = trimesh.Trimesh(z["vertices"], z["faces"], process=False)
    fm = z["face_mask"]
    areas = mesh.area_faces[fm]
    centres, normals = mesh.triangles_center[fm], mesh.face_normals[fm]
    centre = (centres * areas[:, None]).sum(0) / areas.sum()
    mean_n = (normals * areas[:, None]).sum(0)
    mean_n /= np.linalg.norm(mean_n)
    cams = np.array([f["location"] for f in json.loads((d / "scene.json").read_text())["camera"]["frames"]])
    view = cams - centre
    mean_cos = view @ mean_n / np.linalg.norm(view, axis=1)
    per_face = np.einsum("fk,nfk->nf", normals, cams[:, None, :] - centres[None])  # sign is all we need
    return mean_cos, per_face.max(axis=1)


def test_mask_is_nonempty_exactly_when_the_defect_faces_the_camera(smoke_built):
    """Facing: the defect's mean normal within 60° of the view direction → defect pixels seen.
    Facing away: every defect face is back-facing → no defect pixel at all (no leak through the
    object, the floor or the compositor). Grazing frames in between are not asserted."""
    defective = [j for j in jobs_of(smoke_built) if j["defect"]]
    assert defective
    for job in defective:
        ann = json.loads((smoke_built / "annotations" / f"{job['job_id']}.json").read_text())
        scores = np.array(ann["mask"]["scores"])
        mean_cos, max_face = _facing(smoke_built, job["job_id"])
        facing, away = mean_cos > math.cos(math.radians(60)), max_face < 0
        assert facing.any() and away.any()
        assert (scores[facing] > 0).all(), f"defect faces the camera but mask is empty: {np.flatnonzero(facing & (scores == 0))}"
        assert (scores[away] == 0).all(), f"defect faces away but mask has pixels: {np.flatnonzero(away & (scores > 0))}"


def test_normal_objects_have_empty_masks(smoke_built):
    for job in jobs_of(smoke_built):
        if job["defect"] is None:
            ann = json.loads((smoke_built / "annotations" / f"{job['job_id']}.json").read_text())
            assert max(ann["mask"]["scores"]) == 0 and ann["mask"]["intervals"] == []


def test_diff_and_mask_intervals_agree(smoke_built):
    for job in jobs_of(smoke_built):
        ann = json.loads((smoke_built / "annotations" / f"{job['job_id']}.json").read_text())
        iou = union_iou(ann["diff"]["intervals"], ann["mask"]["intervals"])
        assert iou == pytest.approx(ann["agreement"]["iou"], abs=1e-6)
        assert iou >= 0.8, (job["job_id"], ann["diff"]["intervals"], ann["mask"]["intervals"])


def test_every_mp4_decodes_to_the_clip_length(smoke_built):
    clips = read_jsonl(smoke_built / "clips.jsonl")
    assert len(clips) == 3 * len(jobs_of(smoke_built))
    for c in clips:
        for key in ("video", "video_marked"):
            with av.open(str(smoke_built / c[key])) as container:
                stream = container.streams.video[0]
                frames = [f for f in container.decode(stream)]
                assert len(frames) == c["num_frames"]
                assert stream.codec_context.name == "h264"
                assert (frames[0].width, frames[0].height) == (64, 36)
                assert float(stream.average_rate) == c["fps"]


def test_every_qa_line_validates_and_datasets_reads_it(smoke_built):
    import datasets

    files = {s: str(smoke_built / "qa" / "standard" / f"{s}.jsonl") for s in ("train", "test")}
    rows = [r for f in files.values() for r in read_jsonl(f)]
    assert len(rows) == len(read_jsonl(smoke_built / "clips.jsonl"))
    for r in rows:
        assert validate_qa_record(r) == [], r["clip_id"]
        assert (smoke_built / r["video"]).exists()
    assert {r["split"] for r in rows} == {"train", "test"}
    assert any(r["q1"]["answer"] == "A" for r in rows) and any(r["q1"]["answer"] == "B" for r in rows)
    ds = datasets.load_dataset("json", data_files=files, cache_dir=str(smoke_built / ".hf_cache"))
    assert ds["train"].num_rows + ds["test"].num_rows == len(rows)


def test_rerun_skips_finished_work_and_changes_nothing(smoke_out):
    before = {p: p.read_bytes() for p in sorted(smoke_out.glob("annotations/*.json")) + sorted(smoke_out.glob("qa/*/*.jsonl"))}
    proc = run_mmviad("build", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress")
    assert "render: 3 skipped" in proc.stdout and "annotate: 3 skipped" in proc.stdout
    assert before == {p: p.read_bytes() for p in before}


def test_sharded_run_gives_identical_labels_and_videos(smoke_built, tmp_path):
    """Three shards rendered separately, out of order, each stage in its own process, give
    byte-identical annotations, clip indexes, MP4 files and QA files to the one-process ``build``
    (where the clips are encoded after planning in the same process: the encoder must not depend on
    what ran before it; see bench/x264_determinism.py)."""
    out = tmp_path / "sharded"
    for k in (2, 0, 1):
        for stage in ("render", "annotate", "clips"):
            run_mmviad(stage, "--config", str(SMOKE), "--out", str(out), "--shard", str(k), "--num-shards", "3",
                       "--no-progress")
    run_mmviad("qa", "--config", str(SMOKE), "--out", str(out))
    run_mmviad("protocols", "--config", str(SMOKE), "--out", str(out))
    names = sorted(p.relative_to(smoke_built) for p in smoke_built.glob("annotations/*.json")) + \
        sorted(p.relative_to(smoke_built) for p in smoke_built.glob("qa/*/*.jsonl")) + \
        sorted(p.relative_to(smoke_built) for p in smoke_built.glob("clips/*"))
    assert len([n for n in names if n.suffix == ".mp4"]) == 18
    differ = [str(n) for n in names if (out / n).read_bytes() != (smoke_built / n).read_bytes()]
    assert not differ, f"{len(differ)} of {len(names)} files differ: {differ}"


def test_killed_blender_is_retried_and_a_broken_job_fails_alone(tmp_path):
    """Through the CLI: one job edited by hand to be broken fails alone with a clear error; a
    Blender process killed mid-job is retried in a new process; the exit code says a job failed."""
    out = tmp_path / "crash"
    scratch = tmp_path / "scratch"   # where the job tasks render
    config = smoke_config(tmp_path, scratch_dir=str(scratch))
    run_mmviad("plan", "--config", str(config), "--out", str(out))
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    broken = next(j for j in jobs if j["defect"])
    healthy = next(j for j in jobs if j is not broken)
    broken["object"]["defect_params"]["center"] = 10**9  # a vertex that does not exist
    (out / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "render", "--config", str(config), "--out", str(out),
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    jid = healthy["job_id"]
    killed = False
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not killed:
        if len(list(scratch.glob(f"{jid}-*/renders/.staging/{jid}/unmarked/*.png"))) >= 3:
            for pid in process_ids("render_job.py", healthy["job_id"]):
                os.kill(pid, signal.SIGKILL)
                killed = True
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed, "never saw the Blender process to kill"
    assert proc.returncode == 1, (stdout, stderr)
    done = json.loads((out / "renders" / healthy["job_id"] / "DONE").read_text())
    assert done["attempts"] == 2
    others = [j for j in jobs if j is not broken and j is not healthy]
    assert all((out / "renders" / j["job_id"] / "DONE").exists() for j in others)
    assert not (out / "renders" / broken["job_id"]).exists()
    err_file = out / "logs" / "render" / f"{broken['job_id']}.error.json"
    err = json.loads(err_file.read_text())
    assert "defect_params.center" in err["error"]
    line = next(x for x in stderr.splitlines() if broken["job_id"] in x)
    assert "FAILED" in line and "defect_params.center" in line and f"{broken['job_id']}.log" in line
