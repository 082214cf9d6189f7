"""The procedural object library: declarative YAML specs in ``assets/objects/`` → meshes.

Each YAML file maps a category id to a spec with ``group`` and ``kind``:

- ``kind: revolve`` with ``profile: [[r, z], ...]`` (a surface of revolution, see :mod:`.revolve`);
- ``kind: parts`` with ``parts: [...]`` and optional ``subtract: [...]`` (primitives from
  :mod:`.shapes`, unioned and differenced with manifold3d).

Optional for both: ``edge`` (target edge length after normalization, default 0.02). Every mesh is
normalized (largest extent 1, centred on the z axis, base on z = 0) and then refined so that no
edge is much longer than ``edge``: a defect of 1 % of the surface then spans dozens of vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import trimesh
import yaml

from ..ids import validate_id
from ..paths import ASSETS
from . import csg
from .revolve import normalize
from .shapes import build_parts, revolved

DEFAULT_LIBRARY = ASSETS / "objects"
DEFAULT_EDGE = 0.02
KINDS = ("revolve", "parts")


@dataclass(frozen=True)
class ObjectSpec:
    """One fine-grained category: its semantic group and how to build it."""
    category: str
    group: str
    kind: str
    params: dict[str, Any]
    source: str  # the spec file it came from

    @property
    def where(self) -> str:
        return f"{self.source}: {self.category}"

    def build(self) -> trimesh.Trimesh:
        """Build the normalized (largest extent 1, base on z = 0), refined, watertight mesh."""
        p = self.params
        if self.kind == "revolve":
            mesh = revolved(p, self.where)
        elif self.kind == "parts":
            mesh = build_parts(p.get("parts"), p.get("subtract") or [], self.where)
        else:
            raise ValueError(f"{self.where}.kind: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        mesh = normalize(mesh)
        try:
            mesh = csg.refine(mesh, float(p.get("edge", DEFAULT_EDGE)))
        except csg.CSGError as e:
            raise ValueError(f"{self.where}: {e}") from None
        if not mesh.is_watertight:
            raise ValueError(f"{self.where}: the built mesh is not watertight")
        return mesh


class ObjectLibrary:
    """All specs found in a folder of YAML files (each file maps category → spec)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else DEFAULT_LIBRARY
        files = sorted(self.root.glob("*.yaml"))
        if not files:
            raise FileNotFoundError(f"{self.root}: no object specs (*.yaml) found")
        # Parsing the YAML is most of the cost of a library (~0.2 s): reuse it while no file changed.
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        self.specs: dict[str, ObjectSpec] = dict(_parse(str(self.root), stamp))

    def get(self, category: str) -> ObjectSpec:
        try:
            return self.specs[category]
        except KeyError:
            raise KeyError(f"category {category!r} is not in the object library {self.root} "
                           f"(have: {', '.join(sorted(self.specs))})") from None

    @property
    def categories(self) -> list[str]:
        return sorted(self.specs)


@lru_cache(maxsize=16)
def _parse(root_str: str, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, ObjectSpec]:
    """The specs of the files in ``stamp`` (name, mtime, size: a changed file is parsed again)."""
    root = Path(root_str)
    specs: dict[str, ObjectSpec] = {}
    for name, _, _ in stamp:
        f = Path(name)
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{f}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{f}: expected a mapping of category → spec")
        shown = str(f.relative_to(root.parent.parent)) if root == DEFAULT_LIBRARY else str(f)
        for cat, spec in data.items():
            validate_id(cat, f"{f}: category")
            if not isinstance(spec, dict) or "group" not in spec or "kind" not in spec:
                raise ValueError(f"{f}: {cat}: a spec needs 'group' and 'kind'")
            if spec["kind"] not in KINDS:
                raise ValueError(f"{f}: {cat}.kind: unknown kind {spec['kind']!r} (known: {', '.join(KINDS)})")
            if cat in specs:
                raise ValueError(f"{f}: {cat}: defined twice (also in {specs[cat].source})")
            params = {k: v for k, v in spec.items() if k not in ("group", "kind")}
            specs[cat] = ObjectSpec(cat, validate_id(spec["group"], f"{f}: {cat}.group"), spec["kind"], params, shown)
    return specs
