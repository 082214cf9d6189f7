"""Resumable planning: per-object results cached in <out>/.plan-cache, an interrupted plan resumes
and ends byte-identical to an uninterrupted one; the plan fingerprint covers every planning module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline import plan_cache
from pipeline.config import Config, load_config
from pipeline.plan import plan_fingerprint, planning_files, write_plan

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "manifests" / "smoke.yaml"

# 24 defective objects of all six types at the paper's visible-clip target: ~0.1-0.2 s of CPU each.
RESUME_CONFIG = """\
name: resume
seed: 11
objects:
  categories: [vase0, cup0, bottle0, bowl0]
  objects_per_category: 6
  normal_share: 0.0
scene:
  visibility: {target_share: 0.65, candidates: 30}
"""


def _plan_cmd(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "plan", "--config", str(cfg), "--out", str(out), "--no-progress"]


def _entries(out: Path) -> dict[str, tuple[int, int]]:
    """Finished cache entries: name → (inode, mtime) (a rewritten entry gets a new inode)."""
    d = out / plan_cache.CACHE_DIR
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in d.glob("*.json")} if d.is_dir() else {}


def _interrupt(cfg: Path, out: Path, sig: int, after: int) -> subprocess.CompletedProcess:
    """Start a plan in its own process group and send ``sig`` to the whole group (what a terminal's
    Ctrl-C does) once ``after`` more objects are cached than when it started."""
    before = len(_entries(out))
    proc = subprocess.Popen(_plan_cmd(cfg, out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while len(_entries(out)) < before + after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the plan finished before it could be interrupted"
    assert not (out / "jobs.jsonl").exists()
    os.killpg(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_an_interrupted_plan_resumes_and_ends_byte_identical(tmp_path):
    cfg = tmp_path / "resume.yaml"
    cfg.write_text(RESUME_CONFIG)
    whole = tmp_path / "whole"
    subprocess.run(_plan_cmd(cfg, whole), cwd=ROOT, check=True, capture_output=True, timeout=900)
    n_objects = len(_entries(whole))
    assert n_objects == 24

    out = tmp_path / "interrupted"
    ctrl_c = _interrupt(cfg, out, signal.SIGINT, after=3)
    assert ctrl_c.returncode != 0 and not (out / "jobs.jsonl").exists()
    assert "PoolWorker" not in ctrl_c.stderr, ctrl_c.stderr  # no worker prints its own traceback
    kept = _entries(out)
    assert 3 <= len(kept) < n_objects

    killed = _interrupt(cfg, out, signal.SIGKILL, after=3)  # no clean-up at all this time
    assert killed.returncode == -signal.SIGKILL
    kept2 = _entries(out)
    assert all(kept2[k] == v for k, v in kept.items())       # the first run's results were reused
    assert len(kept) + 3 <= len(kept2) < n_objects

    subprocess.run(_plan_cmd(cfg, out), cwd=ROOT, check=True, capture_output=True, timeout=900)
    final = _entries(out)
    assert all(final[k] == v for k, v in kept2.items())      # reused again, not recomputed
    assert set(final) == set(_entries(whole))
    assert (out / "jobs.jsonl").read_bytes() == (whole / "jobs.jsonl").read_bytes()
    assert not list((out / plan_cache.CACHE_DIR).glob("*.tmp"))  # a killed writer's temp file is pruned


def test_a_damaged_entry_is_recomputed_and_old_entries_pruned(tmp_path):
    cfg = load_config(SMOKE)
    plan_cache._MEMO.clear()
    first = write_plan(cfg, tmp_path).read_bytes()
    entries = sorted((tmp_path / plan_cache.CACHE_DIR).glob("*.json"))
    assert len(entries) == 3 and all(json.loads(p.read_text())["key"] == p.stem for p in entries)
    entries[0].write_text(entries[0].read_text()[:100])       # e.g. a copy cut short by a full disk
    plan_cache._MEMO.clear()
    assert write_plan(cfg, tmp_path).read_bytes() == first
    assert json.loads(entries[0].read_text())["key"] == entries[0].stem

    other = Config.model_validate({**cfg.model_dump(), "seed": cfg.seed + 1})
    write_plan(other, tmp_path)
    now = {p.name for p in (tmp_path / plan_cache.CACHE_DIR).glob("*.json")}
    assert len(now) == 3 and not now & {p.name for p in entries}


def test_objects_not_touched_by_a_config_change_are_reused(tmp_path):
    """The shard count, the annotation threshold and the visible-clip target do not change what an
    object is (its defect and its predicted pixels): changing them re-plans from the cache."""
    cfg = load_config(SMOKE)
    plan_cache._MEMO.clear()
    write_plan(cfg, tmp_path)
    before = _entries(tmp_path)
    d = cfg.model_dump()
    d["num_shards"] = 3
    d["annotate"]["min_visible_px"] = 9
    changed = Config.model_validate(d)
    assert plan_fingerprint(changed) != plan_fingerprint(cfg)
    plan_cache._MEMO.clear()
    write_plan(changed, tmp_path)
    assert _entries(tmp_path) == before
    d["render"]["width"] = 96                                  # the frame size does change the prediction
    plan_cache._MEMO.clear()
    write_plan(Config.model_validate(d), tmp_path)
    assert not set(_entries(tmp_path)) & set(before)


def test_the_fingerprint_covers_every_module_planning_runs():
    """Every ``pipeline`` module loaded while planning (here, in a fresh interpreter, all in one
    process) is hashed into the plan fingerprint and the per-object cache keys."""
    code = ("import sys; from pipeline.config import load_config; from pipeline.plan import plan_jobs; "
            f"plan_jobs(load_config({str(SMOKE)!r}), progress=False, workers=1); "
            "print('\\n'.join(sorted(m.__file__ for n, m in list(sys.modules.items()) "
            "if (n == 'pipeline' or n.startswith('pipeline.')) and getattr(m, '__file__', None))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=300)
    loaded = {Path(x).resolve() for x in proc.stdout.split()}
    assert any(p.name == "intervals.py" for p in loaded)
    assert loaded <= set(planning_files()), sorted(str(p) for p in loaded - set(planning_files()))


def test_the_import_closure_follows_every_kind_of_import(tmp_path):
    """planning_files() is the import closure of pipeline.plan: a module that planning starts to
    import (at the top, inside a function, relatively or absolutely, or as ``from pkg import mod``)
    is hashed without anyone listing it; a module nobody imports is not."""
    from pipeline.plan import module_closure

    pkg = tmp_path / "pkg"
    for rel, code in {"__init__.py": "", "plan.py": "from . import a\nimport pkg.sub.c\ndef f():\n    from .b import x\n",
                      "a.py": "import os\n", "b.py": "from .sub import d\nx = 1\n", "sub/__init__.py": "",
                      "sub/c.py": "", "sub/d.py": "from ..e import y\n", "e.py": "y = 1\n", "unused.py": ""}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(code)
    found = {str(p.relative_to(pkg)) for p in module_closure(pkg, "pkg.plan")}
    assert found == {"__init__.py", "plan.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py", "sub/d.py", "e.py"}
    names = {str(p.relative_to(ROOT / "pipeline")) for p in planning_files()}
    # lazily imported by the planner, and the mesh builder it shares with the render stage
    assert {"objects/sources.py", "scenery/meshes.py", "records.py"} <= names
    assert "render/job.py" not in names and "cli.py" not in names


def _worker_probe(cfg: object, unit: int) -> dict:
    """What a planning worker runs on: its pid, its cores and its BLAS threads (after numpy loads)."""
    import numpy  # noqa: F401  (planning loads it: the BLAS limit must hold for it)
    from threadpoolctl import threadpool_info

    time.sleep(0.2)  # long enough that both workers take tasks
    return {"pid": os.getpid(), "cores": sorted(os.sched_getaffinity(0)),
            "blas": sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})}


def test_planning_workers_get_their_own_cores_and_one_blas_thread():
    """Two workers on two or more cores: disjoint core sets, one BLAS thread each (threads that spin
    for a core the other worker holds cost CPU for nothing)."""
    if len(os.sched_getaffinity(0)) < 2:
        import pytest

        pytest.skip("needs two cores")
    units = list(range(8))
    keys = [f"worker-probe-{time.time_ns()}-{u}" for u in units]  # never in the in-process memo
    got = plan_cache.run_objects(_worker_probe, None, units, keys, plan_cache.ObjectCache(None), lambda u: u,
                                 workers=2, progress=False)
    cores = {r["pid"]: frozenset(r["cores"]) for r in got}
    assert len(cores) == 2, cores
    a, b = cores.values()
    assert a and b and not a & b
    assert all(r["blas"] == [1] for r in got), got
