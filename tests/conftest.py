"""Shared fixtures: real Blender renders of tiny datasets (once per session), copied per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO
SMOKE = REPO / "manifests" / "smoke.yaml"


def run_mmviad(*args: str, check: bool = True, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``mmviad`` as a user would: a separate process (so Ray and Blender start as in production)."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_ids(*needles: str) -> list[int]:
    """Pids of processes whose command line contains every needle (read from /proc)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if all(n in cmd for n in needles):
                pids.append(int(p.name))
    return pids


def smoke_config(folder: Path, name: str = "smoke.yaml", **render: str) -> Path:
    """manifests/smoke.yaml with extra ``render:`` keys (e.g. ``scratch_dir``, so that a test can find
    the job tasks' scratch folders and the Blender processes working there), written to ``folder``."""
    path = Path(folder) / name
    path.write_text(SMOKE.read_text().replace("render:\n", "render:\n" + "".join(f"  {k}: {v}\n" for k, v in
                                                                                  render.items()), 1))
    return path


@pytest.fixture(scope="session")
def smoke_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mmviad build`` of manifests/smoke.yaml (3 orbits, 64×36, 9 clips): rendered, annotated,
    clipped and QA'd, in a separate process. Read-only: use :func:`smoke_out` to change it."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    run_mmviad("build", "--config", str(SMOKE), "--out", str(out), "--no-progress")
    return out


@pytest.fixture()
def smoke_out(smoke_built: Path, tmp_path: Path) -> Path:
    """A private copy of the smoke build that a test may modify."""
    dst = tmp_path / "out"
    shutil.copytree(smoke_built, dst)
    return dst


@pytest.fixture()
def smoke_copy(smoke_out: Path) -> Path:
    """Alias used by the eval tests: a private copy of the smoke build."""
    return smoke_out


DIFF_YAML = """\
# one defective orbit at 160x90 with the default render look (denoised), for the diff tests
name: difftest
seed: 11
objects:
  categories: [vase0, bowl0, cup0, bottle0]
  objects_per_category: 1
  normal_share: 0.0
  defects: {bulge: 1}
render:
  width: 160
  height: 90
  samples: 8
  denoise: fast
  fps: 10
  orbit_frames: 20
  clip_seconds: 2.0
"""


@pytest.fixture(scope="session")
def diff_render(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real renders (marked, unmarked, exact mask) of one defective orbit; returns (config, out)."""
    root = tmp_path_factory.mktemp("difftest")
    cfg = root / "difftest.yaml"
    cfg.write_text(DIFF_YAML)
    out = root / "out"
    assert main(["plan", "--config", str(cfg), "--out", str(out)]) == 0
    from pipeline.plan import load_jobs

    first = load_jobs(out / "jobs.jsonl")[0]["job_id"]
    # render only the first job: keep the test short
    from pipeline.config import load_config
    from pipeline.render.runner import render_jobs

    res = render_jobs([j for j in load_jobs(out / "jobs.jsonl") if j["job_id"] == first], load_config(cfg), out,
                      progress=False)
    assert [r.state for r in res] == ["done"], res
    return cfg, out


CHROMIUM = os.environ.get("MMVIAD_CHROMIUM", "/usr/bin/chromium")
#: no background networking: this machine's closed network refuses Chromium's own connections
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """The system Chromium driven by Playwright (skips, saying why, where either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed "
                                   "(pip install -e '.[dev]')")
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.skip(f"no Chromium at {CHROMIUM} (make install runs `apt-get install -y chromium` as root; "
                    "or set MMVIAD_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """An S3 stand-in: moto's S3 server mode on a free loopback port (S3 itself cannot be reached from
    the test machine; the client side, s3fs through fsspec, is the real one); returns the environment that points
    boto/s3fs at it (also set in this process for the test session)."""
    moto_server = pytest.importorskip("moto.server", reason="moto is not installed (pip install -e '.[dev]')")
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[dev]')")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_buckets = iter(range(10_000))


@pytest.fixture()
def bucket(s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket; returns ``s3://<bucket>``."""
    import fsspec

    name = f"mmviad-test-{os.getpid()}-{next(_buckets)}"
    fsspec.filesystem("s3").mkdir(name)
    return f"s3://{name}"
