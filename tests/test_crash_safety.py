"""Crash safety (#9): Blender killed at random points, the driver killed between stages; the rerun
finishes and its labels are byte-identical to an uninterrupted run (the session's smoke build)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SMOKE, process_ids, run_mmviad

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
    rng = np.random.default_rng(1234)
    frames = 60
    cmd = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(SMOKE), "--out", str(out), "--no-progress"]
    kills = 0
    # Run 1: kill Blender at random moments, several times.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    next_kill = time.time() + rng.uniform(1.0, 4.0)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        _check_complete_jobs(out, frames)
        if kills < 4 and time.time() >= next_kill:
            for pid in process_ids("render_job.py", str(out)):
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
    final = run_mmviad("build", "--config", str(SMOKE), "--out", str(out), "--no-progress")
    assert "failed" not in final.stdout
    _check_complete_jobs(out, frames)
    assert not any((out / "renders" / ".staging").glob("*"))
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
    assert res.status == "failed" and "lock" in res.error
    assert not (tmp_path / "renders" / ".staging" / job["job_id"]).exists()
