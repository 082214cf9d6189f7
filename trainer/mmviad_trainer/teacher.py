"""PS-SFT trace teachers: a seeded template teacher (no model) and an OpenAI-compatible VLM teacher
that receives the clip's frames.

A teacher turns one QA record (object, material, environment, defect, visible intervals and the
four questions with their answers; the OpenAI teacher also the sampled frames with their times)
into a perception-structured trace::

    <global_perception>…</global_perception><segment_perception>…</segment_perception>
    <think>…</think><answer><q1>…</q1><q2>…</q2><q3>…</q3><q4>…</q4></answer>

Every trace, whichever teacher wrote it, then goes through :func:`traces.check_trace`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from pipeline.grammar import format_answer, format_intervals, format_seconds, format_structured
from pipeline.seeds import derive_seed

from .config import TeacherConfig
from .records import ground_truth


class Teacher(Protocol):
    """Anything that writes a trace for a QA record."""
    name: str

    def write(self, rec: dict[str, Any]) -> str: ...


def _words(s: Optional[str]) -> str:
    return (s or "unknown").replace("_", " ")


def _spans(intervals: list[list[float]], duration: float) -> list[tuple[float, float, bool]]:
    """The clip cut into alternating (start, end, visible) spans covering ``[0, duration]``."""
    out, t = [], 0.0
    for a, b in intervals:
        if a > t + 1e-6:
            out.append((t, a, False))
        out.append((a, b, True))
        t = b
    if t < duration - 1e-6:
        out.append((t, duration, False))
    return out


_GLOBAL = (
    "The clip shows a {obj} made of {mat}, seen by a camera orbiting it in a {env} setting over {dur} s.",
    "A {mat} {obj} is filmed from a moving viewpoint in a {env} environment; the clip lasts {dur} s.",
    "Over {dur} s the camera circles a {obj} ({mat}) placed in a {env} scene.",
    "This {dur}-second orbit shows one {obj}; its surface material looks like {mat}, the setting is {env}.",
)
_SEG_CLEAN = (
    "{a}–{b} s: the visible surface looks smooth and regular.",
    "From {a} s to {b} s nothing unusual is in view.",
    "{a} s to {b} s: the side facing the camera shows no irregularity.",
)
_SEG_DEFECT = (
    "{a}–{b} s: a {defect} is visible on the surface.",
    "From {a} s to {b} s a {defect} comes into view.",
    "{a} s to {b} s: the camera sees a {defect} on the object.",
)
_THINK_DEFECT = (
    "A {defect} is visible in {n} segment(s), so the object is defective (Q1 {q1}). The defect type is "
    "{defect} (Q2 {q2}). The object is a {group} (Q3 {q3}). The defect is visible during {iv}.",
    "Since a {defect} appears, the answer to Q1 is {q1}; among the options {defect} is {q2}. The shape "
    "matches {group}, option {q3}. Visible time: {iv}.",
    "Evidence of a {defect} → defective ({q1}); type {defect} ({q2}); category {group} ({q3}); "
    "visible intervals {iv}.",
)
_THINK_CLEAN = (
    "No segment shows a defect, so Q1 is {q1} and Q2 is good ({q2}). The object is a {group} (Q3 {q3}). "
    "Nothing is visible, so Q4 is [].",
    "The surface stays regular the whole time: no visible defect ({q1}), type good ({q2}). It is a "
    "{group}, option {q3}; the visible-time list is empty.",
    "I see no anomaly in any segment → {q1}; good → {q2}; category {group} → {q3}; Q4 [].",
)


@dataclass
class TemplateTeacher:
    """Deterministic per (seed, clip_id), varied phrasing, no model. Always agrees with the GT."""
    seed: int = 0
    name: str = "template"

    def write(self, rec: dict[str, Any]) -> str:
        gt = ground_truth(rec)
        rng = random.Random(derive_seed(self.seed, rec["clip_id"], "trace"))
        dur = format_seconds(gt.duration)
        obj, mat, env = _words(rec.get("group")), _words(rec.get("material")), _words(rec.get("environment"))
        visible = bool(gt.intervals)
        defect = _words(rec.get("defect")) if visible else "good"
        glob = rng.choice(_GLOBAL).format(obj=obj, mat=mat, env=env, dur=dur)
        segs = []
        for a, b, vis in _spans(gt.intervals, gt.duration):
            tmpl = rng.choice(_SEG_DEFECT if vis else _SEG_CLEAN)
            segs.append(tmpl.format(a=format_seconds(a), b=format_seconds(b), defect=defect))
        iv = format_intervals(gt.intervals)
        kw = dict(defect=defect, n=len(gt.intervals), q1=gt.q1, q2=gt.q2, q3=gt.q3, group=obj, iv=iv)
        think = rng.choice(_THINK_DEFECT if visible else _THINK_CLEAN).format(**kw)
        return format_structured(glob, " ".join(segs), think, format_answer(gt.q1, gt.q2, gt.q3, iv))


TEACHER_SYSTEM = (
    "You write training traces for a video inspection model. You are shown frames of a short clip, each "
    "with its time in seconds, and the clip's ground truth. Describe what the frames actually show: the "
    "object, its surface, and, segment by segment with times, where a defect is or is not visible. Then "
    "reason to the given answers. Output exactly: <global_perception>…</global_perception>"
    "<segment_perception>…</segment_perception><think>…</think><answer><q1>LETTER</q1><q2>LETTER</q2>"
    "<q3>LETTER</q3><q4>[[start, end], …]</q4></answer> and nothing else. Answer Q1–Q3 with the option "
    "letter only. Never mention that you were given the answers.")


def ground_truth_facts(rec: dict[str, Any]) -> dict[str, Any]:
    """What the teacher is told about a clip besides its frames: scene facts, questions, answers."""
    gt = ground_truth(rec)
    return {
        "object_group": rec.get("group"), "object_category": rec.get("category"),
        "material": rec.get("material"), "environment": rec.get("environment"),
        "defect": rec.get("defect") if gt.intervals else None, "clip_duration_s": gt.duration,
        "visible_intervals_s": gt.intervals,
        "questions": {q: {"question": rec[q].get("question"), "options": rec[q].get("options")}
                      for q in ("q1", "q2", "q3")} | {"q4": {"question": rec["q4"].get("question")}},
        "answers": {"q1": gt.q1, "q2": gt.q2, "q3": gt.q3, "q4": format_intervals(gt.intervals)},
    }


def jpeg_data_url(image: Any, quality: int = 85) -> str:
    """A PIL image as a ``data:image/jpeg;base64,…`` URL (OpenAI ``image_url`` content part)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def teacher_messages(rec: dict[str, Any], frames: list[Any], timestamps: list[float],
                     quality: int = 85) -> list[dict[str, Any]]:
    """Chat messages for one clip: the sampled frames as ``image_url`` parts, each preceded by its
    time (``t = 0.40 s``), then the ground truth as JSON."""
    if len(frames) != len(timestamps):
        raise ValueError(f"{len(frames)} frames but {len(timestamps)} timestamps")
    content: list[dict[str, Any]] = [{"type": "text", "text": f"{len(frames)} frames of the clip, in order:"}]
    for img, t in zip(frames, timestamps):
        content.append({"type": "text", "text": f"t = {format_seconds(t)} s"})
        content.append({"type": "image_url", "image_url": {"url": jpeg_data_url(img, quality)}})
    content.append({"type": "text", "text": "Ground truth for the clip:\n" + json.dumps(ground_truth_facts(rec), indent=1)})
    return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": content}]


@dataclass
class OpenAITeacher:
    """Any OpenAI-compatible ``/chat/completions`` endpoint with vision input (vLLM, commercial APIs).

    It *looks* at the clip: ``num_frames`` uniform frames (PyAV, real timestamps) of
    ``<data_root>/<rec["video"]>`` go into the request as images, with the ground truth, so the
    perception sections can describe the video rather than the metadata.
    """
    base_url: str
    model: str
    data_root: Optional[Path] = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    timeout_s: float = 120.0
    retries: int = 3
    num_frames: int = 8
    frame_size: tuple[int, int] = (448, 256)
    jpeg_quality: int = 85
    name: str = "openai"

    def messages(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        """The request messages for one record (decodes its clip)."""
        from .video import decode_clip

        if self.data_root is None:
            raise ValueError("OpenAITeacher needs data_root to read the clips")
        clip = decode_clip(Path(self.data_root) / rec["video"], self.num_frames, tuple(self.frame_size))
        return teacher_messages(rec, clip.frames, clip.timestamps, self.jpeg_quality)

    def write(self, rec: dict[str, Any]) -> str:
        body = json.dumps({"model": self.model, "messages": self.messages(rec),
                           "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                return str(payload["choices"][0]["message"]["content"])
            except (urllib.error.URLError, TimeoutError, KeyError, IndexError, json.JSONDecodeError) as e:
                last = e
                if attempt < self.retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise RuntimeError(f"teacher {url} failed for {rec['clip_id']} after {self.retries + 1} tries: {last}")


def make_teacher(cfg: TeacherConfig, seed: int, data_root: Optional[Path] = None) -> Teacher:
    """The teacher of a validated ``teacher`` section (:class:`config.TeacherConfig`, whose rules
    already hold: an openai teacher has ``base_url`` and ``model``, its frames are multiples of 32)."""
    if cfg.kind == "template":
        return TemplateTeacher(seed=seed)
    if cfg.kind == "openai":
        if not cfg.base_url or not cfg.model:  # TeacherConfig's rule; only an unvalidated config gets here
            raise ValueError("teacher: kind openai needs base_url and model")
        w, h = cfg.frame_size
        return OpenAITeacher(base_url=cfg.base_url, model=cfg.model, data_root=data_root,
                             api_key_env=cfg.api_key_env, temperature=cfg.temperature, timeout_s=cfg.timeout_s,
                             retries=cfg.retries, num_frames=cfg.num_frames, frame_size=(w, h),
                             jpeg_quality=cfg.jpeg_quality)
    raise ValueError(f"unknown teacher.kind {cfg.kind!r} (template | openai)")
