"""A real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``: a head and two
worker nodes, each its own raylet) rendering a ``render.device: gpu`` dataset.

The worker nodes declare *fake* GPU resources (2 and 1): Ray's scheduling is real (one GPU per
task, ``CUDA_VISIBLE_DEVICES`` set per task, jobs spread over nodes, a lost node's task rerun), but
this machine has no GPU, so Blender renders on the CPU through the test-only switch
``MMVIAD_TEST_GPU_ON_CPU=1`` (blender_scripts/render_settings.py), which ``meta.json`` records as
``render.backend: "cpu (test switch)"``. The driver is ``mmviad build`` in its own process,
connected through ``RAY_ADDRESS`` as on a real farm.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pytest

from conftest import ROOT, SMOKE, run_mmviad
from pipeline.config import Config

pytestmark = pytest.mark.slow

TEST_SWITCH_BACKEND = "cpu (test switch)"
#: GPUs declared by the two worker nodes (fake resources; the head declares none and renders nothing)
WORKER_GPUS = (2, 1)


def _gpu_config(root: Path) -> Path:
    """The smoke config (3 orbits, 64x36, 2 spp) with ``render.device: gpu`` and nothing else
    changed: each task asks Ray for 1 GPU and 1 CPU, so the 2-GPU node runs two tasks at once."""
    cfg = root / "cluster.yaml"
    cfg.write_text(SMOKE.read_text().replace("render:\n", "render:\n  device: gpu\n", 1))
    return cfg


def test_a_gpu_task_asks_for_one_gpu_and_one_cpu_whatever_the_driver_has():
    """Asking for the driver's core count per GPU task would leave all but one GPU of a node idle."""
    from pipeline.config import load_config
    from pipeline.render.runner import task_resources

    base = load_config(SMOKE).model_dump()
    for threads, cpus in ((0, 1.0), (4, 4.0)):
        base["render"].update(device="gpu", threads=threads)
        assert task_resources(Config.model_validate(base), cores=64)[0] == cpus
    base["render"].update(device="cpu", threads=0)
    assert task_resources(Config.model_validate(base), cores=64)[0] == 64.0  # the CPU default: every core


class FakeGpuCluster:
    """Head (no GPU) + worker nodes with fake GPUs, all on this machine, in a private Ray temp
    folder (so no other Ray on this machine finds it through /tmp/ray/ray_current_cluster)."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        from ray.cluster_utils import Cluster

        self.root = Path(tempfile.mkdtemp(prefix="mmviad-rc-"))  # short: Ray's socket paths have a length limit
        home = self.root / "home"
        home.mkdir()
        # Ray's processes must not probe cloud metadata (see runner._start_local_ray): a local provider stub.
        (home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
        for k, v in {"RAY_TMPDIR": str(self.root), "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0",
                     # Stated, not inherited: an earlier local ray.init() in this process sets
                     # RAY_AUTH_MODE=token with its token under another HOME, and this cluster's GCS
                     # would then die looking for a token in the private HOME. The cluster listens on
                     # loopback only and lives in a private temp folder, so no token is needed here.
                     "RAY_AUTH_MODE": "disabled",
                     # Inherited by every node's raylet and so by its workers and their Blender processes.
                     "MMVIAD_TEST_GPU_ON_CPU": "1",
                     "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}.items():
            mp.setenv(k, v)
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
            # detect a dead node within ~3 s instead of ~15 s
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                               "health_check_failure_threshold": 3}})
        self.workers = [self.cluster.add_node(num_cpus=g, num_gpus=g) for g in WORKER_GPUS]
        self.cluster.wait_for_nodes()

    def driver_env(self) -> dict[str, str]:
        """The driver's environment: the cluster's address; the test switch lives on the worker nodes only."""
        env = {**os.environ, "RAY_ADDRESS": self.cluster.address}
        env.pop("MMVIAD_TEST_GPU_ON_CPU")
        return env

    def shutdown(self) -> None:
        self.cluster.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def _metas(out: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "meta.json").read_text()) for d in sorted((out / "renders").iterdir())
            if (d / "DONE").exists()}


def _labels(out: Path) -> dict[str, bytes]:
    """The dataset's label files (what tests/test_crash_safety.py compares) plus the clip indexes."""
    files = (sorted(out.glob("annotations/*.json")) + sorted(out.glob("qa/*/*.jsonl")) +
             sorted(out.glob("clips/*.clips.json")) + [out / "clips.jsonl", out / "jobs.jsonl"])
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


@pytest.fixture(scope="module")
def cluster_build(tmp_path_factory: pytest.TempPathFactory):
    """An undisturbed ``mmviad build`` of the GPU-shaped smoke config on the fake-GPU cluster;
    returns (config, out, worker node ids)."""
    root = tmp_path_factory.mktemp("cluster")
    cfg = _gpu_config(root)
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        fc = FakeGpuCluster(mp)
        try:
            run_mmviad("build", "--config", str(cfg), "--out", str(out), "--no-progress", env=fc.driver_env(),
                       timeout=400)
            ids = [n.node_id for n in fc.workers]
        finally:
            fc.shutdown()
    return cfg, out, ids


def test_gpu_tasks_get_one_distinct_gpu_each_and_spread_over_nodes(cluster_build):
    cfg, out, worker_ids = cluster_build
    metas = _metas(out)
    jobs = [json.loads(line)["job_id"] for line in (out / "jobs.jsonl").read_text().splitlines()]
    assert sorted(metas) == sorted(jobs)
    gpus_of = dict(zip(worker_ids, WORKER_GPUS))
    for jid, m in metas.items():
        assert m["render"]["device"] == "gpu" and m["render"]["backend"] == TEST_SWITCH_BACKEND, jid
        p = m["placement"]
        assert p["ray_node_id"] in gpus_of, f"{jid} ran on {p['ray_node_id']}, not a GPU worker node"
        visible = (p["cuda_visible_devices"] or "").split(",")
        assert len(visible) == 1 and visible[0].isdigit(), f"{jid}: CUDA_VISIBLE_DEVICES={p['cuda_visible_devices']!r}"
        assert int(visible[0]) < gpus_of[p["ray_node_id"]], jid
        # ... and Blender itself ran with that one id (the test switch's warning line quotes it)
        seen = re.findall(r"MMVIAD_TEST_GPU_ON_CPU=1: test-only fake.*CUDA_VISIBLE_DEVICES='(\d*)'",
                          (out / "logs" / "render" / f"{jid}.log").read_text())
        assert seen == [visible[0]], (jid, seen)
    by_node = defaultdict(list)
    for jid, m in metas.items():
        by_node[m["placement"]["ray_node_id"]].append(m["placement"])
    assert len(by_node) > 1, f"every job ran on one node: {dict(by_node)}"
    overlapping = 0
    for plist in by_node.values():
        for a, b in combinations(plist, 2):
            if a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]:
                overlapping += 1
                assert a["cuda_visible_devices"] != b["cuda_visible_devices"], (a, b)
    assert overlapping, "no two tasks ran at once on one node: the distinct-GPU check saw nothing"
    card = (out / "README.md").read_text()
    assert "WARNING: 3 orbit(s) rendered on the CPU by the test-only MMVIAD_TEST_GPU_ON_CPU switch" in card


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc)."""
    parent: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parent[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [c for c, pp in parent.items() if pp == cur]
        found += kids
        todo += kids
    return found


def _blender_job(pid: int, out: Path) -> str | None:
    """The job id of a Blender process rendering under ``out`` (a job task's scratch folder; from its
    scene.json path), else None."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if not any(a.endswith("render_job.py") for a in args):
        return None
    spec = next((a for a in args if a.endswith("scene.json") and str(out) in a), None)
    return Path(spec).parent.name if spec else None


def test_a_node_lost_mid_job_reruns_its_job_elsewhere_and_the_dataset_is_unchanged(cluster_build, tmp_path,
                                                                                    monkeypatch):
    cfg, ref_out, _ = cluster_build
    out = tmp_path / "out"
    scratch = tmp_path / "scratch"   # the job tasks' scratch folders (all "nodes" share this machine)
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(cluster_build[0].read_text().replace("render:\n", f"render:\n  scratch_dir: {scratch}\n", 1))
    fc = FakeGpuCluster(monkeypatch)
    try:
        victim = fc.workers[1]  # the 1-GPU node: its job must rerun on the other worker
        raylet = victim.all_processes["raylet"][0].process.pid
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "build", "--config", str(cfg), "--out",
                                 str(out), "--no-progress"], cwd=ROOT, env=fc.driver_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killed_job, deadline = None, time.time() + 300
        while killed_job is None and proc.poll() is None and time.time() < deadline:
            for pid in _children(raylet):
                jid = _blender_job(pid, scratch)
                # Blender has written frames of this job: it is mid-render
                if jid and any(scratch.glob(f"{jid}-*/renders/.staging/{jid}/unmarked/*.png")):
                    killed_job = jid
                    break
            time.sleep(0.05)
        assert killed_job, "no Blender ran on the victim node before the build ended"
        # The node dies as a machine does: everything on it stops at once (frozen first, so neither its
        # worker nor its Blender writes another byte), then its Ray processes and the rest are killed.
        doomed = _children(raylet)
        for pid in doomed:
            os.kill(pid, signal.SIGSTOP)
        fc.cluster.remove_node(victim, allow_graceful=False)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"build exited {proc.returncode}\n{stdout}\n{stderr}"
        ids = {n.node_id for n in fc.workers if n is not victim}  # the survivors
    finally:
        fc.shutdown()
    assert "render: 3 done" in stdout, stdout
    metas = _metas(out)
    placed = metas[killed_job]["placement"]
    assert placed["ray_node_id"] != victim.node_id and placed["ray_node_id"] in ids, placed
    assert not any((out / "renders" / ".staging").glob("*")), "a staging folder was left behind"
    # the lost task's scratch folder was cleared by the rerun of its job (on this one machine)
    assert not any(scratch.glob("*")), "a scratch folder was left behind"
    assert _labels(out) == _labels(ref_out)


def test_a_cluster_renders_into_an_object_store_and_a_killed_driver_loses_nothing(cluster_build, bucket, tmp_path,
                                                                                 monkeypatch):
    """The same GPU-shaped build with ``--out s3://…`` (moto's S3 server mode on 127.0.0.1 stands in
    for S3; every node reaches it through ``AWS_ENDPOINT_URL``): the tasks publish from the worker
    nodes straight into the bucket. The driver is killed (SIGKILL) once a job is finished there; the
    rerun skips the finished jobs, and the bucket ends with the labels, QA files and clips of the
    undisturbed build into a folder, byte for byte."""
    from pipeline.store import Store

    cfg, ref_out, _ = cluster_build
    url, store = f"{bucket}/cluster", Store(f"{bucket}/cluster")
    cache = tmp_path / "cache"
    fc = FakeGpuCluster(monkeypatch)
    try:
        cmd = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(cfg), "--out", url, "--cache", str(cache),
               "--no-progress"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=fc.driver_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and \
                not any(k.endswith("/DONE") for k in store.listing("renders")):
            time.sleep(0.1)
        assert proc.poll() is None, "the build ended before any job was published"
        proc.kill()
        proc.wait()
        finished = sorted(k.split("/")[1] for k in store.listing("renders") if k.endswith("/DONE"))
        assert finished
        rerun = run_mmviad(*cmd[3:], env=fc.driver_env(), timeout=400)
        workers = {n.node_id for n in fc.workers}
    finally:
        fc.shutdown()
    assert f"{len(finished)} skipped" in rerun.stdout.split("render:", 1)[1].splitlines()[0], rerun.stdout
    jobs = [json.loads(line)["job_id"] for line in (ref_out / "jobs.jsonl").read_text().splitlines()]
    for jid in jobs:
        meta = json.loads(store.read_bytes(f"renders/{jid}/meta.json"))
        assert meta["placement"]["ray_node_id"] in workers, jid   # published from a worker node
    remote = store.listing()
    want = {k: v for k, v in _labels(ref_out).items()}
    want.update({str(p.relative_to(ref_out)): p.read_bytes() for p in sorted((ref_out / "clips").glob("*.mp4"))})
    for key, data in want.items():
        assert key in remote and store.read_bytes(key) == data, key
