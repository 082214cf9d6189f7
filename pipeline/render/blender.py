"""Start one headless Blender process for one scene spec (argument lists only, never a shell)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..paths import BLENDER_SCRIPTS

SCRIPT = BLENDER_SCRIPTS / "render_job.py"


def blender_command(spec_path: Path) -> list[str]:
    """``$BLENDER -b --factory-startup -P render_job.py -- spec`` when ``BLENDER`` names a binary,
    else the ``bpy`` module in this interpreter: ``python render_job.py spec``."""
    blender = os.environ.get("BLENDER")
    if blender:
        return [blender, "-b", "--factory-startup", "--python-exit-code", "3", "-P", str(SCRIPT), "--",
                str(spec_path)]
    return [sys.executable, str(SCRIPT), str(spec_path)]


def run_blender(spec_path: Path, log_path: Path, timeout_s: float, env: dict[str, str] | None = None) -> int:
    """Run Blender on ``spec_path`` with stdout and stderr appended to ``log_path``; return its exit code.

    A timeout kills the process and returns -9, like a crash. Blender is told this process's pid
    (``MMVIAD_PARENT_PID``) and dies with it (blender_scripts/render_job.py), so a killed task leaves no
    Blender running."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(blender_command(spec_path), stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {}), "MMVIAD_PARENT_PID": str(os.getpid())},
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            log.write(f"\n[mmviad] killed after {timeout_s:.0f} s timeout\n".encode())
            return -9
