"""Contact sheet of the object library: one tile per category (with a defect, cycling through the six
types) and one close-up per defect type, rendered with Blender Workbench in a separate process
(``blender_scripts/preview_sheet.py``), defect faces in red, composed here with Pillow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import trimesh
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..ids import DEFECT_TYPES
from ..io import atomic_write_bytes
from ..paths import BLENDER_SCRIPTS
from ..seeds import rng_for
from .defects import apply_defect, choose_defect
from .geometry import camera_direction
from .library import ObjectLibrary
from .mesh import DefectMesh

SCRIPT = BLENDER_SCRIPTS / "preview_sheet.py"
# Close-ups: which category shows each defect type.
SHOWCASE = {"crack": "vase3", "scratch": "bowl4", "concavity": "bottle0", "bulge": "helmet3",
            "broken": "cup0", "hole": "bucket1"}


def _look(target: np.ndarray, direction: np.ndarray, dist: float) -> dict[str, Any]:
    return {"location": [float(x) for x in target + dist * direction], "target": [float(x) for x in target],
            "lens_mm": 35.0}


def _whole(dm: DefectMesh) -> dict[str, Any]:
    """Camera at 25 degrees elevation, on the side the defect faces, framing the whole object."""
    lo, hi = dm.vertices.min(0), dm.vertices.max(0)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo) / 2)
    if dm.face_mask.any():  # face the mean normal of the marked faces
        n = trimesh.Trimesh(dm.vertices, dm.faces, process=False).face_normals[dm.face_mask].mean(0)
        direction = camera_direction(n if np.linalg.norm(n[:2]) > 1e-6 else np.array([1.0, -1, 0]))
    else:
        direction = camera_direction(np.array([1.0, -1.0, 0.0]))
    return _look(center, direction, radius / math.sin(math.radians(24)) * 1.05)


def _closeup(dm: DefectMesh, normal: np.ndarray) -> dict[str, Any]:
    pts = dm.vertices[dm.vertex_mask]
    c = pts.mean(0)
    size = float(np.linalg.norm(pts.max(0) - pts.min(0)))
    d = 0.5 * normal + 0.5 * camera_direction(normal)
    return _look(c, d / np.linalg.norm(d), max(size, 0.08) * 2.6)


def _label(img: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, img.width, 14], fill=(255, 255, 255))
    draw.text((3, 1), text, fill=(0, 0, 0))
    return img


def tiles(library: Optional[Path], seed: int) -> list[dict[str, Any]]:
    """The tile list: (label, mesh, camera)."""
    lib = ObjectLibrary(library)
    out: list[dict[str, Any]] = []
    meshes = {}
    for i, cat in enumerate(tqdm(lib.categories, desc="preview: objects", unit="object")):
        base = lib.get(cat).build()
        meshes[cat] = base
        kind = DEFECT_TYPES[i % len(DEFECT_TYPES)]
        dm = apply_defect(base, choose_defect(base, kind, rng_for(seed, cat, "defect"), (0.02, 0.04), (0.06, 0.1)))
        out.append({"label": f"{cat} ({lib.get(cat).group}) {kind}", "mesh": dm, "camera": _whole(dm)})
    for kind, cat in SHOWCASE.items():
        base = meshes.get(cat) or lib.get(lib.categories[0]).build()
        p = choose_defect(base, kind, rng_for(seed, f"closeup-{cat}", kind), (0.02, 0.03), (0.08, 0.1))
        dm = apply_defect(base, p)
        out.append({"label": f"{kind.upper()} close-up ({cat})", "mesh": dm,
                    "camera": _closeup(dm, base.vertex_normals[p.center])})
    return out


def blender_command(spec: Path) -> list[str]:
    import os
    blender = os.environ.get("BLENDER")
    if blender:
        return [blender, "-b", "--factory-startup", "--python-exit-code", "3", "-P", str(SCRIPT), "--", str(spec)]
    return [sys.executable, str(SCRIPT), str(spec)]


def render_sheet(out: Path, library: Optional[Path] = None, seed: int = 0, tile: int = 256, columns: int = 9) -> Path:
    """Render all tiles in one Blender process and write the contact sheet PNG atomically."""
    ts = tiles(library, seed)
    with tempfile.TemporaryDirectory(prefix="mmviad-preview-") as tmp:
        tmpd = Path(tmp)
        spec_tiles = []
        for i, t in enumerate(ts):
            t["mesh"].save(tmpd / f"{i:03d}.npz")
            spec_tiles.append({"mesh": str(tmpd / f"{i:03d}.npz"), "output": str(tmpd / f"{i:03d}.png"),
                               "camera": t["camera"]})
        spec = tmpd / "preview.json"
        spec.write_text(json.dumps({"width": tile, "height": tile, "tiles": spec_tiles}))
        log = tmpd / "blender.log"
        with open(log, "wb") as f:
            code = subprocess.run(blender_command(spec), stdout=f, stderr=subprocess.STDOUT).returncode
        missing = [s["output"] for s in spec_tiles if not Path(s["output"]).exists()]
        if code != 0 or missing:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Blender preview failed (exit {code}, {len(missing)} tiles missing):\n{tail}")
        rows = math.ceil(len(ts) / columns)
        sheet = Image.new("RGB", (columns * tile, rows * tile), (255, 255, 255))
        for i, (t, s) in enumerate(zip(ts, spec_tiles)):
            with Image.open(s["output"]) as im:
                img = _label(im.convert("RGB"), t["label"])
            sheet.paste(img, ((i % columns) * tile, (i // columns) * tile))
    import io
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(out, buf.getvalue())
    return out
