"""PS-SFT trace teachers: a seeded template teacher (no model) and an OpenAI-compatible LLM teacher.

A teacher turns one QA record (object, material, environment, defect, visible intervals and the
four questions with their answers) into a perception-structured trace::

    <global_perception>…</global_perception><segment_perception>…</segment_perception>
    <think>…</think><answer><q1>…</q1><q2>…</q2><q3>…</q3><q4>…</q4></answer>

Every trace, whichever teacher wrote it, then goes through :func:`traces.check_trace`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from pipeline.grammar import format_answer, format_intervals, format_seconds, format_structured

from .records import ground_truth


def derive_seed(seed: int, key: str, purpose: str) -> int:
    """``sha256(f"{seed}/{key}/{purpose}")`` as a 63-bit int (never Python's salted ``hash()``)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{key}/{purpose}".encode()).digest(), "big") >> 193


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


def teacher_prompt(rec: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages asking an LLM to write the trace for one clip from its ground truth."""
    gt = ground_truth(rec)
    facts = {
        "object_group": rec.get("group"), "object_category": rec.get("category"),
        "material": rec.get("material"), "environment": rec.get("environment"),
        "defect": rec.get("defect") if gt.intervals else None, "clip_duration_s": gt.duration,
        "visible_intervals_s": gt.intervals,
        "questions": {q: {"question": rec[q].get("question"), "options": rec[q].get("options")}
                      for q in ("q1", "q2", "q3")} | {"q4": {"question": rec["q4"].get("question")}},
        "answers": {"q1": gt.q1, "q2": gt.q2, "q3": gt.q3, "q4": format_intervals(gt.intervals)},
    }
    system = ("You write training traces for a video inspection model. Describe what a viewer of the clip "
              "would perceive, then reason to the given answers. Output exactly: <global_perception>…"
              "</global_perception><segment_perception>…</segment_perception><think>…</think><answer><q1>"
              "LETTER</q1><q2>LETTER</q2><q3>LETTER</q3><q4>[[start, end], …]</q4></answer> and nothing else. "
              "Never mention that you were given the answers.")
    return [{"role": "system", "content": system},
            {"role": "user", "content": "Ground truth for the clip:\n" + json.dumps(facts, indent=1)}]


@dataclass
class OpenAITeacher:
    """Any OpenAI-compatible ``/chat/completions`` endpoint (vLLM, commercial APIs)."""
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    timeout_s: float = 60.0
    retries: int = 3
    name: str = "openai"

    def write(self, rec: dict[str, Any]) -> str:
        body = json.dumps({"model": self.model, "messages": teacher_prompt(rec),
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


def make_teacher(cfg: dict[str, Any], seed: int) -> Teacher:
    """``{"kind": "template"}`` or ``{"kind": "openai", "base_url": …, "model": …}``."""
    kind = cfg.get("kind", "template")
    if kind == "template":
        return TemplateTeacher(seed=seed)
    if kind == "openai":
        missing = [k for k in ("base_url", "model") if not cfg.get(k)]
        if missing:
            raise ValueError(f"teacher.kind=openai needs {missing}")
        return OpenAITeacher(base_url=cfg["base_url"], model=cfg["model"],
                             api_key_env=cfg.get("api_key_env", "OPENAI_API_KEY"),
                             temperature=float(cfg.get("temperature", 0.7)))
    raise ValueError(f"unknown teacher.kind {kind!r} (template | openai)")
