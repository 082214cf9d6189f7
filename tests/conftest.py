"""Shared fixtures. The smoke dataset is built once per session with the real pipeline
(real Ray, real Blender via the bpy wheel) and reused by the integration tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT
SMOKE = ROOT / "manifests" / "smoke.yaml"


def run_mmviad(*args: str, check: bool = True, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed ``mmviad`` entry point as a user would (a separate process)."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def smoke_out(tmp_path_factory) -> Path:
    """The smoke dataset (3 orbits, 9 clips), built once per session. Tests must not write into it."""
    out = tmp_path_factory.mktemp("smoke")
    run_mmviad("build", "--config", str(SMOKE), "--out", str(out), "--no-progress")
    return out


@pytest.fixture
def smoke_copy(smoke_out, tmp_path) -> Path:
    """A private copy of the smoke dataset's clips and QA files (tests write eval outputs into it)."""
    dst = tmp_path / "out"
    for sub in ("clips", "qa"):
        shutil.copytree(smoke_out / sub, dst / sub)
    for f in ("clips.jsonl", "jobs.jsonl"):
        shutil.copy2(smoke_out / f, dst / f)
    return dst
