"""Safety (issue #9 §4): no shell strings, ``yaml.safe_load`` only, network only where it is meant
to be (static scan + a real build inside a loopback-only network namespace), ids validated before
they touch a path."""

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
