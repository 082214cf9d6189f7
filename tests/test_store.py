"""``--out`` as a URL: the store primitives and the mirror, against an S3-compatible server.

The server is moto's S3 server mode (``moto.server.ThreadedMotoServer``), started on 127.0.0.1 inside
the test session: a stand-in for S3, which cannot be reached from the test machine. The client side
is the real one (``s3fs`` through ``fsspec``, pointed at the server by ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SMOKE, run_mmviad

pytest.importorskip("moto.server", reason="moto is not installed (pip install -e '.[dev]')")
pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[dev]')")

from pipeline.mirror import LOCAL_ONLY, MANIFEST, Mirror, is_marker, wants  # noqa: E402
from pipeline.store import Store, check_key, is_url, local_path  # noqa: E402


def _tree(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under ``root`` (the mirror's manifest and local-only
    work folders left out)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST and not p.relative_to(root).as_posix().startswith(LOCAL_ONLY)}


def _store_tree(store: Store) -> dict[str, str]:
    return {k: hashlib.sha256(store.read_bytes(k)).hexdigest() for k in store.listing()}


def test_urls_and_keys():
    assert is_url("s3://b/x") and is_url("gs://b") and not is_url("out/x") and not is_url("file:///tmp/x")
    assert local_path("file:///tmp/x") == Path("/tmp/x")
    for bad in ("../x", "a/../b", "/abs", "a//b", "", "a\\b"):
        with pytest.raises(ValueError, match="not a key inside the dataset"):
            check_key(bad)
    with pytest.raises(ValueError, match="needs a bucket"):
        Store("s3://")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_store_primitives(where, bucket, tmp_path):
    store = Store(f"{bucket}/ds" if where == "s3" else tmp_path / "ds")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    store.put_file(src, "renders/j1/meta.json")
    store.put_bytes(b"done", "renders/j1/DONE")
    store.put_bytes(b"a", "clips/c.mp4")
    assert store.exists("renders/j1/DONE") and not store.exists("renders/j2/DONE")
    assert store.read_bytes("renders/j1/meta.json") == b"x" * 1000
    assert sorted(store.listing()) == ["clips/c.mp4", "renders/j1/DONE", "renders/j1/meta.json"]
    assert sorted(store.listing("renders")) == ["renders/j1/DONE", "renders/j1/meta.json"]
    store.get_file("renders/j1/DONE", tmp_path / "got" / "DONE")
    assert (tmp_path / "got" / "DONE").read_bytes() == b"done"
    store.remove("renders/j1")
    assert sorted(store.listing()) == ["clips/c.mp4"]
    with pytest.raises(FileNotFoundError, match="renders/j1/DONE: not found"):
        store.read_bytes("renders/j1/DONE")


def test_mirror_pulls_changes_and_pushes_markers_last(bucket, tmp_path):
    store = Store(f"{bucket}/ds")
    for k in ("jobs.jsonl", "renders/j1/DONE", "renders/j1/unmarked/0000.png", "clips/c1.mp4", "annotations/j1.json"):
        store.put_bytes(k.encode(), k)
    m = Mirror(store, tmp_path / "cache")
    assert m.pull(wants("meta"), progress=False) == 3          # no media
    assert not (tmp_path / "cache" / "clips" / "c1.mp4").exists()
    assert m.pull(wants("clips"), progress=False) == 1         # now the clip, nothing pulled twice
    assert m.pull(wants("all"), progress=False) == 1
    assert m.changes() == ([], [])
    # local edits, a new job, a deletion → pushed; the markers after the rest
    (tmp_path / "cache" / "annotations" / "j1.json").write_text("changed")
    for k in ("renders/j2/meta.json", "renders/j2/DONE", "clips/j2.clips.json", "renders/.staging/j3/x"):
        (tmp_path / "cache" / k).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cache" / k).write_text(k)
    (tmp_path / "cache" / "clips" / "c1.mp4").unlink()
    changed, deleted = m.changes()
    assert deleted == ["clips/c1.mp4"] and "renders/.staging/j3/x" not in changed
    assert m.push(progress=False) == 4
    assert _store_tree(store) == _tree(tmp_path / "cache") and "renders/.staging/j3/x" not in store.listing()
    assert [is_marker(k) for k in ("renders/j2/DONE", "clips/j2.clips.json", "clips.jsonl", "annotations/j1.json")] \
        == [True, True, True, False]
    # a change made in the store by someone else comes down; a local copy of a file deleted there goes
    store.put_bytes(b"new", "annotations/j1.json")
    store.remove("renders/j2/meta.json")
    m2 = Mirror(store, tmp_path / "cache")
    assert m2.pull(wants("all"), progress=False) == 1
    assert (tmp_path / "cache" / "annotations" / "j1.json").read_bytes() == b"new"
    assert not (tmp_path / "cache" / "renders" / "j2" / "meta.json").exists()
    with pytest.raises(ValueError, match="belongs to"):
        Mirror(Store(f"{bucket}/other"), tmp_path / "cache")


_PUSH = """
import sys
from pipeline.mirror import Mirror
from pipeline.store import Store
Mirror(Store(sys.argv[1]), sys.argv[2]).push(progress=False)
"""


def test_a_push_killed_midway_leaves_no_marker_without_its_files(bucket, s3_env, tmp_path):
    """SIGKILL a push while it uploads: every marker in the store has all its job's files, and the
    next push completes the store."""
    cache = tmp_path / "cache"
    for j in range(6):
        for i in range(40):
            (cache / "renders" / f"j{j}" / "mask").mkdir(parents=True, exist_ok=True)
            (cache / "renders" / f"j{j}" / "mask" / f"{i:04d}.png").write_bytes(os.urandom(2000))
        (cache / "renders" / f"j{j}" / "DONE").write_text("{}")
    url = f"{bucket}/ds"
    store = Store(url)
    env = {**os.environ, **s3_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _PUSH, url, str(cache)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while len(store.listing()) < 30 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = store.listing()
    assert 0 < len(partial) < 6 * 41, "the kill landed before or after the upload; the test proves nothing"
    for j in range(6):
        if f"renders/j{j}/DONE" in partial:
            assert all(f"renders/j{j}/mask/{i:04d}.png" in partial for i in range(40))
    assert not any(k.endswith("DONE") for k in partial)   # markers go after every other file
    subprocess.run([sys.executable, "-c", _PUSH, url, str(cache)], env=env, cwd=ROOT, check=True)
    assert _store_tree(store) == _tree(cache)


def test_build_into_s3_equals_build_into_a_folder(smoke_built, bucket, s3_env, tmp_path):
    """``mmviad build --out s3://...`` gives the same QA files, annotations and clip bytes as the local
    build (render tasks publish into the store, the other stages work on the driver's copy); later
    stages read through the store from a fresh cache."""
    url = f"{bucket}/smoke"
    env = {**os.environ, **s3_env}
    run_mmviad("build", "--config", str(SMOKE), "--out", url, "--cache", str(tmp_path / "cache"), "--no-progress",
               env=env)
    store = Store(url)
    remote = _store_tree(store)
    local = _tree(smoke_built)
    # the render tasks published straight into the store: their frames never reached the driver's copy
    assert any(k.startswith("renders/") and k.endswith(".png") for k in remote)
    assert not list((tmp_path / "cache" / "renders").rglob("*.png"))
    for key in [k for k in local if k.startswith(("qa/", "annotations/", "clips/"))]:
        assert remote.get(key) == local[key], key
    assert not any(k.startswith("renders/.staging") for k in remote)
    # a second machine: a fresh cache pulls only what qa needs and writes the same files
    store.remove("qa")
    proc = run_mmviad("qa", "--config", str(SMOKE), "--out", url, "--cache", str(tmp_path / "cache2"),
                      "--no-progress", env=env)
    assert "qa:" in proc.stdout
    assert not list((tmp_path / "cache2").rglob("*.mp4")) and not list((tmp_path / "cache2").rglob("*.png"))
    for key in [k for k in local if k.startswith("qa/standard/")]:
        assert hashlib.sha256(store.read_bytes(key)).hexdigest() == local[key], key
