import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_out(tmp_path_factory) -> Path:
    """The smoke dataset (2 orbits, 6 clips) built once per session with the real pipeline."""
    from pipeline.cli import main

    out = tmp_path_factory.mktemp("smoke") / "out"
    rc = main(["build", "--config", str(REPO / "manifests" / "smoke.yaml"), "--out", str(out), "--no-progress"])
    assert rc == 0
    return out


@pytest.fixture
def smoke_copy(smoke_out, tmp_path) -> Path:
    """A private copy of the smoke dataset's clips and QA files (tests write eval outputs into it)."""
    dst = tmp_path / "out"
    for sub in ("clips", "qa"):
        shutil.copytree(smoke_out / sub, dst / sub)
    return dst
