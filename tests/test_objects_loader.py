"""The Anomaly-ShapeNet loader on a tiny fixture written in the real layout: binary PCD, comma GT
without a header, OBJ meshes, ``crak``, ``bending``, a missing GT file, a GT that does not match."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml

from pipeline.config import ConfigError, load_config
from pipeline.objects import anomaly_shapenet as asn
from pipeline.objects.pcd import read_gt, read_pcd
from pipeline.plan import plan_jobs
from pipeline.render.scene import build_mesh


def _write_pcd_binary(path: Path, pts: np.ndarray) -> None:
    header = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n"
              f"COUNT 1 1 1\nWIDTH {len(pts)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(pts)}\nDATA binary\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + pts.astype("<f4").tobytes())


def _write_gt(path: Path, pts: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{x:.6f},{y:.6f},{z:.6f},{int(l)}" for (x, y, z), l in zip(pts, labels)]
    path.write_text("\n".join(rows) + "\n")


def _mesh(bump: bool) -> trimesh.Trimesh:
    m = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    m = trimesh.Trimesh(m.vertices * [1.0, 1.6, 1.0], m.faces)   # y-up, taller than wide
    if bump:
        v = m.vertices.copy()
        sel = v[:, 0] > 0.35
        v[sel] *= 1.05
        m = trimesh.Trimesh(v, m.faces)
    return m


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "Anomaly-ShapeNet-v2"
    ds = root / "dataset"
    cat = "ashtray0"
    rng = np.random.default_rng(0)
    for stem, bump in [("ashtray0_template0", False), ("ashtray0_positive0", False), ("ashtray0_bulge0", True),
                       ("ashtray0_crak0", True), ("ashtray0_bending0", True), ("ashtray0_hole0", True),
                       ("ashtray0_scratch0", True)]:
        m = _mesh(bump)
        (ds / "obj" / cat).mkdir(parents=True, exist_ok=True)
        m.export(ds / "obj" / cat / f"{stem}.obj")
        split = "train" if "template" in stem else "test"
        pts = m.sample(3000, seed=1) if hasattr(m, "sample") else m.vertices
        _write_pcd_binary(ds / "pcd" / cat / split / f"{stem}.pcd", np.asarray(pts))
        if split == "test" and "positive" not in stem and stem != "ashtray0_hole0":   # hole0: GT missing
            gt_pts = np.vstack([m.vertices, m.sample(2000)])
            gt_pts = gt_pts[rng.permutation(len(gt_pts))]                          # row order is not PCD order
            labels = gt_pts[:, 0] > 0.35 * 1.05 - 1e-3
            if stem == "ashtray0_scratch0":
                gt_pts = gt_pts + [3.0, 0.0, 0.0]                                   # does not match the mesh
            _write_gt(ds / "pcd" / cat / "GT" / f"{stem}.txt", gt_pts, labels)
    return root


def test_pcd_binary_and_ascii(tmp_path):
    pts = np.random.default_rng(1).normal(size=(50, 3))
    _write_pcd_binary(tmp_path / "a.pcd", pts)
    assert np.allclose(read_pcd(tmp_path / "a.pcd"), pts, atol=1e-6)
    body = "\n".join(f"{a} {b} {c} 7" for a, b, c in pts)
    (tmp_path / "b.pcd").write_text("VERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
                                    f"WIDTH 50\nHEIGHT 1\nPOINTS 50\nDATA ascii\n{body}\n")
    assert np.allclose(read_pcd(tmp_path / "b.pcd"), pts)
    (tmp_path / "c.pcd").write_text("VERSION .7\nFIELDS x y\nPOINTS 1\nDATA ascii\n1 2\n")
    with pytest.raises(ValueError, match=r"c\.pcd: FIELDS: no 'z'"):
        read_pcd(tmp_path / "c.pcd")
    (tmp_path / "d.pcd").write_bytes(b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 10\nDATA binary\n" + b"\0" * 12)
    with pytest.raises(ValueError, match=r"d\.pcd: DATA"):
        read_pcd(tmp_path / "d.pcd")


def test_gt_reader_rejects_wrong_columns(tmp_path):
    (tmp_path / "g.txt").write_text("1 2 3 0\n")
    with pytest.raises(ValueError, match=r"g\.txt"):
        read_gt(tmp_path / "g.txt")


def test_index_maps_crak_and_skips_bending(dataset):
    with pytest.warns(UserWarning, match="bending"):
        items, notes = asn.index(dataset)
    by = {it.stem: it for it in items}
    assert by["ashtray0_crak0"].defect == "crack"
    assert by["ashtray0_template0"].defect is None and by["ashtray0_positive0"].defect is None
    assert "ashtray0_bending0" not in by and any("bending" in n for n in notes)
    assert by["ashtray0_bulge0"].pcd is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items2, _ = asn.index(dataset, {"bending": "broken"})
    assert {it.stem: it.defect for it in items2}["ashtray0_bending0"] == "broken"


def test_gt_transfer_and_clear_errors(dataset):
    with pytest.warns(UserWarning):
        items, _ = asn.index(dataset)
    by = {it.stem: it for it in items}
    mesh, mask, rep = asn.item_mesh(by["ashtray0_crak0"], 0.01, 0.9)
    expected = np.asarray(mesh.vertices)[:, 0] > 0.35 * 1.05 - 1e-3
    assert mask.any() and np.array_equal(mask, expected)
    assert rep.matched_fraction == pytest.approx(1.0) and rep.median_distance < 1e-5
    with pytest.raises(asn.TransferError, match=r"ashtray0_hole0\.txt: GT file not found"):
        asn.item_mesh(by["ashtray0_hole0"], 0.01, 0.9)
    with pytest.raises(asn.TransferError, match=r"ashtray0_scratch0\.txt: GT points do not match the mesh"):
        asn.item_mesh(by["ashtray0_scratch0"], 0.01, 0.9)


def _config(tmp_path: Path, dataset: Path, **source) -> Path:
    cfg = {"name": "asn", "seed": 1, "objects": {
        "source": {"kind": "anomaly_shapenet", "root": str(dataset), **source},
        "categories": ["ashtray0"], "objects_per_category": 4, "normal_share": 0.25,
        "defects": {"bulge": 1, "crack": 1, "hole": 1}}}
    p = tmp_path / "asn.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_loaded_meshes_flow_through_plan_and_build(tmp_path, dataset):
    cfg = load_config(_config(tmp_path, dataset))
    with pytest.warns(UserWarning):
        jobs = plan_jobs(cfg)
    assert len(jobs) == 4
    assert {j["object"]["source"] for j in jobs} == {"anomaly_shapenet"}
    assert sum(j["defect"] is None for j in jobs) == 1
    built = 0
    for j in jobs:
        if j["object"]["item"] in ("ashtray0_hole0", "ashtray0_scratch0"):
            with pytest.raises(asn.TransferError):     # fails only its own job
                build_mesh(j, cfg)
            continue
        dm = build_mesh(j, cfg)
        built += 1
        assert dm.vertices[:, 2].min() == pytest.approx(0.0)
        ext = dm.vertices.max(0) - dm.vertices.min(0)
        assert ext[2] == pytest.approx(ext.max())                 # y-up file stands upright
        assert dm.has_defect == (j["defect"] is not None)
    assert built >= 2


def test_source_config_is_strict(tmp_path, dataset):
    bad = {"name": "x", "objects": {"source": {"kind": "anomaly_shapenet"}, "categories": ["a0"]}}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"objects\.source\.root: required"):
        load_config(p)
    bad["objects"]["source"] = {"kind": "procedural", "root": "/x"}
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="only for kind anomaly_shapenet"):
        load_config(p)
    bad["objects"]["source"] = {"kind": "anomaly_shapenet", "root": "/x", "label_map": {"bending": "warp"}}
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="label_map: 'bending'"):
        load_config(p)
