"""Object sources behind one interface: the procedural library or an Anomaly-ShapeNet folder.

The planner asks a catalog to *resolve* each (category, index, label) slot into the job's ``object``
record (JSON); the renderer turns that record back into a normalized :class:`DefectMesh` with
:func:`object_mesh`. Both are deterministic.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import numpy as np
import trimesh

from ..config import Config, SourceConfig
from ..ids import defect_of_label, label_of
from ..seeds import rng_for
from . import anomaly_shapenet as asn
from .defects import DefectParams, apply_defect, choose_defect
from .library import ObjectLibrary
from .mesh import DefectMesh
from .revolve import normalize


@lru_cache(maxsize=64)
def library_mesh(library: str, category: str) -> trimesh.Trimesh:
    """A library category's mesh (cached per process; treat it as read-only)."""
    return ObjectLibrary(library or None).get(category).build()


def group_of(category: str) -> str:
    """Anomaly-ShapeNet's semantic group: the category without its instance digits."""
    return re.sub(r"\d+$", "", category) or category


class ProceduralCatalog:
    pure = True  # resolve() depends only on its arguments: the planner may call it in any process

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.lib = ObjectLibrary(cfg.objects.source.library)
        self.root = str(cfg.objects.source.library or "")
        for cat in cfg.objects.categories:
            self.lib.get(cat)  # unknown categories fail before anything is written

    def group(self, category: str) -> str:
        return self.lib.get(category).group

    def resolve(self, category: str, index: int, label: str) -> tuple[Optional[str], dict[str, Any]]:
        spec = self.lib.get(category)
        defect = defect_of_label(label)
        obj: dict[str, Any] = {"source": "procedural", "kind": spec.kind, "spec": spec.source, "defect_params": None}
        if defect:
            oc = self.cfg.objects
            rng = rng_for(self.cfg.seed, f"{category}-{index:04d}-{label}", "defect")
            p = choose_defect(library_mesh(self.root, category), defect, rng, oc.defect_area, oc.defect_depth,
                              oc.groove_scale)
            obj["defect_params"] = p.to_json()
        return defect, obj


class AnomalyShapeNetCatalog:
    pure = False  # resolve() prefers files not used yet: call it in plan order, in one process

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        src = cfg.objects.source
        self.items, self.notes = asn.index(src.root, src.label_map)
        self.by_cat: dict[str, list[asn.ASNItem]] = {}
        for it in self.items:
            self.by_cat.setdefault(it.category, []).append(it)
        missing = [c for c in cfg.objects.categories if c not in self.by_cat]
        if missing:
            raise KeyError(f"{src.root}: categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)} not found "
                           f"(have: {', '.join(sorted(self.by_cat))})")
        self.used: set[Path] = set()

    def group(self, category: str) -> str:
        return group_of(category)

    def resolve(self, category: str, index: int, label: str) -> tuple[Optional[str], dict[str, Any]]:
        """A file of the wanted label (unused ones first); another label when the category has none."""
        rng = rng_for(self.cfg.seed, f"{category}-{index:04d}", "object")
        items = self.by_cat[category]
        labels = sorted({label_of(it.defect) for it in items})
        if label not in labels:
            label = labels[int(rng.integers(len(labels)))]
        pool = [it for it in items if label_of(it.defect) == label]
        fresh = [it for it in pool if it.obj not in self.used] or pool
        item = fresh[int(rng.integers(len(fresh)))]
        self.used.add(item.obj)
        return item.defect, {"source": "anomaly_shapenet", "path": str(item.obj), "item": item.stem,
                             "token": item.token, "gt": str(item.gt) if item.gt else None, "defect_params": None}


def catalog(cfg: Config) -> ProceduralCatalog | AnomalyShapeNetCatalog:
    return AnomalyShapeNetCatalog(cfg) if cfg.objects.source.kind == "anomaly_shapenet" else ProceduralCatalog(cfg)


def orient_normalize(mesh: trimesh.Trimesh, up_axis: str) -> trimesh.Trimesh:
    """Rotate ``up_axis`` to +z (y-up is the OBJ/ShapeNet convention), then normalize like the library."""
    m = mesh.copy()
    if up_axis == "y":
        m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    return normalize(m)


def loaded_mesh(path: Path, gt: Optional[Path], defect: Optional[str], source: SourceConfig,
                category: str = "") -> tuple[DefectMesh, Optional[asn.TransferReport]]:
    """A loaded Anomaly-ShapeNet mesh, normalized, with its GT-transferred mask."""
    item = asn.ASNItem(category, path.stem.lower(), "", defect, path, gt, None)
    mesh, mask, rep = asn.item_mesh(item, source.mask_tolerance, source.min_matched)
    m = orient_normalize(mesh, source.up_axis)
    faces = np.asarray(m.faces)
    return DefectMesh(m.vertices, faces, mask, mask[faces].any(axis=1)), rep


def object_mesh(job: dict[str, Any], cfg: Config) -> DefectMesh:
    """The job's object, normalized (largest extent 1, base on z = 0), with its defect applied."""
    obj = job["object"]
    if obj.get("source") == "anomaly_shapenet":
        dm, _ = loaded_mesh(Path(obj["path"]), Path(obj["gt"]) if obj.get("gt") else None, job["defect"],
                            cfg.objects.source, job["category"])
        return dm
    base = library_mesh(str(cfg.objects.source.library or ""), job["category"])
    dp = obj.get("defect_params")
    if dp:
        dm = apply_defect(base, DefectParams.from_json(dp, f"job {job['job_id']}: object.defect_params"))
        if not dm.has_defect:  # a defective job whose mask is empty would be labelled as a normal one
            raise ValueError(f"job {job['job_id']}: object.defect_params: the {dp.get('kind')} defect marks no "
                             "face of the mesh (empty defect mask)")
        return dm
    return DefectMesh.normal(base.vertices, base.faces)
