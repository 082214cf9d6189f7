"""Rebuild ``trainer/tests/data/smoke/`` from ``mmviad build`` of ``manifests/smoke.yaml``.

The trainer tests read this fixture because the trainer's environment cannot run Blender. Run it
with the pipeline's environment whenever the pipeline changes what the smoke build writes
(``tests/test_trainer_fixture.py`` fails then)::

    .venv/bin/python trainer/tests/data/regenerate.py

It keeps what the trainer reads: ``qa/<protocol>/{train,test}.jsonl`` and the unmarked clip MP4s
(9 clips of 64x36, 20 frames, about 90 KB in all).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.paths import REPO_ROOT as REPO

FIXTURE = Path(__file__).resolve().parent / "smoke"
CONFIG = REPO / "manifests" / "smoke.yaml"


def copy_fixture(built: Path, dest: Path = FIXTURE) -> list[Path]:
    """Copy the trainer-relevant files of a smoke build ``built`` into ``dest``; returns them."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(built.glob("qa/*/*.jsonl")) + sorted(p for p in built.glob("clips/*.mp4")
                                                        if not p.name.endswith(".marked.mp4"))
    for f in files:
        target = tmp / f.relative_to(built)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return [dest / f.relative_to(built) for f in files]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        cmd = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(CONFIG), "--out", str(out), "--no-progress"]
        subprocess.run(cmd, cwd=REPO, check=True)
        files = copy_fixture(out)
    print(f"{FIXTURE}: {len(files)} files, {sum(f.stat().st_size for f in files) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
