"""GPU render path: runs only where a CUDA/OptiX GPU exists (``pytest -m gpu``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_render_modes import tiny
from pipeline.plan import plan_jobs
from pipeline.render.gpu import gpu_env
from pipeline.render.job import render_job

HAS_GPU = shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU on this machine "
                                                  "(nvidia-smi or /dev/nvidia0 missing); GPU render path not tested")]


def test_gpu_render_uses_exactly_one_optix_or_cuda_device(tmp_path):
    cfg = tiny(device="gpu", kernel_cache_dir=str(tmp_path / "kc"))
    job = next(j for j in plan_jobs(cfg) if j["defect"])
    env = gpu_env("gpu", cfg.render.kernel_cache_dir, {"CUDA_VISIBLE_DEVICES": "0"})
    res = render_job(job, cfg, tmp_path, env)
    assert res.state == "done", res.error
    meta = json.loads((tmp_path / "renders" / job["job_id"] / "meta.json").read_text())
    assert meta["render"]["backend"] in ("OPTIX", "CUDA")
    assert len(meta["render"]["gpu_devices"]) == 1
