"""Shared fixtures. The smoke dataset is built once per session with the real pipeline
(real Ray, real Blender via the bpy wheel) and reused by the integration tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
    out = tmp_path_factory.mktemp("smoke")
    run_mmviad("build", "--config", str(SMOKE), "--out", str(out), "--no-progress")
    return out
