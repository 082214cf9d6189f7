"""The procedural object library: declarative YAML specs in ``assets/objects/`` → meshes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trimesh
import yaml

from ..ids import validate_id
from .revolve import normalize, revolve_profile

DEFAULT_LIBRARY = Path(__file__).resolve().parents[2] / "assets" / "objects"


@dataclass(frozen=True)
class ObjectSpec:
    """One fine-grained category: its semantic group and how to build it."""
    category: str
    group: str
    kind: str
    params: dict[str, Any]
    source: str  # the spec file it came from

    def build(self) -> trimesh.Trimesh:
        """Build the normalized (height 1, base on z = 0) mesh of this category."""
        if self.kind == "revolve":
            mesh = revolve_profile(self.params["profile"], sections=int(self.params.get("sections", 96)),
                                   samples=int(self.params.get("samples", 96)))
        else:
            raise ValueError(f"{self.source}: {self.category}.kind: unknown kind {self.kind!r}")
        return normalize(mesh)


class ObjectLibrary:
    """All specs found in a folder of YAML files (each file maps category → spec)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else DEFAULT_LIBRARY
        self.specs: dict[str, ObjectSpec] = {}
        files = sorted(self.root.glob("*.yaml"))
        if not files:
            raise FileNotFoundError(f"{self.root}: no object specs (*.yaml) found")
        for f in files:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{f}: expected a mapping of category → spec")
            for cat, spec in data.items():
                validate_id(cat, f"{f}: category")
                if not isinstance(spec, dict) or "group" not in spec or "kind" not in spec:
                    raise ValueError(f"{f}: {cat}: a spec needs 'group' and 'kind'")
                if cat in self.specs:
                    raise ValueError(f"{f}: {cat}: defined twice (also in {self.specs[cat].source})")
                params = {k: v for k, v in spec.items() if k not in ("group", "kind")}
                self.specs[cat] = ObjectSpec(cat, validate_id(spec["group"], f"{f}: {cat}.group"),
                                             spec["kind"], params, str(f.relative_to(self.root.parent.parent))
                                             if self.root == DEFAULT_LIBRARY else str(f))

    def get(self, category: str) -> ObjectSpec:
        try:
            return self.specs[category]
        except KeyError:
            raise KeyError(f"category {category!r} is not in the object library {self.root} "
                           f"(have: {', '.join(sorted(self.specs))})") from None

    @property
    def categories(self) -> list[str]:
        return sorted(self.specs)
