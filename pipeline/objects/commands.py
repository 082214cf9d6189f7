"""``mmviad objects list`` and ``mmviad objects preview``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from ..ids import label_of


def _row(id_: str, category: str, group: str, defect: str | None, dm, source: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "category": category, "group": group, "defect": defect, "vertices": int(len(dm.vertices)),
            "faces": int(len(dm.faces)), "defect_vertices": int(dm.vertex_mask.sum()), "source": source, **extra}


def iter_objects(config: Path | None) -> Iterator[dict[str, Any]]:
    """Without a config: every library category (normal). With one: its objects (procedural: the planned
    objects with their defects; anomaly_shapenet: every indexed file, with a GT transfer report)."""
    from .library import ObjectLibrary
    from .mesh import DefectMesh

    if config is None:
        lib = ObjectLibrary()
        for cat in tqdm(lib.categories, desc="objects", unit="object", file=sys.stderr):
            spec = lib.get(cat)
            m = spec.build()
            yield _row(cat, cat, spec.group, None, DefectMesh.normal(m.vertices, m.faces), spec.source)
        return
    from ..config import load_config
    from ..plan import plan_jobs
    from .sources import group_of, loaded_mesh, object_mesh

    cfg = load_config(config)
    if cfg.objects.source.kind == "anomaly_shapenet":
        from . import anomaly_shapenet as asn

        items, _ = asn.index(cfg.objects.source.root, cfg.objects.source.label_map)
        for it in tqdm(items, desc="objects", unit="object", file=sys.stderr):
            try:
                dm, rep = loaded_mesh(it.obj, it.gt, it.defect, cfg.objects.source, it.category)
                yield _row(it.stem, it.category, group_of(it.category), it.defect, dm, str(it.obj),
                           transfer=rep.to_json() if rep else None)
            except (ValueError, FileNotFoundError) as e:
                yield {"id": it.stem, "category": it.category, "group": group_of(it.category), "defect": it.defect,
                       "source": str(it.obj), "error": str(e)}
        return
    seen = set()
    for job in tqdm(plan_jobs(cfg), desc="objects", unit="job", file=sys.stderr):
        key = f"{job['category']}-{job['object_index']:04d}-{label_of(job['defect'])}"
        if key in seen:
            continue
        seen.add(key)
        dm = object_mesh(job, cfg)
        yield _row(key, job["category"], job["group"], job["defect"], dm, job["object"]["spec"],
                   defect_params=job["object"]["defect_params"])


def cmd_list(args: argparse.Namespace) -> int:
    failed = 0
    for row in iter_objects(args.config):
        failed += "error" in row
        print(json.dumps(row, sort_keys=True), flush=True)
    return 1 if failed else 0


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview import render_sheet

    path = render_sheet(args.out, args.library, seed=args.seed, tile=args.tile)
    print(f"objects preview: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``objects {list,preview}`` to the main parser."""
    p = sub.add_parser("objects", help="inspect the object library and sources",
                       description="inspect the object library and object sources")
    osub = p.add_subparsers(dest="objects_command", required=True, metavar="ACTION")
    ls = osub.add_parser("list", help="one JSON line per object (id, category, group, defect, vertices, faces, "
                         "defect_vertices, source)", description="one JSON line per object: the whole procedural "
                         "library, or with --config the objects that config uses")
    ls.add_argument("--config", type=Path, default=None, help="dataset config YAML (default: the built-in library)")
    ls.set_defaults(func=cmd_list)
    pv = osub.add_parser("preview", help="contact sheet PNG: one tile per category and per defect type (Workbench)",
                         description="render a contact sheet of the library with Blender Workbench, defects in red")
    pv.add_argument("--out", type=Path, default=Path("docs/objects_preview.png"), help="PNG path (default: %(default)s)")
    pv.add_argument("--library", type=Path, default=None, help="folder of object specs (default: assets/objects)")
    pv.add_argument("--seed", type=int, default=0, help="seed for the defects shown (default: %(default)s)")
    pv.add_argument("--tile", type=int, default=256, help="tile size in pixels (default: %(default)s)")
    pv.set_defaults(func=cmd_preview)
