"""Where the repository's own files are: the one place that knows this package sits in the repo root.

Modules that need a bundled file (assets, Blender scripts) take it from here instead of counting
``Path(__file__).parents[...]`` themselves, so moving a module never silently breaks a path. The
output tree of a dataset is :mod:`pipeline.layout`'s business, not this module's.
"""

from __future__ import annotations

from pathlib import Path

#: the repository root (the folder holding ``pipeline/``, ``assets/`` and ``blender_scripts/``)
REPO_ROOT: Path = Path(__file__).resolve().parents[1]
#: bundled data: object library, scene catalog, prompts, knowledge, the review page template
ASSETS: Path = REPO_ROOT / "assets"
#: scripts that run inside Blender (the only code that imports ``bpy``)
BLENDER_SCRIPTS: Path = REPO_ROOT / "blender_scripts"
