"""The trainer reuses the pipeline instead of copying it.

- No twin: no function or class under ``trainer/`` may carry the name of the pipeline's interval
  algebra, seeding, atomic writes, QA validation or scoring, and the trainer's package does not
  hash seeds or write temp-then-rename files by hand.
- What the trainer imports from ``pipeline`` imports in the trainer's environment with the
  Blender-side packages blocked (``.venv-train`` installs the repo root with ``--no-deps``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]
REPO = TRAINER.parent

# names defined in pipeline/ that the trainer must import, never define again
PIPELINE_NAMES = {
    "union_iou", "intersection_length", "total_length", "normalize", "clip_intervals", "q4_iou",  # intervals, Q4
    "derive_seed", "rng_for",                                                                      # seeds
    "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "write_json", "write_jsonl",    # atomic I/O
    "validate_record", "validate_qa_record", "qa_row_problem", "QARecord",                         # QA contract
    "score_record", "score_response", "score_predictions", "parse_response", "parse_intervals",    # scoring
}
# calls that mean a hand-made seed hash or atomic write
HAND_MADE = {"sha256", "mkstemp", "NamedTemporaryFile"}
# modules the trainer's environment lacks (pipeline-only dependencies)
BLOCKED = ("bpy", "bmesh", "mathutils", "ray", "trimesh", "embreex", "cv2", "scipy", "manifold3d")


def _definitions(tree: ast.AST) -> list[tuple[str, int]]:
    return [(n.name, n.lineno) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _calls(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name:
                out.append((name, n.lineno))
    return out


def twins(root: Path) -> list[str]:
    """``file:line: name`` for every pipeline twin defined, and every hand-made seed hash or atomic
    write called, in the Python files under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = path.relative_to(REPO)
        found += [f"{rel}:{line}: defines {name}" for name, line in _definitions(tree) if name in PIPELINE_NAMES]
        if "tests" not in rel.parts:   # tests may hash or write temp files to build fixtures
            found += [f"{rel}:{line}: calls {name}" for name, line in _calls(tree) if name in HAND_MADE]
    return found


def test_the_pipeline_names_exist_there():
    """The names guarded here are the pipeline's (a rename there must update this list)."""
    defined = set()
    for path in (REPO / "pipeline").rglob("*.py"):
        defined |= {name for name, _ in _definitions(ast.parse(path.read_text(encoding="utf-8")))}
    assert PIPELINE_NAMES - {"atomic_write_json", "validate_record"} <= defined


def test_trainer_defines_no_twin_of_pipeline_code():
    assert twins(TRAINER) == []


def test_the_scan_finds_a_twin(tmp_path):
    """The scan sees a twin by name and a hand-made atomic write by its call."""
    pkg = REPO / "trainer" / "mmviad_trainer"
    probe = pkg / "_twin_probe.py"
    probe.write_text("import os, tempfile\n\n\ndef union_iou(a, b):\n    return 0.0\n\n\n"
                     "def save(p, t):\n    fd, tmp = tempfile.mkstemp()\n    os.replace(tmp, p)\n", encoding="utf-8")
    try:
        assert twins(pkg) == ["trainer/mmviad_trainer/_twin_probe.py:4: defines union_iou",
                              "trainer/mmviad_trainer/_twin_probe.py:9: calls mkstemp"]
    finally:
        probe.unlink()


IMPORTS = [
    "pipeline.grammar", "pipeline.intervals", "pipeline.seeds", "pipeline.io", "pipeline.records",
    "pipeline.layout", "pipeline.eval", "pipeline.eval.metrics", "pipeline.eval.run",
    "pipeline.eval.runners.predictions", "pipeline.eval.runners.transformers_local",
    "mmviad_trainer.records", "mmviad_trainer.rewards", "mmviad_trainer.config", "mmviad_trainer.splits",
    "mmviad_trainer.teacher", "mmviad_trainer.traces", "mmviad_trainer.evaluate", "mmviad_trainer.eval_adapter",
    "mmviad_trainer.runner", "mmviad_trainer.cli",
]

# A None entry in sys.modules is Python's own "not installed": ``import x`` raises
# ModuleNotFoundError and ``importlib.util.find_spec(x)`` says absent (as transformers probes scipy).
_BLOCKER = """
import importlib, sys
BLOCKED = {blocked!r}
for name in BLOCKED:
    sys.modules[name] = None
for m in {modules!r}:
    importlib.import_module(m)
leaked = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in BLOCKED and mod is not None)
assert not leaked, leaked
print("ok")
"""


def _import_blocked(modules: list[str]) -> subprocess.CompletedProcess:
    code = _BLOCKER.format(blocked=BLOCKED, modules=modules)
    return subprocess.run([sys.executable, "-c", code], cwd=TRAINER, capture_output=True, text=True, timeout=300)


def test_pipeline_modules_the_trainer_uses_import_without_blender_side_packages():
    r = _import_blocked(IMPORTS)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_the_blocker_blocks():
    """pipeline.qa needs the object library (trimesh): the blocker must make it fail."""
    r = _import_blocked(["pipeline.qa"])
    assert r.returncode != 0 and "ModuleNotFoundError: import of trimesh halted; None in sys.modules" in r.stderr
