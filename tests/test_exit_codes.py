"""Exit codes and summaries (issue #9 §5): a stage exits 1 when any job failed and prints one line
per failed job with the path to that job's log; the other jobs finish. Real processes on a copy
of the smoke build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SMOKE, run_mmviad
from pipeline.io import read_jsonl

pytestmark = pytest.mark.slow


def _jobs(out: Path) -> list[str]:
    return [j["job_id"] for j in read_jsonl(out / "jobs.jsonl")]


def _failed(stderr: str) -> dict[str, str]:
    return {ln.split()[1].rstrip(":"): ln for ln in stderr.splitlines() if ln.strip().startswith("FAILED ")}


def test_annotate_fails_only_the_job_with_a_missing_frame(smoke_out):
    broken, *others = _jobs(smoke_out)
    frame = smoke_out / "renders" / broken / "marked" / "0005.png"
    frame.unlink()
    before = {j: (smoke_out / "annotations" / f"{j}.json").read_bytes() for j in others}
    proc = run_mmviad("annotate", "--config", str(SMOKE), "--out", str(smoke_out), "--force", "--no-progress",
                      check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "annotate: 2 done, 1 failed" in proc.stdout
    line = _failed(proc.stderr)[broken]
    log = smoke_out / "logs" / "annotate" / f"{broken}.log"
    assert f"{frame}: cannot read image" in line and f"(log: {log})" in line
    assert str(frame) in log.read_text()
    assert set(_failed(proc.stderr)) == {broken}
    # the others were recomputed (forced) to the same bytes
    assert before == {j: (smoke_out / "annotations" / f"{j}.json").read_bytes() for j in others}


def test_clips_fails_only_the_job_with_a_missing_frame_and_leaves_no_temp_file(smoke_out):
    broken, *others = _jobs(smoke_out)
    frame = smoke_out / "renders" / broken / "unmarked" / "0025.png"   # in the second clip
    frame.unlink()
    (smoke_out / "clips" / f"{broken}.clips.json").unlink()            # so clips redoes this job
    proc = run_mmviad("clips", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "clips: 1 failed, 2 skipped" in proc.stdout
    line = _failed(proc.stderr)[broken]
    assert f"{frame}: cannot read frame" in line and f"(log: {smoke_out / 'logs' / 'clips' / (broken + '.log')})" in line
    assert not list((smoke_out / "clips").glob(".*.tmp"))
    assert not (smoke_out / "clips" / f"{broken}.clips.json").exists()   # the job's clips are not marked complete
    assert all((smoke_out / "clips" / f"{j}.clips.json").exists() for j in others)


def test_qa_exits_1_and_names_jobs_without_clips(smoke_out):
    missing = _jobs(smoke_out)[0]
    (smoke_out / "clips" / f"{missing}.clips.json").unlink()
    proc = run_mmviad("qa", "--config", str(SMOKE), "--out", str(smoke_out), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "1 job(s) have no clips yet" in proc.stderr and f"MISSING {missing}:" in proc.stderr
    assert f"(log: {smoke_out / 'logs' / 'render' / (missing + '.log')})" in proc.stderr
    rows = read_jsonl(smoke_out / "qa" / "standard" / "train.jsonl") + read_jsonl(smoke_out / "qa" / "standard" / "test.jsonl")
    assert rows and missing not in {r["job_id"] for r in rows}     # the rest is still built


def test_render_failure_gives_exit_1_and_the_log_path(smoke_out):
    """A finished job whose DONE marker is gone and whose mesh spec is broken is re-rendered and
    fails; the summary names its log; the two others are skipped (still complete)."""
    jobs = read_jsonl(smoke_out / "jobs.jsonl")
    broken = next(j for j in jobs if j["defect"])
    broken["object"]["defect_params"]["center"] = 10**9
    edited = smoke_out / "edited.jsonl"
    edited.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    (smoke_out / "renders" / broken["job_id"] / "DONE").unlink()
    proc = run_mmviad("render", "--config", str(SMOKE), "--out", str(smoke_out), "--jobs", str(edited),
                      "--no-progress", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "render: 1 failed, 2 skipped" in proc.stdout
    line = _failed(proc.stderr)[broken["job_id"]]
    log = smoke_out / "logs" / "render" / f"{broken['job_id']}.log"
    assert "defect_params.center" in line and f"(log: {log})" in line and "defect_params.center" in log.read_text()
