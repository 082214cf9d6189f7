"""Crash safety (#9): Blender killed at random points, the driver killed between stages; the rerun
finishes and its labels are byte-identical to an uninterrupted run (the session's smoke build)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SMOKE, process_ids, run_mmviad, smoke_config

pytestmark = pytest.mark.slow


def _check_complete_jobs(out: Path, frames: int) -> None:
    """Invariant at every instant: a job with a DONE marker has every frame of every pass."""
    for done in (out / "renders").glob("*/DONE"):
        d = done.parent
        for p in ("unmarked", "marked", "mask"):
            assert len(list((d / p).glob("*.png"))) == frames, f"{d.name} is DONE but {p}/ is incomplete"
        assert (d / "meta.json").exists()


def _labels(out: Path) -> dict[str, bytes]:
    files = sorted(out.glob("annotations/*.json")) + sorted(out.glob("qa/*/*.jsonl")) + [out / "clips.jsonl",
                                                                                          out / "jobs.jsonl"]
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def test_kills_then_rerun_give_identical_labels(smoke_built, tmp_path):
    out = tmp_path / "crashy"
    scratch = tmp_path / "scratch"   # where the job tasks render, and Blender's scene.json lies
    config = smoke_config(tmp_path, scratch_dir=str(scratch))
    rng = np.random.default_rng(1234)
    frames = 60
    cmd = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config), "--out", str(out), "--no-progress"]
    kills = 0
    # Run 1: kill Blender at random moments, several times.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    next_kill = time.time() + rng.uniform(1.0, 4.0)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        _check_complete_jobs(out, frames)
        if kills < 4 and time.time() >= next_kill:
            for pid in process_ids("render_job.py", str(scratch)):
                os.kill(pid, signal.SIGKILL)
                kills += 1
            next_kill = time.time() + rng.uniform(0.5, 3.0)
        time.sleep(0.05)
    proc.communicate(timeout=60)
    assert kills >= 2, "the run ended before Blender could be killed twice"
    _check_complete_jobs(out, frames)

    # Run 2: kill the driver itself once annotation has started (between render and clips).
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        _check_complete_jobs(out, frames)
        if any((out / "annotations").glob("*.json")) if (out / "annotations").exists() else False:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)

    # Run 3: an ordinary rerun resumes and completes.
    final = run_mmviad("build", "--config", str(config), "--out", str(out), "--no-progress")
    assert "failed" not in final.stdout
    _check_complete_jobs(out, frames)
    assert not any((out / "renders" / ".staging").glob("*")) and not any(scratch.glob("*"))
    assert not list(out.rglob(".*.tmp")), "a temporary file was left behind"
    assert _labels(out) == _labels(smoke_built)


def test_a_second_driver_on_the_same_job_is_refused(tmp_path):
    """Two drivers on one output folder never render the same job into one staging folder."""
    import fcntl

    from pipeline.config import load_config
    from pipeline.plan import load_jobs, write_plan
    from pipeline.render.job import render_job

    cfg = load_config(SMOKE)
    job = load_jobs(write_plan(cfg, tmp_path))[0]
    lock = tmp_path / "renders" / ".locks" / f"{job['job_id']}.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        res = render_job(job, cfg, tmp_path)
    assert res.state == "failed" and "lock" in res.error
    assert not (tmp_path / "renders" / ".staging" / job["job_id"]).exists()


# ---- Ctrl-C: one line, exit 130, finished work kept --------------------------------------------------

def _ctrl_c(args: list[str], ready, timeout: float = 300) -> tuple[int, str]:
    """Start ``mmviad ARGS``, send SIGINT (what Ctrl-C sends) once ``ready(pid)`` is true; return
    ``(exit code, stderr)``."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline and not ready(proc.pid):
        time.sleep(0.005)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _interrupted_cleanly(rc: int, err: str) -> None:
    assert rc == 130 and "Traceback" not in err, err
    ours = [ln for ln in err.splitlines() if ln.startswith("mmviad:")]
    assert ours == ["mmviad: interrupted; finished work is kept (rerun the command to continue)"], err


def _loaded(pid: int, library: str) -> bool:
    """Whether process ``pid`` has mapped a shared library whose path contains ``library``."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["starting", "importing", "planning"])
def test_ctrl_c_during_plan(tmp_path, moment):
    """Ctrl-C stops `mmviad plan` with one line and exit 130 and leaves no partial plan, whenever it
    comes: while the command's own module loads, while the heavy modules load (trimesh's optional
    imports swallow an interrupt: the CLI holds it back there), and while planning (pool workers)."""
    cfg = tmp_path / "big.yaml"
    cfg.write_text("name: big\nobjects:\n  categories: [vase0, cup0, bowl0, bottle0]\n  objects_per_category: 12\n")
    out = tmp_path / "out"
    ready = {"starting": lambda pid: _loaded(pid, "_json"),        # the stdlib's json: cli.py's own imports
             "importing": lambda pid: _loaded(pid, "numpy"),       # trimesh (or its numpy) is being imported
             "planning": lambda pid: bool(process_ids("pipeline.cli", "plan", str(cfg))[1:]) or
             _loaded(pid, "manifold")}[moment]
    rc, err = _ctrl_c(["plan", "--config", str(cfg), "--out", str(out), "--no-progress"], ready)
    _interrupted_cleanly(rc, err)
    assert not (out / "jobs.jsonl").exists() and not list(out.glob(".*.tmp"))


def test_ctrl_c_during_render_keeps_finished_jobs(tmp_path):
    out = tmp_path / "out"
    scratch = tmp_path / "scratch"
    config = smoke_config(tmp_path, scratch_dir=str(scratch))
    rc, err = _ctrl_c(["render", "--config", str(config), "--out", str(out), "--no-progress"],
                      lambda _pid: any((out / "renders").glob("*/DONE")) if (out / "renders").exists() else False)
    _interrupted_cleanly(rc, err)
    done = {p.parent.name for p in (out / "renders").glob("*/DONE")}
    assert done
    _check_complete_jobs(out, 60)
    assert not process_ids("render_job.py", str(scratch)), "a Blender process outlived the interrupt"
    again = run_mmviad("render", "--config", str(config), "--out", str(out), "--no-progress")
    assert f"{len(done)} skipped" in again.stdout, again.stdout


def test_ctrl_c_during_clips_keeps_finished_clips(smoke_built, smoke_out):
    """Interrupted while encoding: every clip index present is valid with its videos, no temp file
    is left, and the rerun gives the same bytes as the uninterrupted build."""
    from pipeline.records import read_clip_index

    clips = smoke_out / "clips"
    shutil.rmtree(clips)
    (smoke_out / "clips.jsonl").unlink()
    rc, err = _ctrl_c(["clips", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress"],
                      lambda _pid: any(clips.glob("*.clips.json")) if clips.exists() else False)
    _interrupted_cleanly(rc, err)
    indexes = list(clips.glob("*.clips.json"))
    assert indexes and not list(clips.glob(".*.tmp"))
    for f in indexes:
        for c in read_clip_index(f):
            assert (smoke_out / c.video).stat().st_size > 0 and (smoke_out / c.video_marked).stat().st_size > 0
    run_mmviad("clips", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress")
    for f in sorted((smoke_built / "clips").iterdir()):
        assert (clips / f.name).read_bytes() == f.read_bytes(), f.name


_STARTS_BLENDER = """
import sys
from pathlib import Path
from pipeline.render.blender import run_blender
run_blender(Path(sys.argv[1]), Path(sys.argv[2]), 600)
"""


def test_blender_dies_with_the_process_that_started_it(smoke_built, tmp_path):
    """A Ray worker killed with its driver or node must not leave its Blender rendering on: the job's
    rerun starts over in the same scratch folder. Kill the process that started Blender (SIGKILL:
    nothing of it runs afterwards) and Blender goes too."""
    import json

    job = sorted(p for p in (smoke_built / "renders").iterdir() if (p / "DONE").exists())[0]
    spec = json.loads((job / "scene.json").read_text())
    spec["mesh"], spec["output"] = str(job / "object.npz"), str(tmp_path / "render")
    if "twin_mesh" in spec:
        spec["twin_mesh"] = str(job / "twin.npz")
    spec["render"]["samples"] = 512   # long enough to be still rendering when its parent dies
    spec_path = tmp_path / "scene.json"
    spec_path.write_text(json.dumps(spec))
    parent = subprocess.Popen([sys.executable, "-c", _STARTS_BLENDER, str(spec_path), str(tmp_path / "blender.log")],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "render").rglob("*.png")):
        time.sleep(0.1)
    blender = process_ids("render_job.py", str(spec_path))
    assert blender, "Blender did not start rendering"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_ids("render_job.py", str(spec_path)):
        time.sleep(0.1)
    left = process_ids("render_job.py", str(spec_path))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "Blender kept rendering after the process that started it died"
