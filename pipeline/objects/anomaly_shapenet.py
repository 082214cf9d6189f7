"""Anomaly-ShapeNet v2 as an object source: index by globbing, load OBJ meshes, transfer GT labels.

Layout: ``dataset/{obj,new_obj}/<cat>/*.obj`` and
``dataset/{pcd,new_pcd}/<cat>/{train,test,GT}``. File stems are ``<cat>_<token><k>`` (sometimes with
the class digit missing, e.g. ``desk_bulge0``): ``template``/``positive`` are normal, ``crak`` means
crack, ``bending`` is not one of the six types and is skipped with a warning unless ``label_map``
maps it. A defective mesh's mask comes from ``GT/<stem>.txt`` by nearest neighbour within a tolerance.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..ids import DEFECT_TYPES, validate_id
from .pcd import read_gt

NORMAL_TOKENS = ("template", "positive")
TOKEN_TO_DEFECT = {"bulge": "bulge", "concavity": "concavity", "crak": "crack", "crack": "crack",
                   "scratch": "scratch", "hole": "hole", "broken": "broken"}
_STEM = re.compile(r"^(?P<prefix>.+?)_(?P<token>[a-z]+)(?P<k>\d+)$")


class TransferError(ValueError):
    """GT labels that cannot be put on a mesh (missing GT, or points that do not match it)."""


@dataclass(frozen=True)
class ASNItem:
    """One OBJ of the dataset."""
    category: str
    stem: str
    token: str
    defect: Optional[str]    # None = normal
    obj: Path
    gt: Optional[Path]       # expected GT path for a defective item (may not exist)
    pcd: Optional[Path]


@dataclass(frozen=True)
class TransferReport:
    """How well the GT points matched the mesh."""
    gt_points: int
    gt_anomalous: int
    matched_fraction: float         # mesh vertices with a GT point within the tolerance
    anomalous_covered: float        # anomalous GT points with a mesh vertex within the tolerance
    median_distance: float
    p95_distance: float
    tolerance: float
    defect_vertices: int

    def to_json(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def dataset_dir(root: str | Path) -> Path:
    root = Path(root)
    for cand in (root / "dataset", root):
        if (cand / "obj").is_dir() or (cand / "new_obj").is_dir():
            return cand
    raise FileNotFoundError(f"{root}: no dataset/obj or dataset/new_obj folder (expected the Anomaly-ShapeNet-v2 "
                            "layout: dataset/{obj,new_obj}/<cat>/*.obj)")


def parse_stem(stem: str) -> tuple[str, int] | None:
    m = _STEM.match(stem.lower())
    return (m["token"], int(m["k"])) if m else None


def _find(ds: Path, category: str, sub: str, name: str) -> Optional[Path]:
    for top in ("pcd", "new_pcd"):
        for folder in (ds / top / category).glob("*"):
            if folder.is_dir() and folder.name.lower() == sub.lower():
                p = folder / name
                if p.exists():
                    return p
    return None


def index(root: str | Path, label_map: dict[str, str] | None = None) -> tuple[list[ASNItem], list[str]]:
    """Every usable OBJ under ``root`` (sorted), and warnings for the files skipped."""
    ds = dataset_dir(root)
    label_map = dict(label_map or {})
    items: list[ASNItem] = []
    notes: list[str] = []
    for top in ("obj", "new_obj"):
        for catdir in sorted(p for p in (ds / top).glob("*") if p.is_dir()):
            category = catdir.name.lower()
            try:
                validate_id(category, f"{catdir}: category")
            except ValueError as e:
                notes.append(str(e))
                continue
            for f in sorted(catdir.glob("*.obj")):
                parsed = parse_stem(f.stem)
                if parsed is None:
                    notes.append(f"{f}: name: not <cat>_<type><k>; skipped")
                    continue
                token, _ = parsed
                mapped = label_map.get(token)
                if token in NORMAL_TOKENS or mapped == "good":
                    defect = None
                elif mapped in DEFECT_TYPES:
                    defect = mapped
                elif mapped == "skip":
                    continue
                elif token in TOKEN_TO_DEFECT:
                    defect = TOKEN_TO_DEFECT[token]
                else:
                    notes.append(f"{f}: type: {token!r} is not one of the six defect types; skipped "
                                 f"(map it with source.label_map: {{{token}: <type>|good|skip}})")
                    continue
                stem = f.stem.lower()
                gt = (_find(ds, category, "GT", f"{f.stem}.txt") or ds / "pcd" / category / "GT" / f"{f.stem}.txt") \
                    if defect else None
                pcd = _find(ds, category, "test", f"{f.stem}.pcd") or _find(ds, category, "train", f"{f.stem}.pcd")
                items.append(ASNItem(category, stem, token, defect, f, gt, pcd))
    if not items:
        raise FileNotFoundError(f"{ds}: no usable .obj files found under obj/ or new_obj/")
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return items, notes


# Leading bytes of files that are often misnamed ``.obj`` (an image saved under the wrong name).
_NOT_OBJ = {b"\x89PNG\r\n\x1a\n": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
            b"PK\x03\x04": "a ZIP archive", b"\x1f\x8b": "a gzip file", b"glTF": "a binary glTF file"}


def load_obj(path: Path) -> trimesh.Trimesh:
    """Read an OBJ as one triangle mesh, rejecting (with ``<path>: <field>: <reason>``) files that are
    not OBJ text, unreadable or empty meshes, NaN/infinite vertices (trimesh would silently drop them
    with their faces) and non-manifold edges (shared by more than two faces)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ValueError(f"{path}: mesh: cannot be read ({e.strerror})") from None
    for magic, what in _NOT_OBJ.items():
        if head.startswith(magic):
            raise ValueError(f"{path}: format: the file is {what}, not an OBJ mesh")
    try:
        raw = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for a bad file
        raise ValueError(f"{path}: mesh: cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(raw, trimesh.Trimesh) or len(raw.faces) == 0:
        raise ValueError(f"{path}: mesh: no triangles")
    bad = ~np.isfinite(np.asarray(raw.vertices)).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: vertices: {int(bad.sum())} vertex(es) are NaN or infinite "
                         f"(first: vertex {int(np.flatnonzero(bad)[0]) + 1})")
    mesh = trimesh.Trimesh(raw.vertices, raw.faces, process=True)
    _, counts = np.unique(mesh.edges_sorted, axis=0, return_counts=True)
    if (counts > 2).any():
        raise ValueError(f"{path}: faces: {int((counts > 2).sum())} non-manifold edge(s) shared by more than "
                         "two faces")
    return mesh


def transfer_mask(vertices: np.ndarray, gt_points: np.ndarray, gt_labels: np.ndarray, tolerance: float,
                  min_matched: float, where: str) -> tuple[np.ndarray, TransferReport]:
    """Label each vertex with its nearest GT point's label when that point is within ``tolerance``
    (a fraction of the mesh's bounding-box diagonal). Raise :class:`TransferError` when fewer than
    ``min_matched`` of the vertices find a GT point, or when no anomalous point lands on the mesh."""
    diag = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    tol = tolerance * diag
    d, i = cKDTree(gt_points).query(vertices, k=1)
    matched = d <= tol
    mask = matched & gt_labels[i]
    anom = gt_points[gt_labels]
    covered = float((cKDTree(vertices).query(anom, k=1)[0] <= tol).mean()) if len(anom) else 0.0
    rep = TransferReport(len(gt_points), int(gt_labels.sum()), float(matched.mean()), covered,
                         float(np.median(d)), float(np.percentile(d, 95)), tol, int(mask.sum()))
    if rep.matched_fraction < min_matched:
        raise TransferError(f"{where}: GT points do not match the mesh: only {rep.matched_fraction:.1%} of vertices "
                            f"have a GT point within {tol:.4g} (median distance {rep.median_distance:.4g}; "
                            f"need {min_matched:.0%})")
    if rep.gt_anomalous == 0:
        raise TransferError(f"{where}: label: the GT file has no anomalous point (label 1)")
    if rep.defect_vertices == 0:
        raise TransferError(f"{where}: no anomalous GT point lies within {tol:.4g} of a mesh vertex")
    return mask, rep


def item_mesh(item: ASNItem, tolerance: float, min_matched: float) -> tuple[trimesh.Trimesh, np.ndarray, Optional[TransferReport]]:
    """The raw mesh of an item and its vertex mask (all False for a normal item)."""
    mesh = load_obj(item.obj)
    if item.defect is None:
        return mesh, np.zeros(len(mesh.vertices), bool), None
    if item.gt is None or not item.gt.exists():
        raise TransferError(f"{item.gt or item.obj}: GT file not found for defective mesh {item.obj.name} "
                            f"(looked in dataset/{{pcd,new_pcd}}/{item.category}/GT/{item.obj.stem}.txt)")
    pts, labels = read_gt(item.gt)
    mask, rep = transfer_mask(np.asarray(mesh.vertices), pts, labels, tolerance, min_matched, str(item.gt))
    return mesh, mask, rep
