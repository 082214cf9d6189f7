"""The answer grammar: how Q1–Q4 are asked, written and parsed (DESIGN §4).

This module is the one place that knows the wording and the answer syntax. The QA builder, the
evaluator and the trainer's rewards all import it. It depends on the standard library only so that
the trainer's environment can use it without Blender.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

Q1_TEXT = "Is there any defect in the object?"
Q2_TEXT = "What is the defect type of this clip?"
Q3_TEXT = "What is the object category of this clip?"
Q4_TEXT = "When is the anomaly visible? Return a list of [start_sec, end_sec]."
Q1_OPTIONS = {"A": "Yes", "B": "No"}
LETTERS = "ABCDEFG"
TAGS = ("global_perception", "segment_perception", "think", "answer")


def format_seconds(x: float) -> str:
    return f"{x:.2f}"


def format_intervals(intervals: Sequence[Sequence[float]]) -> str:
    """``[[0.40, 1.17], [1.50, 2.00]]``; no visible defect is ``[]``."""
    return "[" + ", ".join(f"[{format_seconds(a)}, {format_seconds(b)}]" for a, b in intervals) + "]"


_NUM = r"[-+]?\d+(?:\.\d+)?"
_PAIR_RE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_DASH_RE = re.compile(rf"({_NUM})\s*s?\s*(?:-|–|to)\s*({_NUM})\s*s?")


def parse_intervals(text: str) -> Optional[list[list[float]]]:
    """Parse a Q4 answer into ``[[a, b], ...]`` (seconds). ``None`` if it cannot be read.

    Accepts ``[[a, b], ...]``, a bare ``[a, b]``, ``a-b`` / ``a to b``, and ``[]`` / ``none``
    for no visible defect. Inverted or negative pairs make the answer unparseable.
    """
    s = text.strip()
    if s.lower() in ("[]", "none", "no", "null", "[[]]", ""):
        return [] if s else None
    try:
        val = json.loads(s)
        pairs = [val] if (isinstance(val, list) and len(val) == 2 and all(isinstance(x, (int, float)) for x in val)) else val
        if isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs):
            out = [[float(a), float(b)] for a, b in pairs]
            return out if all(0 <= a <= b for a, b in out) else None
    except (json.JSONDecodeError, TypeError, ValueError):
        pass
    found = _PAIR_RE.findall(s) or _DASH_RE.findall(s)
    if not found:
        return None
    out = [[float(a), float(b)] for a, b in found]
    return out if all(0 <= a <= b for a, b in out) else None


def format_answer(q1: str, q2: str, q3: str, q4: str) -> str:
    """``<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[[0.40, 1.17]]</q4></answer>``."""
    return f"<answer><q1>{q1}</q1><q2>{q2}</q2><q3>{q3}</q3><q4>{q4}</q4></answer>"


def format_structured(global_perception: str, segment_perception: str, think: str, answer: str) -> str:
    """The structured response: perception sections, reasoning, then the answer block."""
    return (f"<global_perception>{global_perception}</global_perception>"
            f"<segment_perception>{segment_perception}</segment_perception>"
            f"<think>{think}</think>{answer}")


def last_tag(text: str, tag: str) -> Optional[str]:
    """Content of the last ``<tag>…</tag>`` (models sometimes repeat a block), else ``None``."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S | re.I)
    return found[-1].strip() if found else None


@dataclass
class ParsedAnswer:
    """One response parsed; a field is ``None`` when that task's answer is unparseable."""
    q1: Optional[str] = None
    q2: Optional[str] = None
    q3: Optional[str] = None
    q4: Optional[list[list[float]]] = None
    errors: list[str] = field(default_factory=list)


def parse_letter(text: Optional[str], options: dict[str, str]) -> Optional[str]:
    """A letter from ``options``: ``"C"``, ``"C: crack"``, ``"(C)"``; or the exact option text."""
    if text is None:
        return None
    t = text.strip()
    m = re.match(r"^\(?([A-Ga-g])\)?(?:[\s:.)\-]|$)", t)
    if m and m.group(1).upper() in options:
        return m.group(1).upper()
    for letter, opt in options.items():
        if t.lower() == opt.lower():
            return letter
    return None


def parse_response(text: str, q2_options: dict[str, str], q3_options: dict[str, str]) -> ParsedAnswer:
    """Parse a model response in the benchmark's tag format (last ``<answer>`` block wins)."""
    out = ParsedAnswer()
    block = last_tag(text, "answer")
    if block is None:
        out.errors.append("no <answer> block")
        block = text
    for q, opts in (("q1", Q1_OPTIONS), ("q2", q2_options), ("q3", q3_options)):
        val = parse_letter(last_tag(block, q), opts)
        setattr(out, q, val)
        if val is None:
            out.errors.append(f"{q} unparseable")
    raw4 = last_tag(block, "q4")
    out.q4 = parse_intervals(raw4) if raw4 is not None else None
    if out.q4 is None:
        out.errors.append("q4 unparseable")
    return out
