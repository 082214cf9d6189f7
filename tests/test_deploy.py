"""The farm recipes in deploy/ (KubeRay RayJob, Slurm batch script, worker Dockerfile) are
checked without a cluster: their shell runs with `make` as a dry run (`make -n`, the real
Makefile) and the `mmviad` command lines that would run are parsed by the real CLI parser, so a
wrong target, flag, config path or a shard the loop forgets fails here. Cluster tools that do not
exist on this machine (srun, scontrol, ray start) are replaced by stubs named as such below.
docs/render_farm.md must show each file as it is."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib

import pytest
import yaml

from conftest import ROOT
from pipeline.cli import build_parser

DEPLOY = ROOT / "deploy"
RAYJOB = DEPLOY / "kuberay-rayjob.yaml"
SBATCH = DEPLOY / "slurm" / "render.sbatch"
DOCKERFILE = DEPLOY / "Dockerfile"
#: a shell prelude: `make` only prints what it would run
DRY_MAKE = 'make() { command make --no-print-directory -n "$@"; }\n'


def _mmviad_commands(output: str) -> list[list[str]]:
    """Every ``mmviad …`` command line in ``output`` (make -n prints ``.venv/bin/mmviad …``)."""
    return [shlex.split(m.group(1)) for m in re.finditer(r"(?:^|/)mmviad (\S[^\n]*)$", output, re.M)]


def _check_commands(cmds: list[list[str]], num_shards: int) -> None:
    """The CLI accepts every command, configs exist, and every shard is rendered, annotated and clipped."""
    done: dict[str, set[int]] = {}
    for argv in cmds:
        args = build_parser().parse_args(argv)  # SystemExit on an unknown command or flag
        assert (ROOT / args.config).is_file(), f"{shlex.join(argv)}: no config {args.config}"
        if getattr(args, "num_shards", None) is not None:
            assert args.num_shards == num_shards, shlex.join(argv)
        if getattr(args, "shard", None) is not None:
            done.setdefault(args.command, set()).add(args.shard)
    for stage in ("render", "annotate", "clips"):
        assert done.get(stage) == set(range(num_shards)), f"{stage} runs shards {sorted(done.get(stage, ()))}"
    assert cmds[0][0] == "plan" and cmds[-1][0] == "build", "plan first, build (qa, protocols, card) last"


def _workdir() -> str:
    return re.search(r"^WORKDIR (\S+)", DOCKERFILE.read_text(), re.M).group(1)


def test_rayjob_manifest_runs_real_targets_and_matches_the_pins():
    spec = yaml.safe_load(RAYJOB.read_text())
    assert (spec["apiVersion"], spec["kind"]) == ("ray.io/v1", "RayJob")
    cluster = spec["spec"]["rayClusterSpec"]
    pins = dict(re.match(r"([^=\s]+)==(\S+)", d).groups() for d in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert cluster["rayVersion"] == pins["ray[default]"], "rayVersion must be the Ray pinned in pyproject.toml"
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    pods = [head["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    assert len({c["image"] for p in pods for c in p["containers"]}) == 1, "one image for head and workers"
    for p in pods:
        volumes = {v["name"] for v in p["volumes"]}
        for c in p["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes
            assert "MMVIAD_TEST_GPU_ON_CPU" not in {e["name"] for e in c.get("env", [])}
    for g in cluster["workerGroupSpecs"]:
        limits = g["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1

    bash, flag, script = shlex.split(spec["spec"]["entrypoint"])
    assert (bash, flag) == ("bash", "-c")
    assert f"cd {_workdir()};" in script, "the entrypoint must run in the image's checkout (Dockerfile WORKDIR)"
    script = script.replace(f"cd {_workdir()};", f"cd {shlex.quote(str(ROOT))};")
    proc = subprocess.run(["bash", "-c", DRY_MAKE + 'mmviad() { echo "mmviad $*"; }\n' + script],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    _check_commands(_mmviad_commands(proc.stdout), 8)


def test_slurm_script_starts_ray_per_node_and_renders_every_shard(tmp_path):
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    # A stand-in submit folder: the real Makefile and pyproject.toml, stub .venv/bin tools.
    for f in ("Makefile", "pyproject.toml"):
        (tmp_path / f).symlink_to(ROOT / f)
    stubs = {"ray": 'echo "ray $*" >> "$STUB_LOG"',                  # stub: would start a Ray node
             "python": "echo 9999",                                   # stub: the GPU count Ray reports
             "mmviad": 'echo "mmviad $*"'}                            # plan: recorded, not run
    for name, body in stubs.items():
        p = tmp_path / ".venv" / "bin" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"#!/bin/bash\n{body}\n")
        p.chmod(0o755)
    log = tmp_path / "ray.log"
    prelude = DRY_MAKE + (
        "scontrol() { printf 'n1\\nn2\\nn3\\n'; }\n"                    # stub: a three-node allocation
        'srun() { if [[ "$*" == *hostname* ]]; then echo 10.0.0.1; else "${@:5}"; fi; }\n'  # stub: run here
        "sleep() { :; }\n")
    env = {**os.environ, "SLURM_SUBMIT_DIR": str(tmp_path), "SLURM_JOB_NODELIST": "n[1-3]", "OUT": "/shared/x",
           "NUM_SHARDS": "3", "STUB_LOG": str(log), "SLURM_GPUS_PER_TASK": "4", "SLURM_CPUS_PER_TASK": "16"}
    proc = subprocess.run(["bash", "-c", prelude + f"source {shlex.quote(str(SBATCH))}; wait"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    starts = log.read_text().splitlines()  # started in the background: any order
    heads = [s for s in starts if s.startswith("ray start --head --node-ip-address=10.0.0.1 --port=6379 ")]
    workers = [s for s in starts if s.startswith("ray start --address=10.0.0.1:6379 ")]
    assert len(starts) == 3 and len(heads) == 1 and len(workers) == 2, starts
    assert all("--num-gpus=4" in s and "--num-cpus=16" in s and "--block" in s for s in starts)
    _check_commands(_mmviad_commands(proc.stdout), 3)


def test_dockerfile_installs_where_make_render_looks(tmp_path):
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM nvidia/cuda:\S+-runtime-ubuntu", text, re.M)
    assert "python3.11 -m venv .venv" in text and "pip install --no-cache-dir -e '.[s3]'" in text
    assert "graphics" in re.search(r"NVIDIA_DRIVER_CAPABILITIES=(\S+)", text).group(1), "OptiX needs graphics"
    # The stamp the image touches is the one the Makefile checks, so `make render` does not reinstall.
    touched = re.search(r"touch (\.venv/\.installed-\$\(.*?\))\s*$", text, re.M).group(1)
    stamp = subprocess.run(["bash", "-c", f"echo {touched}"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    fresh = tmp_path / "checkout"  # no .venv: `make -n install` prints the stamp it would touch
    fresh.mkdir()
    for f in ("Makefile", "pyproject.toml"):
        (fresh / f).symlink_to(ROOT / f)
    dry = subprocess.run(["make", "-n", "--no-print-directory", "install"], cwd=fresh, capture_output=True,
                         text=True, check=True).stdout
    assert f"touch {stamp}" in dry, dry
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored, "a host .venv copied into the image would shadow its own"
    assert "bpy==5.0.1" in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("path", [RAYJOB, SBATCH, DOCKERFILE], ids=lambda p: p.name)
def test_the_farm_guide_shows_the_files_as_they_are(path):
    assert path.read_text().strip() in (ROOT / "docs" / "render_farm.md").read_text(), \
        f"docs/render_farm.md does not show the current {path.relative_to(ROOT)}"
