"""Safety (issue #9 §4): no shell strings, ``yaml.safe_load`` only, network only where it is meant
to be (static scan + a real build inside a loopback-only network namespace), ids validated before
they touch a path; and the module boundaries: host code never imports ``bpy``, and no module of
``pipeline/`` imports a stage that comes later in the data flow."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import REPO, SMOKE, run_mmviad

SCANNED = ("pipeline", "blender_scripts", "trainer", "bench")
# The only modules that may open network connections: the OpenAI-compatible eval runner and the
# trainer's LLM teacher (both to a configured model API), and the Label Studio client (to the
# configured Label Studio). Ray's own traffic goes through Ray.
NETWORK_ALLOWED = {"pipeline/eval/runners/openai_compat.py", "pipeline/review/ls_client.py",
                   "trainer/mmviad_trainer/teacher.py"}
NETWORK_MODULES = ("urllib.request", "http.client", "socket", "requests", "httpx", "aiohttp", "urllib3", "ftplib",
                   "smtplib", "telnetlib")


def _sources() -> list[tuple[str, ast.Module]]:
    files = sorted(p for d in SCANNED for p in (REPO / d).rglob("*.py") if ".venv" not in p.parts)
    assert len(files) > 50, "the scan found suspiciously few files"
    return [(str(p.relative_to(REPO)), ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in files]


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _calls(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, _dotted(node.func)


def test_scanner_catches_what_it_looks_for():
    """The scan itself can fail: a planted violation of each kind is found."""
    bad = ast.parse(textwrap.dedent("""
        import os, subprocess, yaml
        from subprocess import run
        subprocess.run("ls", shell=True); run(["ls"], shell=1); os.system("ls"); os.popen("ls")
        yaml.load("a"); yaml.unsafe_load("a"); yaml.full_load("a")
        import socket
    """))
    assert len(_shell_violations("x.py", bad)) == 4
    assert len(_yaml_violations("x.py", bad)) == 3
    assert _network_imports(bad) == {"socket"}


def _shell_violations(name: str, tree: ast.Module) -> list[str]:
    found = []
    for call, fn in _calls(tree):
        short = fn.rsplit(".", 1)[-1]
        if fn in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl", "os.spawnlp", "commands.getoutput",
                  "subprocess.getoutput", "subprocess.getstatusoutput"):
            found.append(f"{name}:{call.lineno}: {fn}")
        if short in ("run", "Popen", "call", "check_call", "check_output") or fn.startswith("subprocess."):
            for kw in call.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and not kw.value.value):
                    found.append(f"{name}:{call.lineno}: {fn}(..., shell=...)")
    return found


def _yaml_violations(name: str, tree: ast.Module) -> list[str]:
    return [f"{name}:{call.lineno}: {fn}" for call, fn in _calls(tree)
            if fn.rsplit(".", 1)[-1] in ("load", "unsafe_load", "full_load", "load_all", "unsafe_load_all",
                                         "full_load_all") and fn.split(".")[0] in ("yaml", "ruamel")]


def _network_imports(tree: ast.Module) -> set[str]:
    mods = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            mods.update(m for m in NETWORK_MODULES if n == m or n.startswith(m + "."))
    return mods


def test_no_shell_strings_anywhere():
    found = [v for name, tree in _sources() for v in _shell_violations(name, tree)]
    assert found == []


def test_yaml_safe_load_only():
    found = [v for name, tree in _sources() for v in _yaml_violations(name, tree)]
    assert found == []
    # and the config loader really uses it: a python-object tag is refused, not executed
    assert any(fn == "yaml.safe_load" for name, tree in _sources() if name == "pipeline/config.py"
               for _, fn in _calls(tree))


def test_yaml_object_tags_are_refused(tmp_path):
    from pipeline.config import ConfigError, load_config

    p = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    p.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nobjects:\n  categories: [vase0]\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    assert not marker.exists()


def test_network_only_in_the_modules_meant_for_it():
    used = {name: _network_imports(tree) for name, tree in _sources()}
    offenders = {n: sorted(m) for n, m in used.items() if m and n not in NETWORK_ALLOWED}
    assert offenders == {}
    assert all(used.get(n) for n in NETWORK_ALLOWED), "allow-list is stale: a listed module no longer uses the network"


# ---- boundaries: no bpy on the host, and no stage importing a later one ----------------------------

# Host code runs without Blender: only blender_scripts/ may import bpy (a probe for the bpy wheel
# with importlib.util.find_spec, as in pipeline/scenery/catalog.py, imports nothing).
HOST = ("pipeline/", "trainer/")

# The data flow of pipeline/ as layers, lowest first (docs/architecture.md, "Module layers"). A module
# may import its own layer and any layer below it, never one above: shared modules no stage, and each
# stage only the stages before it. card and eval share a rank and may not import each other. The
# longest matching prefix names a module's layer, so the command modules (pipeline/commands/, the
# `mmviad objects` commands, `python -m pipeline.eval`) belong with the command line.
LAYERS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("shared", 0, ("pipeline", "pipeline.ids", "pipeline.io", "pipeline.seeds", "pipeline.config",
                   "pipeline.profiles", "pipeline.records", "pipeline.grammar", "pipeline.intervals",
                   "pipeline.layout", "pipeline.paths", "pipeline.evidence_stats", "pipeline.scene_spec",
                   "pipeline.mask_video", "pipeline.store", "pipeline.mirror", "pipeline.outcome")),
    ("objects", 1, ("pipeline.objects",)),
    # the scene model that planning and rendering share: looks, orbit, pose, the posed meshes, visibility
    ("scenery", 2, ("pipeline.scenery",)),
    ("plan", 3, ("pipeline.plan", "pipeline.plan_cache")),
    ("render", 4, ("pipeline.render", "pipeline.estimate")),
    ("annotate", 5, ("pipeline.annotate", "pipeline.evidence", "pipeline.agreement", "pipeline.contact_sheet")),
    ("review", 6, ("pipeline.review",)),
    ("clips", 7, ("pipeline.clips",)),
    ("qa", 8, ("pipeline.qa",)),
    ("farm", 8, ("pipeline.farm",)),
    ("card", 9, ("pipeline.card",)),
    ("eval", 9, ("pipeline.eval",)),
    ("cli", 10, ("pipeline.cli", "pipeline.commands", "pipeline.eval.__main__", "pipeline.objects.commands")),
)
# Upward imports accepted as they are, "importer -> imported": reason. Empty today; an entry must
# still be true (the test fails on a stale one).
UPWARD_ALLOWED: dict[str, str] = {}


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(rel: str) -> bool:
    return rel.endswith("/__init__.py")


def _imports(rel: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Absolute names of the modules ``rel`` imports, at any depth (function bodies included);
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    here = _module_name(rel).split(".")
    package = here if _is_package(rel) else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in known else mod)
        elif isinstance(node, ast.Call) and _dotted(node.func) in ("importlib.import_module", "__import__") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return found


def _layer(module: str) -> tuple[str, int] | None:
    best = None
    for name, rank, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[0]):
                best = (len(p), name, rank)
    return None if best is None else (best[1], best[2])


def _upward(sources: list[tuple[str, ast.Module]]) -> dict[str, str]:
    """``importer -> imported``: ``layer -> layer`` for every import that breaks :data:`LAYERS`."""
    pkg = [(rel, tree) for rel, tree in sources if rel.startswith("pipeline/")]
    known = {_module_name(rel) for rel, _ in pkg}
    bad = {}
    for rel, tree in pkg:
        me = _module_name(rel)
        mine = _layer(me)
        assert mine is not None, f"{rel}: not in any layer of LAYERS (add it)"
        for dep in sorted(_imports(rel, tree, known)):
            if not (dep == "pipeline" or dep.startswith("pipeline.")) or dep == me:
                continue
            theirs = _layer(dep)
            if theirs[0] != mine[0] and theirs[1] >= mine[1]:
                bad[f"{me} -> {dep}"] = f"{mine[0]} -> {theirs[0]}"
    return bad


def _bpy_imports(sources: list[tuple[str, ast.Module]]) -> list[str]:
    return [f"{rel}: {dep}" for rel, tree in sources if rel.startswith(HOST)
            for dep in sorted(_imports(rel, tree, set())) if dep == "bpy" or dep.startswith("bpy.")]


def test_boundary_scan_catches_what_it_looks_for():
    """Planted violations are found: bpy at any depth and in any spelling, and a shared module, a
    stage and a sibling importing upward or across."""
    planted = [("pipeline/ids.py", "import os\ndef f():\n    import bpy.ops\n"),
               ("pipeline/io.py", "from bpy import data\n"),
               ("trainer/x.py", "import importlib\nimportlib.import_module('bpy')\n"),
               ("pipeline/qa.py", "def f():\n    from .eval import metrics\n    from . import card\n"),
               ("pipeline/records.py", "from .render.job import job_dir\n"),
               ("pipeline/render/job.py", "from ..layout import Layout\nfrom ..annotate import annotation_path\n"),
               ("pipeline/card.py", "from .eval.run import qa_file\n"),
               ("pipeline/eval/run.py", "from ..qa import build_qa\n"),  # allowed: qa is below eval
               ("pipeline/clips.py", "from .review import model\n")]     # allowed: review is below clips
    sources = [(rel, ast.parse(code)) for rel, code in planted]
    assert _bpy_imports(sources) == ["pipeline/ids.py: bpy.ops", "pipeline/io.py: bpy", "trainer/x.py: bpy"]
    assert _upward(sources) == {"pipeline.qa -> pipeline.eval": "qa -> eval", "pipeline.qa -> pipeline.card": "qa -> card",
                                "pipeline.records -> pipeline.render.job": "shared -> render",
                                "pipeline.render.job -> pipeline.annotate": "render -> annotate",
                                "pipeline.card -> pipeline.eval.run": "card -> eval"}


def test_host_code_never_imports_bpy():
    assert _bpy_imports(_sources()) == []


# What Blender's Python may import from pipeline/: modules that need only the standard library
# (and numpy, which the bpy wheel and Blender ship). Their own imports are checked below.
BLENDER_IMPORTABLE = {"pipeline": (), "pipeline.scene_spec": (), "pipeline.render.gpu": (),
                      # cv2 only inside the host's file readers, which Blender never calls
                      "pipeline.render.region": ("numpy", "cv2"), "pipeline.render": ()}


def _blender_violations(sources: list[tuple[str, ast.Module]]) -> list[str]:
    """blender_scripts/ importing a pipeline module outside :data:`BLENDER_IMPORTABLE`, and such a
    module importing anything but the standard library, its allowed extras and other such modules."""
    known = {_module_name(rel) for rel, _ in sources}
    bad = []
    for rel, tree in sources:
        me = _module_name(rel)
        if rel.startswith("blender_scripts/"):
            bad += [f"{rel}: {d}" for d in sorted(_imports(rel, tree, known))
                    if (d == "pipeline" or d.startswith("pipeline.")) and d not in BLENDER_IMPORTABLE]
        elif me in BLENDER_IMPORTABLE:
            for d in sorted(_imports(rel, tree, known)):
                top = d.split(".")[0]
                if d in BLENDER_IMPORTABLE or top in sys.stdlib_module_names or top in BLENDER_IMPORTABLE[me] \
                        or top == "__future__":
                    continue
                bad.append(f"{rel}: {d}")
    return bad


def test_blender_side_imports_only_stdlib_modules_of_the_pipeline():
    """blender_scripts/ run inside Blender's Python, where pydantic, trimesh or the config are not
    installed: what they import from pipeline/ (the scene spec, the region geometry) must stay
    importable there."""
    planted = [("blender_scripts/x.py", "from pipeline.config import Config\nfrom pipeline.scene_spec import SceneSpec\n"),
               ("pipeline/scene_spec.py", "import json\nimport numpy\nfrom .ids import GOOD\n"),
               ("pipeline/render/region.py", "import numpy as np\n")]
    assert _blender_violations([(r, ast.parse(c)) for r, c in planted]) == [
        "blender_scripts/x.py: pipeline.config", "pipeline/scene_spec.py: numpy", "pipeline/scene_spec.py: pipeline.ids"]
    assert _blender_violations(_sources()) == []


def test_no_stage_imports_a_later_one():
    sources = _sources()
    known = {_module_name(rel) for rel, _ in sources}
    trees = dict(sources)
    # the scan sees real imports, lazy ones inside functions too (else an empty result proves nothing)
    assert "pipeline.render.region" in _imports("pipeline/evidence.py", trees["pipeline/evidence.py"], known)
    assert "pipeline.qa" in _imports("pipeline/commands/qa.py", trees["pipeline/commands/qa.py"], known)
    assert "pipeline.commands.qa" in _imports("pipeline/cli.py", trees["pipeline/cli.py"], known)
    assert "pipeline.evidence_stats" in _imports("pipeline/card.py", trees["pipeline/card.py"], known)
    found = _upward(sources)
    assert {k: v for k, v in found.items() if k not in UPWARD_ALLOWED} == {}
    assert set(UPWARD_ALLOWED) <= set(found), "UPWARD_ALLOWED is stale: an allowed import is gone"


# ---- runtime: a real build with no network but loopback -------------------------------------------

HOOK = '''
import ipaddress, os, socket

_LOG = os.environ["MMVIAD_NETLOG"]


def _external(sock, addr):
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(addr, tuple):
        return False                              # AF_UNIX and friends never leave the machine
    try:
        ip = ipaddress.ip_address(str(addr[0]).split("%")[0])
    except ValueError:
        return True                               # a host name: someone wants a resolver and a remote host
    return not (ip.is_loopback or ip.is_unspecified)


def _wrap(name):
    orig = getattr(socket.socket, name)

    def hooked(self, *args):
        addr = args[-1] if name == "sendto" else args[0]
        # A UDP connect() sends nothing (Ray uses one to find the node's IP); a TCP connect or a
        # datagram send does.
        if _external(self, addr) and not (name.startswith("connect") and self.type == socket.SOCK_DGRAM):
            import traceback
            where = [fr.filename for fr in traceback.extract_stack()]
            tag = "ray-usage-lib" if any(w.endswith("ray/_common/usage/usage_lib.py") for w in where) else "-"
            with open(_LOG, "a") as f:
                f.write(f"{os.getpid()} {name} {addr!r} {tag}\\n")
        return orig(self, *args)
    setattr(socket.socket, name, hooked)


for _n in ("connect", "connect_ex", "sendto"):
    _wrap(_n)
'''

LAUNCH = '''
import runpy, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
sys.argv = ["mmviad", *sys.argv[1:]]
runpy.run_module("pipeline.cli", run_name="__main__")
'''


def test_build_opens_no_external_socket(tmp_path):
    """``mmviad build`` (Ray, Blender, encoding, QA) inside a fresh network namespace that has only
    loopback: any need for the outside network makes the build fail. On top, a ``sitecustomize``
    hook in every Python process (driver, Ray workers, bpy) logs each TCP connect or datagram send
    to a non-loopback address: there must be none (C-level sockets, e.g. gRPC inside Ray, are
    covered by the namespace alone)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare(1) and ip(8) for a loopback-only network namespace")
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("creating a network namespace is not permitted here")
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    (tmp_path / "launch.py").write_text(LAUNCH)
    netlog = tmp_path / "net.log"
    netlog.write_text("")
    raw = yaml.safe_load(SMOKE.read_text())
    raw["render"].update(orbit_frames=20, workers=1)
    raw["objects"]["categories"] = ["vase0", "cup0"]
    raw["objects"]["normal_share"] = 0.5
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "MMVIAD_NETLOG": str(netlog),
           "PYTHONPATH": os.pathsep.join([str(hook_dir), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(["unshare", "--net", "--", sys.executable, str(tmp_path / "launch.py"), "build",
                           "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "out" / "qa" / "standard" / "train.jsonl").exists()
    # the hook really ran in the processes (it is installed, so a violation would be written)
    # (inside a namespace of its own too: the probe's packet must never leave this machine)
    probe = subprocess.run(["unshare", "--net", "--", sys.executable, "-c",
                            "import socket; s = socket.socket(); s.connect_ex(('192.0.2.1', 9))"],
                           env=env, capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0
    lines = netlog.read_text().splitlines()
    # Only the probe: in particular no cloud-metadata request (169.254.169.254) from Ray's
    # usage-stats module, which the runner prevents (see pipeline/render/runner.py).
    assert len(lines) == 1 and "192.0.2.1" in lines[0], "\n".join(lines)


# ---- ids validated before they touch a path --------------------------------------------------------

EVIL = ["../../evil", "a/b", "..", "/abs", "x\x00y", "caf\u00e9"]


@pytest.mark.parametrize("bad", EVIL)
def test_path_builders_reject_unsafe_job_ids(tmp_path, bad):
    from pipeline.annotate import annotation_path
    from pipeline.ids import InvalidIdError
    from pipeline.render.job import error_path, job_dir, log_path

    for fn in (job_dir, log_path, error_path, annotation_path):
        with pytest.raises(InvalidIdError):
            fn(tmp_path, bad)


@pytest.mark.parametrize("bad", EVIL[:3])
def test_clips_and_annotate_refuse_unsafe_job_ids(tmp_path, bad):
    from pipeline.annotate import annotate_jobs
    from pipeline.clips import clip_job
    from pipeline.config import load_config
    from pipeline.ids import InvalidIdError

    cfg = load_config(SMOKE)
    (tmp_path / "evil.json").write_text("{}")  # would be read as <out>/annotations/../../evil.json
    with pytest.raises(InvalidIdError):
        clip_job({"job_id": bad}, cfg, tmp_path / "a" / "b")
    with pytest.raises(InvalidIdError):
        annotate_jobs([bad], cfg, tmp_path / "a" / "b", progress=False)


@pytest.mark.parametrize("field,value", [("category", "../evil"), ("name", "../evil"),
                                         ("unseen", "../evil"), ("category", "a/b")])
def test_config_ids_are_validated(tmp_path, field, value):
    from pipeline.config import ConfigError, load_config

    raw = {"name": "t", "objects": {"categories": ["vase0", "cup0"]}}
    if field == "category":
        raw["objects"]["categories"].append(value)
    elif field == "name":
        raw["name"] = value
    else:
        raw["qa"] = {"unseen_categories": [value]}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="not a valid id"):
        load_config(p)


def test_review_import_refuses_unsafe_ids(smoke_out):
    """A review that names a clip id with ``../`` is refused (unknown clip), and a hand-edited
    ``clips.jsonl`` whose job id climbs out of the folder is refused before an annotation path is built."""

    clips = [json.loads(x) for x in (smoke_out / "clips.jsonl").read_text().splitlines()]
    before = {p: p.read_bytes() for p in sorted((smoke_out / "annotations").glob("*.json"))}
    page = {"format": "mmviad-review/1", "reviewer": "x", "saved_at": "2026-01-01T00:00:00Z", "clips": [
        {"clip_id": "../../evil-c0", "decision": "accepted", "intervals": []}]}
    f = smoke_out / "page.json"
    f.write_text(json.dumps(page))
    proc = run_mmviad("review", "import", str(f), "--config", str(SMOKE), "--out", str(smoke_out), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "clip ../../evil-c0: unknown clip id" in proc.stderr

    clips[0]["job_id"] = "../../evil"
    (smoke_out / "clips.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    page["clips"][0]["clip_id"] = clips[0]["clip_id"]
    f.write_text(json.dumps(page))
    proc = run_mmviad("review", "import", str(f), "--config", str(SMOKE), "--out", str(smoke_out), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "job_id: '../../evil' is not a valid id" in proc.stderr
    assert not (smoke_out.parent / "evil.json").exists() and not (smoke_out.parent.parent / "evil.json").exists()
    assert before == {p: p.read_bytes() for p in before}
