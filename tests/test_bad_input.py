"""Bad input corpus (issue #9 §3): each case gives a one-line error naming the file and the field,
fails only its own job and leaves the rest of the shard complete. Meshes and GT files go through a
real ``mmviad render`` (Ray + Blender) of an Anomaly-ShapeNet folder; hand-edited job files through
``mmviad render --jobs``; read-only and full output folders through real tmpfs mounts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml

from conftest import SMOKE, run_mmviad
from pipeline.config import ConfigError, load_config
from pipeline.io import read_jsonl
from test_objects_loader import _mesh, _write_gt

pytestmark = pytest.mark.slow

TINY_RENDER = {"width": 64, "height": 36, "samples": 2, "denoise": "off", "fps": 10, "orbit_frames": 20,
               "clip_seconds": 2.0, "workers": 1, "retries": 0}


def _failed_lines(stderr: str) -> dict[str, str]:
    """``{job_id: line}`` for the ``FAILED <job_id>: ...`` summary lines."""
    return {ln.split()[1].rstrip(":"): ln for ln in stderr.splitlines() if ln.strip().startswith("FAILED ")}


def _assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


# ---- meshes and GT files (Anomaly-ShapeNet layout), one real render of the whole shard -----------

def _obj_text(v: np.ndarray, f: np.ndarray) -> str:
    return "".join(f"v {a} {b} {c}\n" for a, b, c in v) + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in f)


# case → (category, the field the error must name, the text the error must hold)
MESH_CASES = {
    "corrupt_mesh": ("corrupt0", "mesh", "cannot be read"),
    "empty_mesh": ("empty0", "mesh", "no triangles"),
    "non_manifold_mesh": ("nonmanifold0", "faces", "non-manifold edge"),
    "nan_vertex_mesh": ("nanvert0", "vertices", "NaN"),
    "obj_that_is_a_png": ("pngobj0", "format", "PNG image"),
    "gt_wrong_column_count": ("gtcols0", "columns", "expected 4"),
    "gt_points_far_from_mesh": ("gtfar0", "GT points", "do not match the mesh"),
    "defect_mask_without_vertices": ("nomask0", "label", "no anomalous point"),
}


def _write_asn(root: Path) -> None:
    """One category per case, each holding a single ``<cat>_bulge0.obj`` (so the planner must pick
    it), plus two healthy categories: a normal mesh and a defective one with a good GT file."""
    ds = root / "dataset"

    def obj(cat: str, stem: str) -> Path:
        p = ds / "obj" / cat / f"{stem}.obj"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def gt(cat: str, stem: str, m: trimesh.Trimesh, shift: float = 0.0, labels: bool = True, cols: int = 4) -> None:
        pts = np.asarray(m.vertices) + [shift, 0, 0]
        lab = (np.asarray(m.vertices)[:, 0] > 0.35 * 1.05 - 1e-3) & labels
        p = ds / "pcd" / cat / "GT" / f"{stem}.txt"
        if cols == 4:
            _write_gt(p, pts, lab)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("".join(f"{x:.6f},{y:.6f},{z:.6f}\n" for x, y, z in pts))

    good, bump = _mesh(False), _mesh(True)
    good.export(obj("good0", "good0_template0"))
    bump.export(obj("okbulge0", "okbulge0_bulge0"))
    gt("okbulge0", "okbulge0_bulge0", bump)
    obj("corrupt0", "corrupt0_bulge0").write_text("v 1 2\nf 1 2 3 4 5\nthis is not an obj\n")
    obj("empty0", "empty0_bulge0").write_text("")
    tri = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], float)
    obj("nonmanifold0", "nonmanifold0_bulge0").write_text(_obj_text(tri, np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])))
    v = np.asarray(bump.vertices).copy()
    v[5] = np.nan
    obj("nanvert0", "nanvert0_bulge0").write_text(_obj_text(v, np.asarray(bump.faces)))
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    obj("pngobj0", "pngobj0_bulge0").write_bytes(png.tobytes())
    for cat, kw in (("gtcols0", {"cols": 3}), ("gtfar0", {"shift": 3.0}), ("nomask0", {"labels": False})):
        bump.export(obj(cat, f"{cat}_bulge0"))
        gt(cat, f"{cat}_bulge0", bump, **kw)


@pytest.fixture(scope="module")
def asn_render(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess, dict]:
    root = tmp_path_factory.mktemp("asn_bad")
    _write_asn(root / "asn")
    cats = ["good0", "okbulge0"] + [c for c, _, _ in MESH_CASES.values()]
    cfg = {"name": "asnbad", "seed": 3, "render": TINY_RENDER,
           "objects": {"source": {"kind": "anomaly_shapenet", "root": str(root / "asn")}, "categories": cats,
                       "objects_per_category": 1, "normal_share": 0.0, "defects": {"bulge": 1}}}
    path = root / "asnbad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = root / "out"
    proc = run_mmviad("render", "--config", str(path), "--out", str(out), "--no-progress", check=False)
    jobs = {j["category"]: j for j in read_jsonl(out / "jobs.jsonl")}
    return out, proc, jobs


def test_bad_meshes_leave_the_healthy_jobs_complete(asn_render):
    out, proc, jobs = asn_render
    _assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr
    assert f"render: 2 done, {len(MESH_CASES)} failed" in proc.stdout
    assert jobs["good0"]["defect"] is None and jobs["okbulge0"]["defect"] == "bulge"
    for cat in ("good0", "okbulge0"):
        assert (out / "renders" / jobs[cat]["job_id"] / "DONE").exists()
    assert {p.parent.name for p in (out / "renders").glob("*/DONE")} == {jobs[c]["job_id"] for c in ("good0", "okbulge0")}


@pytest.mark.parametrize("case", sorted(MESH_CASES))
def test_bad_mesh_or_gt_fails_alone_with_one_line(asn_render, case):
    out, proc, jobs = asn_render
    cat, field, text = MESH_CASES[case]
    job = jobs[cat]
    line = _failed_lines(proc.stderr).get(job["job_id"])
    assert line, proc.stderr
    bad_file = Path(job["object"]["path"] if cat in ("corrupt0", "empty0", "nonmanifold0", "nanvert0", "pngobj0")
                    else job["object"]["gt"])
    assert f"{bad_file}: {field}" in line and text in line, line
    log = out / "logs" / "render" / f"{job['job_id']}.log"
    assert f"(log: {log})" in line and log.exists() and text in log.read_text()
    err = json.loads((out / "logs" / "render" / f"{job['job_id']}.error.json").read_text())
    assert "\n" not in err["error"] and text in err["error"]
    assert not (out / "renders" / job["job_id"]).exists()          # nothing that looks rendered


# ---- a job file edited by hand, through `mmviad render --jobs FILE` ------------------------------

def _edit(job: dict, case: str) -> dict:
    j = json.loads(json.dumps(job))
    if case == "wrong_type":
        j["pose"]["yaw_deg"] = "ninety"
    elif case == "unknown_defect":
        j["defect"] = "dent"
    elif case == "missing_field":
        del j["camera"]
    elif case == "nested_not_an_object":
        j["material"] = [0.5, 0.5, 0.5]
    elif case == "negative_scale":
        j["pose"]["scale"] = -1.0
    elif case == "bool_seed":
        j["seeds"]["cycles"] = True
    elif case == "unknown_source":
        j["object"]["source"] = "shapenet"
    return j


JOB_CASES = {"wrong_type": "pose.yaw_deg", "unknown_defect": "defect", "missing_field": "camera",
             "nested_not_an_object": "material", "negative_scale": "pose.scale", "bool_seed": "seeds.cycles",
             "unknown_source": "object.source"}


@pytest.fixture(scope="module")
def edited_render(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("edited") / "out"
    cfg = tmp_path_factory.mktemp("edited_cfg") / "tiny.yaml"
    raw = yaml.safe_load(SMOKE.read_text())
    raw["render"] = TINY_RENDER
    cfg.write_text(yaml.safe_dump(raw))
    run_mmviad("plan", "--config", str(cfg), "--out", str(out))
    jobs = read_jsonl(out / "jobs.jsonl")
    healthy = next(j for j in jobs if j["defect"] is None)
    base = next(j for j in jobs if j["defect"])
    ids = {}
    rows = [healthy]
    for k, case in enumerate(sorted(JOB_CASES), 1):
        j = _edit(base, case)
        j["job_id"] = ids[case] = base["job_id"].rsplit("-t", 1)[0] + f"-t{k}"
        rows.append(j)
    edited = out / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_mmviad("render", "--config", str(cfg), "--out", str(out), "--jobs", str(edited), "--no-progress",
                      check=False)
    return out, edited, proc, {"healthy": healthy["job_id"], **ids}


@pytest.mark.parametrize("case", sorted(JOB_CASES))
def test_hand_edited_job_fails_alone(edited_render, case):
    out, edited, proc, ids = edited_render
    _assert_no_traceback(proc)
    assert proc.returncode == 1
    assert f"render: 1 done, {len(JOB_CASES)} failed" in proc.stdout
    assert (out / "renders" / ids["healthy"] / "DONE").exists()
    line = _failed_lines(proc.stderr)[ids[case]]
    lineno = sorted(JOB_CASES).index(case) + 2
    assert f"invalid job: {edited}:{lineno}: {JOB_CASES[case]}" in line, line
    log = out / "logs" / "render" / f"{ids[case]}.log"
    assert f"(log: {log})" in line and JOB_CASES[case] in log.read_text()
    assert not (out / "renders" / ids[case]).exists()


def test_edited_job_file_fails_alone_in_annotate_and_clips_too(edited_render):
    out, edited, _, ids = edited_render
    for stage in ("annotate", "clips"):
        proc = run_mmviad(stage, "--config", str(SMOKE), "--out", str(out), "--jobs", str(edited), "--no-progress",
                          check=False)
        _assert_no_traceback(proc)
        # the valid job was annotated and clipped by its render task already: this stage skips it
        assert proc.returncode == 1 and f"{stage}: {len(JOB_CASES)} failed, 1 skipped" in proc.stdout, proc.stdout
        assert len(_failed_lines(proc.stderr)) == len(JOB_CASES)
        assert (out / "logs" / stage / f"{ids['wrong_type']}.log").exists()


@pytest.mark.parametrize("line,needle", [
    ("{not json", "edited.jsonl:2: not valid JSON"),
    ('{"job_id": "../../etc/evil"}', "edited.jsonl:2: job_id '../../etc/evil' is not a valid id"),
    ('{"job_id": "a/b"}', "edited.jsonl:2: job_id 'a/b' is not a valid id"),
    ('{"job_id": "vase\u00e90"}', "is not a valid id"),
    ('[1, 2]', "edited.jsonl:2: job_id: missing"),
])
def test_unattributable_job_line_fails_the_file_in_one_line(tmp_path, line, needle):
    """A line that cannot be pinned on a job (not JSON, no safe job_id) stops the command before any
    path is built from it: exit 2, one line, nothing written outside the output folder."""
    out = tmp_path / "out"
    run_mmviad("plan", "--config", str(SMOKE), "--out", str(out))
    first = (out / "jobs.jsonl").read_text().splitlines()[0]
    edited = out / "edited.jsonl"
    edited.write_text(first + "\n" + line + "\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    proc = run_mmviad("render", "--config", str(SMOKE), "--out", str(out), "--jobs", str(edited), check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 2
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("mmviad:")]
    assert len(err) == 1 and needle in err[0], proc.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "etc").exists()


# ---- config values not covered by test_config.py --------------------------------------------------

BASE = "name: t\nobjects:\n  categories: [vase0, cup0, bowl0]\n"


def _assert_config_error(tmp_path, text: str, key: str) -> None:
    """Loading ``text`` fails with an error naming the file and ``key``."""
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}: {key}" in str(e.value)


@pytest.mark.parametrize("snippet,key", [
    ("seed: -1\n", "seed"),
    ("num_shards: 0\n", "num_shards"),
    ("render:\n  retries: -1\n", "render.retries"),
    ("render:\n  timeout_s: 0\n", "render.timeout_s"),
    ("render:\n  workers: -2\n", "render.workers"),
    ("render:\n  threads: -1\n", "render.threads"),
    ("render:\n  height: 100000\n", "render.height"),
    ("render:\n  clip_seconds: -2\n", "render.clip_seconds"),
    ("render:\n  samples: lots\n", "render.samples"),
    ("render:\n  samples: 2.5\n", "render.samples"),
    ("render:\n  fps: .nan\n", "render.fps"),
    ("scene:\n  lens_mm: 0\n", "scene.lens_mm"),
    ("scene:\n  lens_mm: .inf\n", "scene.lens_mm"),
    ("scene:\n  scale: [0, 1]\n", "scene.scale"),
    ("scene:\n  distance_factor: [0.1, 1]\n", "scene.distance_factor"),
    ("scene:\n  yaw_deg: [360, 0]\n", "scene.yaw_deg"),
    ("scene:\n  yaw_deg: [.nan, 10]\n", "scene.yaw_deg"),
    ("scene:\n  yaw_deg: [0, 1.0e+300]\n", "scene.yaw_deg"),
    ("annotate:\n  min_visible_px: 0\n", "annotate.min_visible_px"),
    ("annotate:\n  min_visible_frac: 2\n", "annotate.min_visible_frac"),
    ("annotate:\n  diff_threshold: 256\n", "annotate.diff_threshold"),
    ("qa:\n  crf: 99\n", "qa.crf"),
    ("qa:\n  test_fraction: -0.1\n", "qa.test_fraction"),
    ("qa:\n  unseen_categories: ['../vase0']\n", "qa.unseen_categories"),
])
def test_negative_or_absurd_config_values(tmp_path, snippet, key):
    _assert_config_error(tmp_path, BASE + snippet, key)


@pytest.mark.parametrize("objects,key", [
    ("  objects_per_category: 0\n", "objects.objects_per_category"),
    ("  normal_share: 1.5\n", "objects.normal_share"),
    ("  trajectories_per_object: 0\n", "objects.trajectories_per_object"),
    ("  defects: {bulge: -1}\n", "objects.defects"),
    ("  defects: {bulge: .inf}\n", "objects.defects"),     # an infinite weight made the planner divide inf/inf
    ("  defect_area: [0.5, 0.9]\n", "objects.defect_area"),
    ("  source: {kind: anomaly_shapenet, root: /x, mask_tolerance: 0}\n", "objects.source.mask_tolerance"),
    ("  source: {kind: anomaly_shapenet, root: /x, min_matched: 2}\n", "objects.source.min_matched"),
])
def test_absurd_object_values(tmp_path, objects, key):
    _assert_config_error(tmp_path, BASE + objects, key)


@pytest.mark.parametrize("snippet", ["name: ../evil\nobjects:\n  categories: [vase0]\n",
                                     "name: t\nobjects:\n  categories: [vase0]\nrender:\n  fps: -30\n"])
def test_cli_prints_config_errors_without_traceback(tmp_path, snippet):
    p = tmp_path / "c.yaml"
    p.write_text(snippet)
    proc = run_mmviad("plan", "--config", str(p), "--out", str(tmp_path / "out"), check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 2 and str(p) in proc.stderr
    assert not (tmp_path / "out" / "jobs.jsonl").exists() and not (tmp_path.parent / "evil").exists()


# ---- read-only and full output folders (real tmpfs mounts) ----------------------------------------

def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to simulate a read-only / full disk with tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip()}")


@pytest.fixture()
def tmpfs(tmp_path: Path):
    mounted: list[Path] = []

    def make(name: str, size: str) -> Path:
        p = tmp_path / name
        _mount_tmpfs(p, size)
        mounted.append(p)
        return p

    yield make
    for p in mounted:
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def _remount(where: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(where)], check=True, capture_output=True)


def test_read_only_output_folder_fails_up_front_in_one_line(tmpfs, tmp_path):
    mnt = tmpfs("ro", "8m")
    out = mnt / "out"
    run_mmviad("plan", "--config", str(SMOKE), "--out", str(out))
    before = (out / "jobs.jsonl").read_bytes()
    _remount(mnt, "ro")
    for stage in ("render", "annotate", "clips", "qa"):
        proc = run_mmviad(stage, "--config", str(SMOKE), "--out", str(out), "--no-progress", check=False)
        _assert_no_traceback(proc)
        assert proc.returncode == 2, (stage, proc.stderr)
        err = [ln for ln in proc.stderr.splitlines() if ln.startswith("mmviad:")]
        assert len(err) == 1 and "not writable" in err[0] and "Read-only file system" in err[0] and str(out) in err[0]
    # a folder that does not exist yet on a read-only disk
    proc = run_mmviad("plan", "--config", str(SMOKE), "--out", str(mnt / "new"), check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 2 and "Read-only file system" in proc.stderr and str(mnt / "new") in proc.stderr
    assert (out / "jobs.jsonl").read_bytes() == before


def test_full_output_folder_fails_jobs_then_a_rerun_completes(tmpfs, tmp_path):
    """A disk that fills mid-render: the jobs that cannot write fail with one line each (exit 1),
    nothing incomplete carries a DONE marker, and after space is freed a rerun finishes everything."""
    from pipeline.render.job import _verify

    cfg = tmp_path / "tiny.yaml"
    raw = yaml.safe_load(SMOKE.read_text())
    raw["render"] = TINY_RENDER
    raw["objects"]["categories"] = ["vase0", "cup0"]
    raw["objects"]["normal_share"] = 0.5
    cfg.write_text(yaml.safe_dump(raw))
    mnt = tmpfs("full", "900k")     # room for the plan and one mesh, not for the frames
    out = mnt / "out"
    proc = run_mmviad("render", "--config", str(cfg), "--out", str(out), "--no-progress", check=False)
    _assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = _failed_lines(proc.stderr)
    assert failed and all("(log: " in ln for ln in failed.values()), proc.stderr
    assert any("No space left on device" in ln or "Blender exited" in ln for ln in failed.values()), proc.stderr
    jobs = [j["job_id"] for j in read_jsonl(out / "jobs.jsonl")]
    for jid in jobs:
        d = out / "renders" / jid
        if (d / "DONE").exists():
            _verify(d, TINY_RENDER["orbit_frames"])     # whatever says DONE is complete
        else:
            assert jid in failed
    _remount(mnt, "size=64m")
    proc = run_mmviad("render", "--config", str(cfg), "--out", str(out), "--no-progress", check=False)
    assert proc.returncode == 0, proc.stderr
    for jid in jobs:
        _verify(out / "renders" / jid, TINY_RENDER["orbit_frames"])
        assert (out / "renders" / jid / "DONE").exists()
    assert run_mmviad("annotate", "--config", str(cfg), "--out", str(out), "--no-progress").returncode == 0


def test_procedural_defect_with_an_empty_mask_fails_its_job(monkeypatch):
    """A defective job whose applied defect marks no face would be labelled as a normal object:
    ``object_mesh`` refuses it, naming the job and the field."""
    from pipeline.objects import sources
    from pipeline.objects.mesh import DefectMesh
    from pipeline.plan import plan_jobs

    cfg = load_config(SMOKE)
    job = next(j for j in plan_jobs(cfg) if j["defect"])
    monkeypatch.setattr(sources, "apply_defect", lambda base, p: DefectMesh.normal(base.vertices, base.faces))
    with pytest.raises(ValueError, match=rf"job {job['job_id']}: object.defect_params: .*marks no face"):
        sources.object_mesh(job, cfg)
