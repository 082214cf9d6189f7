"""Prompt building: the benchmark prompts in ``assets/prompts/`` and the MMAD-style settings.

Settings: ``0-shot``; ``1-shot`` (a normal clip of the same category as a template); ``1-shot+``
(the most similar normal clip, see :mod:`.reference`); ``knowledge`` (domain knowledge for the
category's group and every defect type from ``assets/knowledge/knowledge.yaml``, prepended as MMAD
does). A prompt is a list of parts, ``{"type": "text", "text": str}`` or
``{"type": "image", "image": ndarray, "time": float}``, that each runner turns into its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Optional

import yaml

from ..layout import Layout
from ..paths import ASSETS
from .frames import DEFAULT_MAX_PIXELS, sample_frames

PROMPTS = ("main", "structured")
SETTINGS = ("0-shot", "1-shot", "1-shot+", "knowledge")
REFERENCE_TEXT = ("Following is a video clip of a normal (defect-free) object of the same category, which can be "
                  "used as a template to compare with the clip being queried.")
QUERY_TEXT = "Following is the queried clip:"
KNOWLEDGE_TEXT = ("Following is the domain knowledge which contains some types of defect and the normal object "
                  "characteristics:")


@dataclass
class Prompt:
    """What a runner sends for one clip."""
    clip_id: str
    parts: list[dict[str, Any]] = field(default_factory=list)


def load_template(name: str, folder: Path = ASSETS / "prompts") -> Template:
    path = Path(folder) / f"{name}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: prompt template not found (known: {', '.join(PROMPTS)})")
    return Template(path.read_text(encoding="utf-8"))


def load_knowledge(path: Path = ASSETS / "knowledge" / "knowledge.yaml") -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("defects"), dict):
        raise ValueError(f"{path}: defects: expected a mapping of defect type to text")
    return data


def knowledge_text(rec: dict[str, Any], knowledge: dict[str, Any]) -> str:
    group = (knowledge.get("groups") or {}).get(rec["group"]) or knowledge.get("default_group", "")
    lines = [KNOWLEDGE_TEXT, f"normal {rec['group']}: {group}"]
    lines += [f"{d}: {t}" for d, t in sorted(knowledge["defects"].items())]
    return "\n".join(lines)


def _options(opts: dict[str, str]) -> str:
    return " ".join(f"{k}: {v}" for k, v in opts.items())


def _frames(out: Path, rec: dict[str, Any], n: int, max_pixels: Optional[int]) -> list[dict[str, Any]]:
    s = sample_frames(Layout(out).resolve(rec["video"]), n, max_pixels)
    parts: list[dict[str, Any]] = []
    for img, t in zip(s.frames, s.timestamps):
        parts.append({"type": "text", "text": f"Frame at {t:.2f} s:"})
        parts.append({"type": "image", "image": img, "time": t})
    return parts


def build_prompt(rec: dict[str, Any], out: Path, template: Template, n_frames: int,
                 reference: Optional[dict[str, Any]] = None, ref_frames: int = 8,
                 knowledge: Optional[dict[str, Any]] = None, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Prompt:
    """The full prompt for one QA record: context (knowledge, reference clip), query frames with
    their timestamps (resized by :func:`.frames.fit_size` unless ``max_pixels`` is ``None``), then
    the templated questions."""
    context = knowledge_text(rec, knowledge) if knowledge is not None else ""
    text = template.substitute(
        n_frames=n_frames, duration=f"{rec['duration']:g}", context=context,
        q1_question=rec["q1"]["question"], q1_options=_options(rec["q1"]["options"]),
        q2_question=rec["q2"]["question"], q2_options=_options(rec["q2"]["options"]),
        q3_question=rec["q3"]["question"], q3_options=_options(rec["q3"]["options"]),
        q4_question=rec["q4"]["question"])
    parts: list[dict[str, Any]] = []
    if reference is not None:
        parts.append({"type": "text", "text": REFERENCE_TEXT})
        parts += _frames(out, reference, ref_frames, max_pixels)
        parts.append({"type": "text", "text": QUERY_TEXT})
    parts += _frames(out, rec, n_frames, max_pixels)
    parts.append({"type": "text", "text": text})
    return Prompt(clip_id=rec["clip_id"], parts=parts)
