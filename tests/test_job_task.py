"""The per-job task (pipeline/farm.py): render → annotate → clips in scratch, then publish
only what ``render.keep_frames`` asks, ``DONE`` last; re-annotation of jobs published without frames;
the lossless mask video. Real Blender and real Ray (the module's fixture renders through
``mmviad render``), tiny renders (64×36, 2 spp)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_mmviad, smoke_config
from pipeline.annotate import annotate_jobs
from pipeline.clips import clip_job
from pipeline.config import load_config, with_overrides
from pipeline.layout import Layout
from pipeline.mask_video import read_mask_png, read_mask_video, write_mask_video
from pipeline.outcome import JobOutcome, JobState
from pipeline.plan import load_jobs
from pipeline import farm
from pipeline.farm import publish_job, run_job
from pipeline.render.runner import task_resources

FRAMES = 60  # manifests/smoke.yaml: 60-frame orbits, three 20-frame clips
PASSES = ("unmarked", "marked", "mask", "objmask")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``mmviad render`` of the smoke config (3 jobs, keep_frames: all) through Ray with a scratch
    folder of its own; returns (config, out, scratch)."""
    root = tmp_path_factory.mktemp("jobtask")
    scratch = root / "scratch"
    cfg = smoke_config(root, scratch_dir=str(scratch), keep_frames="all")
    out = root / "out"
    proc = run_mmviad("render", "--config", str(cfg), "--out", str(out), "--no-progress")
    assert "render: 3 done" in proc.stdout, proc.stdout
    return cfg, out, scratch


def _states(outcomes: dict[str, JobOutcome]) -> dict[str, JobState]:
    return {jid: o.state for jid, o in outcomes.items()}


def _defective(out: Path) -> dict:
    return next(j for j in load_jobs(out / "jobs.jsonl") if j["defect"])


def _tree(root: Path) -> set[str]:
    """Every file under renders/, annotations/ and clips/ (locks aside), relative to ``root``."""
    return {str(p.relative_to(root)) for sub in ("renders", "annotations", "clips") for p in (root / sub).rglob("*")
            if p.is_file() and ".locks" not in p.parts}


def _expected(out: Path, jid: str, keep: str) -> set[str]:
    clips = [c["clip_id"] for c in json.loads(Layout(out).clip_index(jid).read_text())]
    files = {f"renders/{jid}/{n}" for n in ("meta.json", "scene.json", "object.npz", "mask.mkv", "DONE")}
    files |= {f"annotations/{jid}.json", f"clips/{jid}.clips.json"}
    files |= {f"clips/{c}{m}.mp4" for c in clips for m in ("", ".marked")}
    kept = {"none": (), "mask": ("mask", "objmask"), "all": PASSES}[keep]
    files |= {f"renders/{jid}/{p}/{i:04d}.png" for p in kept for i in range(FRAMES)}
    return files


def _published(rendered_out: Path, dest: Path, keep: str) -> Path:
    """Publish the defective job of the rendered dataset into ``dest`` as a job task would, from a
    copy of it standing in for the scratch folder (a keep_frames: all dataset holds what scratch holds)."""
    jid = _defective(rendered_out)["job_id"]
    src = dest.parent / f"{dest.name}-scratch"
    shutil.copytree(rendered_out, src)
    publish_job(Layout(src), Layout(dest), jid, keep)
    shutil.rmtree(src)
    return dest


def test_render_publishes_annotated_clipped_jobs_and_empties_scratch(rendered):
    cfg, out, scratch = rendered
    jobs = load_jobs(out / "jobs.jsonl")
    expected = set().union(*(_expected(out, j["job_id"], "all") for j in jobs))
    assert _tree(out) == expected
    assert not any(scratch.iterdir()), "a scratch folder was left behind"
    assert not list(out.rglob(".*.tmp"))
    # the later stages find everything up to date
    proc = run_mmviad("annotate", "--config", str(cfg), "--out", str(out), "--no-progress")
    assert "annotate: 3 skipped" in proc.stdout
    proc = run_mmviad("clips", "--config", str(cfg), "--out", str(out), "--no-progress")
    assert "clips: 3 skipped" in proc.stdout


@pytest.mark.parametrize("keep", ["none", "mask", "all"])
def test_keep_frames_publishes_exactly_its_files(rendered, tmp_path, keep):
    _, out, _ = rendered
    jid = _defective(out)["job_id"]
    dest = _published(out, tmp_path / "dest", keep)
    assert _tree(dest) == _expected(out, jid, keep)
    for f in _expected(out, jid, keep):
        assert (dest / f).read_bytes() == (out / f).read_bytes(), f


def _strip_meta(path: Path) -> dict:
    meta = json.loads(path.read_text())
    for key in ("timings", "placement", "peak_rss_mb"):   # measurements of the run, not its content
        meta.pop(key, None)
    return meta


def _task_config(cfg_path: Path, tmp_path: Path):
    """The smoke config as a job task gets it from the Ray runner (its thread count, which
    scene.json records), publishing no frames, with a scratch folder of the test's own."""
    base = load_config(cfg_path)
    threads = task_resources(base, os.cpu_count() or 1)[1]
    return with_overrides(base, {"render.keep_frames": "none", "render.threads": threads,
                                 "render.scratch_dir": str(tmp_path / "scratch")}, "test")


def test_done_is_last_and_a_task_killed_while_publishing_is_redone(rendered, tmp_path, monkeypatch):
    cfg_path, ref, _ = rendered
    cfg = _task_config(cfg_path, tmp_path)
    job = _defective(ref)
    jid = job["job_id"]
    out = tmp_path / "out"
    real_put = farm.put_file
    calls: list[Path] = []

    def dies_after_four(src: Path, dst: Path, move: bool) -> None:
        if len(calls) == 4:
            raise OSError(28, "No space left on device (test)")
        calls.append(dst)
        real_put(src, dst, move)

    monkeypatch.setattr(farm, "put_file", dies_after_four)
    res = run_job(job, cfg, out)
    assert res.state is JobState.FAILED and "No space left" in res.error
    assert len(calls) == 4 and not Layout(out).is_done(jid)
    assert (out / "logs" / "render" / f"{jid}.error.json").exists()
    assert not any((tmp_path / "scratch").iterdir()), "scratch not removed after a failure"

    order: list[Path] = []

    def records(src: Path, dst: Path, move: bool) -> None:
        order.append(dst)
        real_put(src, dst, move)

    monkeypatch.setattr(farm, "put_file", records)
    res = run_job(job, cfg, out)
    assert res.state is JobState.DONE, res
    assert order[-1] == Layout(out).done_marker(jid) and Layout(out).done_marker(jid) not in order[:-1]
    # equal to an undisturbed publication of the same job, byte for byte (meta.json's timings aside)
    undisturbed = _published(ref, tmp_path / "undisturbed", "none")
    files = _tree(undisturbed)
    assert _tree(out) == files
    for f in sorted(files - {f"renders/{jid}/DONE", f"renders/{jid}/meta.json"}):
        assert (out / f).read_bytes() == (undisturbed / f).read_bytes(), f
    assert _strip_meta(out / f"renders/{jid}/meta.json") == _strip_meta(undisturbed / f"renders/{jid}/meta.json")
    assert not (out / "logs" / "render" / f"{jid}.error.json").exists()


def test_reannotation_without_frames_equals_annotation_from_frames(rendered, tmp_path):
    cfg_path, out, _ = rendered
    cfg = load_config(cfg_path)
    jid = _defective(out)["job_id"]
    frames = tmp_path / "frames"
    shutil.copytree(out, frames)
    none = _published(out, tmp_path / "none", "none")
    assert not Layout(none).frames_dir(jid, "unmarked").exists()
    original = Layout(out).annotation(jid).read_bytes()
    # same params, forced: from the mask video and the stored scores
    assert _states(annotate_jobs([jid], cfg, none, progress=False, force=True)) == {jid: JobState.DONE}
    assert Layout(none).annotation(jid).read_bytes() == original
    # interval-level params changed: the same file as annotating the PNG frames with those params
    changed = with_overrides(cfg, {"annotate.min_len": 4, "annotate.min_gap": 0, "annotate.min_visible_px": 6,
                                   "annotate.diff_low_ratio": 0.8}, "test")
    assert _states(annotate_jobs([jid], changed, frames, progress=False)) == {jid: JobState.DONE}
    assert _states(annotate_jobs([jid], changed, none, progress=False)) == {jid: JobState.DONE}
    reannotated = Layout(none).annotation(jid).read_bytes()
    assert reannotated == Layout(frames).annotation(jid).read_bytes()
    assert reannotated != original, "the changed params did not change the annotation"
    # the clip index follows; the videos, encoded from the frames when the job was rendered, stay
    job = _defective(out)
    assert clip_job(job, changed, frames) is JobState.DONE and clip_job(job, changed, none) is JobState.DONE
    assert Layout(none).clip_index(jid).read_bytes() == Layout(frames).clip_index(jid).read_bytes()
    for c in json.loads(Layout(none).clip_index(jid).read_text()):
        assert (none / c["video"]).read_bytes() == (frames / c["video"]).read_bytes()


def test_pixel_param_change_without_frames_fails_that_job_alone(rendered, tmp_path):
    cfg_path, out, _ = rendered
    jobs = load_jobs(out / "jobs.jsonl")
    jid = _defective(out)["job_id"]
    mixed = tmp_path / "mixed"
    shutil.copytree(out, mixed)
    for p in PASSES:   # this one job as keep_frames: none published it
        shutil.rmtree(Layout(mixed).frames_dir(jid, p))
    data = yaml.safe_load(cfg_path.read_text())
    data["annotate"]["diff_threshold"] = 30
    cfg2 = tmp_path / "smoke.yaml"
    cfg2.write_text(yaml.safe_dump(data))
    proc = run_mmviad("annotate", "--config", str(cfg2), "--out", str(mixed), "--no-progress", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "annotate: 2 done, 1 failed" in proc.stdout, proc.stdout
    line = next(x for x in proc.stderr.splitlines() if "FAILED" in x)
    assert jid in line and "diff_threshold (24 → 30)" in line and "render.keep_frames: all" in line, line
    others = [j["job_id"] for j in jobs if j["job_id"] != jid]
    assert all(json.loads(Layout(mixed).annotation(o).read_text())["params"]["diff_threshold"] == 30 for o in others)
    assert Layout(mixed).annotation(jid).read_bytes() == Layout(out).annotation(jid).read_bytes()


def test_mask_video_round_trips_exactly_and_its_bytes_are_deterministic(rendered, tmp_path):
    _, out, _ = rendered
    layout = Layout(out)
    for job in load_jobs(out / "jobs.jsonl"):
        jid = job["job_id"]
        pngs = [read_mask_png(layout.frames_dir(jid, "mask") / f"{i:04d}.png") for i in range(FRAMES)]
        decoded = list(read_mask_video(layout.mask_video(jid)))
        assert len(decoded) == FRAMES
        assert all(d.dtype == np.uint8 and np.array_equal(d, p) for d, p in zip(decoded, pngs)), jid
    jid = _defective(out)["job_id"]
    assert any(p.any() for p in read_mask_video(layout.mask_video(jid))), "the defect's mask is empty"
    again = tmp_path / "again.mkv"
    write_mask_video(layout.frames_dir(jid, "mask"), FRAMES, again, 10)
    assert again.read_bytes() == layout.mask_video(jid).read_bytes()


def test_contact_sheet_without_frames_reads_the_clips(rendered, tmp_path):
    from pipeline.contact_sheet import contact_sheet

    _, out, _ = rendered
    none = _published(out, tmp_path / "none", "none")
    job = _defective(out)
    with_frames, from_clips = contact_sheet(out, [job]), contact_sheet(none, [job])
    assert with_frames.shape == from_clips.shape
    # decoded H.264 at crf 20 against the PNGs: close, not equal
    assert np.abs(with_frames.astype(int) - from_clips.astype(int)).mean() < 8


def test_mask_video_keeps_every_gray_level(tmp_path):
    """No render: arbitrary 8-bit levels round-trip through write_mask_video (a lossy encoder fails it)."""
    import cv2

    rng = np.random.default_rng(5)
    folder = tmp_path / "mask"
    folder.mkdir()
    frames = [rng.integers(0, 256, (36, 64), dtype=np.uint8) for _ in range(4)]
    frames[0][:] = np.arange(64, dtype=np.uint8)[None, :] * 4 + 1
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f)
    size = write_mask_video(folder, 4, tmp_path / "m.mkv", 10)
    assert size == (tmp_path / "m.mkv").stat().st_size
    assert all(np.array_equal(d, f) for d, f in zip(read_mask_video(tmp_path / "m.mkv"), frames))


def test_publishing_across_filesystems_copies_atomically(rendered, tmp_path, monkeypatch):
    """Scratch on another file system than the dataset: every file is copied (to a temp name, then
    renamed), the sources stay in scratch until it is removed, and the result is the same."""
    _, out, _ = rendered
    jid = _defective(out)["job_id"]
    monkeypatch.setattr(farm, "same_filesystem", lambda a, b: False)
    seen: list[str] = []
    real_replace = os.replace

    def watch(src, dst):
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(farm.os, "replace", watch)
    src = tmp_path / "scratch"
    shutil.copytree(out, src)
    dest = tmp_path / "dest"
    publish_job(Layout(src), Layout(dest), jid, "all")
    assert _tree(dest) == _expected(out, jid, "all")
    assert all(name.startswith(".") and name.endswith(".tmp") for name in seen) and len(seen) == len(_tree(dest))
    for f in _expected(out, jid, "all"):
        assert (dest / f).read_bytes() == (src / f).read_bytes(), f
    assert not list(dest.rglob(".*.tmp"))


_DIES_MID_UPLOAD = """
import json, os, sys
from pipeline import farm
from pipeline.config import Config
from pipeline.store import Store

cfg, job, url = Config.model_validate(json.loads(sys.argv[1])), json.loads(sys.argv[2]), sys.argv[3]
real, done = Store.put_file, []


def put_file(self, local, key):   # the test's kill: the task's process dies between two uploads
    if len(done) == 6:
        os._exit(9)
    real(self, local, key)
    done.append(key)


Store.put_file = put_file
farm.run_job(job, cfg, url)
"""


def test_a_task_killed_mid_upload_to_an_object_store_leaves_no_job_looking_complete(rendered, bucket, s3_env,
                                                                                    tmp_path):
    """``--out s3://…``: the task publishes through the store (moto's S3 server mode stands in for
    S3); a task process killed after six uploads leaves a job without ``DONE``, and the rerun publishes
    exactly what a folder gets, byte for byte."""
    import subprocess
    import sys

    from conftest import ROOT
    from pipeline.store import Store

    cfg_path, ref, _ = rendered
    cfg = _task_config(cfg_path, tmp_path)
    job = _defective(ref)
    jid = job["job_id"]
    url = f"{bucket}/ds"
    store = Store(url)
    proc = subprocess.run([sys.executable, "-c", _DIES_MID_UPLOAD, json.dumps(cfg.model_dump(mode="json")),
                           json.dumps(job), url], env={**os.environ, **s3_env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr
    assert len(store.listing()) == 6 and not store.exists(f"renders/{jid}/DONE")
    res = run_job(job, cfg, url)
    assert res.state is JobState.DONE, res
    undisturbed = _published(ref, tmp_path / "undisturbed", "none")
    files = _tree(undisturbed)
    assert {k for k in store.listing() if not k.startswith("logs/")} == files
    for f in sorted(files - {f"renders/{jid}/DONE", f"renders/{jid}/meta.json"}):
        assert store.read_bytes(f) == (undisturbed / f).read_bytes(), f
    store.get_file(f"renders/{jid}/meta.json", tmp_path / "meta.json")
    assert _strip_meta(tmp_path / "meta.json") == _strip_meta(undisturbed / f"renders/{jid}/meta.json")
    assert store.exists(f"logs/render/{jid}.log") and not store.exists(f"logs/render/{jid}.error.json")


def test_a_task_that_finishes_after_another_published_its_job_leaves_it_alone(rendered, tmp_path, monkeypatch):
    """A node cut off from Ray (not dead) goes on rendering a job that Ray gave to another node; when
    it finishes after the other published, the published job stays as it is (publishing would first
    remove it)."""
    cfg_path, ref, _ = rendered
    cfg = with_overrides(load_config(cfg_path), {"render.keep_frames": "none",
                                                  "render.scratch_dir": str(tmp_path / "scratch")}, "test")
    job = _defective(ref)
    jid = job["job_id"]
    out = _published(ref, tmp_path / "out", "none")   # the other node's publication
    before = {f: (out / f).read_bytes() for f in _tree(out)}
    real_prepare = farm.prepare_job
    Layout(out).done_marker(jid).unlink()   # not yet published when this task starts ...

    def meanwhile(*args, **kwargs):
        res = real_prepare(*args, **kwargs)
        Layout(out).done_marker(jid).write_bytes(before[f"renders/{jid}/DONE"])   # ... published while it rendered
        return res

    monkeypatch.setattr(farm, "prepare_job", meanwhile)
    res = run_job(job, cfg, out)
    assert res.state == "skipped", res
    assert {f: (out / f).read_bytes() for f in _tree(out)} == before
