"""Real Blender, tiny renders: ``marked: render`` vs ``marked: composite`` (``marked: region``: see
test_region.py), the loud GPU failure on a machine without a GPU (and the test-only switch that
renders such a job on the CPU), and the calibration behind
``mmviad plan --estimate``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SMOKE, run_mmviad
from pipeline.config import Config, load_config
from pipeline.plan import plan_jobs
from pipeline.render.gpu import TEST_GPU_ON_CPU_BACKEND, TEST_GPU_ON_CPU_ENV
from pipeline.render.job import error_path, render_job

pytestmark = pytest.mark.slow


def tiny(**render) -> Config:
    base = load_config(SMOKE).model_dump()
    base["render"].update({"orbit_frames": 20, "fps": 10, "clip_seconds": 2.0, "retries": 0, **render})
    return Config.model_validate(base)


def has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()


def files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*.png"))


def test_marked_render_and_composite_give_the_same_files(tmp_path):
    cfg_r, cfg_c = tiny(marked="render"), tiny(marked="composite")
    job = next(j for j in plan_jobs(cfg_r) if j["defect"])
    assert job == next(j for j in plan_jobs(cfg_c) if j["defect"])
    res = {m: render_job(job, c, tmp_path / m) for m, c in (("render", cfg_r), ("composite", cfg_c))}
    assert all(r.state == "done" for r in res.values()), res
    d_r, d_c = (tmp_path / m / "renders" / job["job_id"] for m in ("render", "composite"))
    assert files(d_r) == files(d_c) and len(files(d_r)) == 4 * 20  # unmarked, marked, mask, objmask
    shown, red_votes = 0, []
    for i in range(20):
        name = f"{i:04d}.png"
        mask_r = cv2.imread(str(d_r / "mask" / name), cv2.IMREAD_GRAYSCALE)
        mask_c = cv2.imread(str(d_c / "mask" / name), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(mask_r, mask_c), name  # same scene, same seed: identical exact mask
        assert np.array_equal(cv2.imread(str(d_r / "unmarked" / name)), cv2.imread(str(d_c / "unmarked" / name)))
        unmarked = cv2.imread(str(d_c / "unmarked" / name)).astype(int)
        marked = cv2.imread(str(d_c / "marked" / name)).astype(int)
        changed = np.abs(marked - unmarked).max(axis=2) > 0
        sel = mask_c > 127
        # Composite: exactly the mask pixels change (a masked pixel that already had the paint
        # colour could stay, so only "no change outside the mask" and "red inside" are exact).
        assert not (changed & ~sel).any(), name
        if sel.any():
            shown += 1
            assert (marked[sel][:, 2] > marked[sel][:, :2].max(axis=1)).all(), name
            rendered = cv2.imread(str(d_r / "marked" / name)).astype(int)
            red_votes.append(rendered[sel][:, 2] > rendered[sel][:, :2].max(axis=1))
    assert shown > 0
    # The rendered paint is lit and noisy at 2 spp; most (not all) of its mask pixels read red.
    assert np.concatenate(red_votes).mean() > 0.8
    meta_r, meta_c = (json.loads((d / "meta.json").read_text()) for d in (d_r, d_c))
    assert meta_r["marked_rendered"] and not meta_c["marked_rendered"]
    assert meta_c["look"]["material"]["name"] == job["material"]["name"]


@pytest.mark.skipif(has_gpu(), reason="this machine has a GPU: the no-GPU failure cannot be shown here")
def test_gpu_device_without_a_gpu_fails_loudly_and_is_recorded(tmp_path):
    cfg = tiny(device="gpu", retries=2)
    job = plan_jobs(cfg)[0]
    # the test-only GPU-on-CPU fake explicitly off, whatever this shell has
    res = render_job(job, cfg, tmp_path, {"CUDA_VISIBLE_DEVICES": "", TEST_GPU_ON_CPU_ENV: "0"})
    assert res.state == "failed" and res.attempts == 1  # a setup error is not retried
    assert "no OptiX or CUDA device" in res.error and "refusing to fall back to the CPU" in res.error
    err = json.loads(error_path(tmp_path, job["job_id"]).read_text())
    assert "no OptiX or CUDA device" in err["error"]
    assert "[render_job] FATAL:" in Path(res.log).read_text()
    assert not (tmp_path / "renders" / job["job_id"]).exists()


def test_test_only_gpu_on_cpu_switch_renders_on_the_cpu_and_says_so(tmp_path):
    """The fake behind tests/test_ray_cluster.py: ``device: gpu`` rendered on the CPU, recorded as such."""
    cfg = tiny(device="gpu", orbit_frames=4, clip_seconds=0.4)
    job = plan_jobs(cfg)[0]
    res = render_job(job, cfg, tmp_path, {"CUDA_VISIBLE_DEVICES": "", TEST_GPU_ON_CPU_ENV: "1"})
    assert res.state == "done", res.error
    meta = json.loads((tmp_path / "renders" / job["job_id"] / "meta.json").read_text())
    assert meta["render"]["device"] == "gpu" and meta["render"]["backend"] == TEST_GPU_ON_CPU_BACKEND
    assert meta["render"]["gpu_devices"] == [] and "placement" not in meta  # no Ray task: no placement
    assert f"{TEST_GPU_ON_CPU_ENV}=1: test-only fake" in Path(res.log).read_text()


@pytest.mark.skipif(has_gpu(), reason="this machine has a GPU: the no-GPU failure cannot be shown here")
def test_render_command_with_device_gpu_fails_without_gpu(tmp_path):
    cfg_path = tmp_path / "gpu.yaml"
    cfg_path.write_text(SMOKE.read_text().replace("render:\n", "render:\n  device: gpu\n", 1))
    proc = run_mmviad("render", "--config", str(cfg_path), "--out", str(tmp_path / "o"), "--no-progress", check=False)
    assert proc.returncode != 0
    assert "no GPU" in proc.stderr and "FAILED" in proc.stderr


@pytest.mark.skipif(has_gpu(), reason="this machine has a GPU: the no-GPU failure cannot be shown here")
def test_plan_estimate_of_a_gpu_config_without_a_gpu_says_why_and_how(tmp_path):
    cfg_path = tmp_path / "gpu.yaml"
    cfg_path.write_text(SMOKE.read_text().replace("render:\n", "render:\n  device: gpu\n", 1))
    proc = run_mmviad("plan", "--config", str(cfg_path), "--out", str(tmp_path / "o"), "--estimate", check=False,
                      env={**os.environ, TEST_GPU_ON_CPU_ENV: "0"})
    assert proc.returncode != 0
    assert "no OptiX or CUDA device" in proc.stderr and "--calibration-device cpu" in proc.stderr


def test_plan_estimate_calibrates_and_extrapolates(tmp_path):
    proc = run_mmviad("plan", "--config", str(SMOKE), "--out", str(tmp_path), "--estimate")
    out = proc.stdout
    assert "estimate: 3 orbits (2 defective) → 9 clips; 180 frames per pass, 300 Cycles frames" in out
    assert "calibration: 2 frame(s)" in out and "render time:" in out and "disk: renders" in out
    cal = next((tmp_path / "calibration").iterdir())
    assert len(list((cal / "unmarked").glob("*.png"))) == 2
    meta = json.loads((cal / "meta.json").read_text())
    assert len(meta["timings"]["unmarked_s"]) == 2
