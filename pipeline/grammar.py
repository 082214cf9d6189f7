"""The answer grammar: how Q1–Q4 are asked, written and parsed (DESIGN §4).

This module is the one place that knows the wording and the answer syntax. The QA builder, the
evaluator and the trainer's rewards all import it. It depends on the standard library only so that
the trainer's environment can use it without Blender.
"""

from __future__ import annotations

import difflib
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
_UNUM = r"\d+(?:\.\d+)?"
_PAIR_RE = re.compile(rf"[\[(]\s*({_NUM})\s*s?\s*,\s*({_NUM})\s*s?\s*[\])]")
_SEC = r"\s*(?:s|sec|secs|second|seconds)?\.?"
_RANGE_RE = re.compile(
    rf"(?:from\s+|between\s+)?(?<![\d.])({_UNUM}){_SEC}\s*(?:-|–|—|~|to|until|and)\s*({_UNUM}){_SEC}(?![\d.])",
    flags=re.I)
_EMPTY_RE = re.compile(r"^\W*(?:\[\s*\[?\s*\]?\s*\]|none|no|null|never|n/?a|nothing|not visible|no interval|"
                       r"no intervals|no defect|no anomaly|empty)\W*$", flags=re.I)
_EMPTY_WORDS_RE = re.compile(r"\[\s*\]|\b(?:none|never|not visible|no visible|nothing visible|null)\b", flags=re.I)


def _checked(pairs: list[tuple[str, str]] | list[list[float]]) -> Optional[list[list[float]]]:
    out = [[float(a), float(b)] for a, b in pairs]
    return out if all(0 <= a <= b for a, b in out) else None


def parse_intervals(text: Optional[str]) -> Optional[list[list[float]]]:
    """Parse a Q4 answer into ``[[a, b], ...]`` (seconds). ``None`` if it cannot be read.

    Accepted, in this order: an empty answer marker (``[]``, ``[[]]``, ``none``, ``no``, ``never``…)
    → ``[]``; JSON ``[[a, b], ...]`` or a bare ``[a, b]``; every ``[a, b]`` / ``(a, b)`` pair in
    free text; every range written ``a-b``, ``a – b``, ``a to b``, ``from a s to b s``,
    ``between a and b``; finally a sentence with no numbers that says ``none`` / ``[]`` → ``[]``.
    Inverted (``a > b``) or negative pairs make the answer unparseable, as does anything else.
    """
    if text is None:
        return None
    s = text.strip().strip("`").strip()
    if s.lower().startswith("json"):
        s = s[4:].strip()
    if not s:
        return None
    if _EMPTY_RE.match(s):
        return []
    try:
        val = json.loads(s)
        if isinstance(val, list) and len(val) == 2 and all(isinstance(x, (int, float)) for x in val):
            val = [val]
        if isinstance(val, list) and all(isinstance(p, list) and len(p) == 2
                                         and all(isinstance(x, (int, float)) for x in p) for p in val):
            return _checked(val)
        if val == [[]]:
            return []
    except (json.JSONDecodeError, TypeError, ValueError):
        pass
    found = _PAIR_RE.findall(s) or _RANGE_RE.findall(s)
    if found:
        return _checked(found)
    if not re.search(r"\d", s) and _EMPTY_WORDS_RE.search(s):
        return []
    return None


def format_answer(q1: str, q2: str, q3: str, q4: str) -> str:
    """``<answer><q1>A</q1><q2>C</q2><q3>B</q3><q4>[[0.40, 1.17]]</q4></answer>``."""
    return f"<answer><q1>{q1}</q1><q2>{q2}</q2><q3>{q3}</q3><q4>{q4}</q4></answer>"


def format_structured(global_perception: str, segment_perception: str, think: str, answer: str) -> str:
    """The structured response: perception sections, reasoning, then the answer block."""
    return (f"<global_perception>{global_perception}</global_perception>"
            f"<segment_perception>{segment_perception}</segment_perception>"
            f"<think>{think}</think>{answer}")


def last_tag(text: str, tag: str) -> Optional[str]:
    """Content of the last ``<tag>…</tag>`` (models sometimes repeat a block).

    When the closing tag is missing, the text after the last opening tag up to the next tag (or the
    end) is used; ``None`` when the tag does not occur at all."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S | re.I)
    closed = found[-1].strip() if found else None
    opens = [m.end() for m in re.finditer(rf"<{tag}>", text, flags=re.I)]
    if not opens:
        return closed
    last_open = opens[-1]
    if closed is not None and re.search(rf"</{tag}>", text[last_open:], flags=re.I):
        return closed
    rest = text[last_open:]
    if tag == "answer":  # an unclosed answer block runs to the end
        return rest.strip()
    return re.split(r"<[/a-zA-Z_0-9]+>", rest, maxsplit=1)[0].strip()


@dataclass
class ParsedAnswer:
    """One response parsed; a field is ``None`` when that task's answer is unparseable.

    ``by_text`` names the tasks (``"q1"``…``"q3"``) whose letter was recovered from option text
    rather than written as a letter (MMAD's fallback, reported separately)."""
    q1: Optional[str] = None
    q2: Optional[str] = None
    q3: Optional[str] = None
    q4: Optional[list[list[float]]] = None
    errors: list[str] = field(default_factory=list)
    by_text: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"q1": self.q1, "q2": self.q2, "q3": self.q3, "q4": self.q4, "errors": list(self.errors),
                "by_text": list(self.by_text)}


_STRIP = " \t\r\n*_`'\"“”"
# A letter that is clearly an answer: "C", "(C)", "C:", "C.", "C) crack", "option C", "answer is C".
_LEAD_LETTER_RE = re.compile(r"^\(?\[?([A-Ga-g])\]?\)?(?:\s*[:.)\-–]|\s+|$)")
_CUED_LETTER_RE = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*[:\-]?\s*\(?\*{0,2}([A-G])\b|\(([A-G])\)|\b([A-G])\s*[:)]\s*\w")
_BARE_LETTER_RE = re.compile(r"^([A-G])$")


def _letter_in(m: "re.Match[str]") -> str:
    return next(g for g in m.groups() if g).upper()


def parse_choice(text: Optional[str], options: dict[str, str]) -> tuple[Optional[str], Optional[str]]:
    """A letter from ``options`` and how it was found: ``("C", "letter")``, ``("C", "text")`` or
    ``(None, None)``.

    Letters: ``C``, ``(C)``, ``C: crack``, ``**C**``, ``Answer: C``, ``option C`` (the last cue in
    the text wins). Without a letter, the option text decides: an exact match, else the option named
    last in the text (word match), else the closest option by ``difflib`` with a 0.6 cutoff (MMAD
    uses cutoff 0, which always answers something; we refuse weak matches)."""
    if text is None:
        return None, None
    t = text.strip(_STRIP)
    if not t:
        return None, None
    m = _LEAD_LETTER_RE.match(t)
    if m and m.group(1).upper() in options and (m.group(1).isupper() or len(t) <= 3):
        return m.group(1).upper(), "letter"
    cued = [_letter_in(x) for x in _CUED_LETTER_RE.finditer(t)]
    cued = [c for c in cued if c in options]
    if cued:
        return cued[-1], "letter"
    low = t.lower().rstrip(".!")
    for letter, opt in options.items():
        if low == opt.lower():
            return letter, "text"
    last_pos, best = -1, None
    for letter, opt in options.items():
        for hit in re.finditer(rf"\b{re.escape(opt.lower())}\b", low):
            if hit.start() > last_pos:
                last_pos, best = hit.start(), letter
    if best is not None:
        return best, "text"
    close = difflib.get_close_matches(low, [o.lower() for o in options.values()], n=1, cutoff=0.6)
    if close:
        return next(k for k, v in options.items() if v.lower() == close[0]), "text"
    return None, None


def parse_letter(text: Optional[str], options: dict[str, str]) -> Optional[str]:
    """The letter of :func:`parse_choice` (letter or option text), or ``None``."""
    return parse_choice(text, options)[0]


_LOOSE_Q_RE = r"(?:^|\n|\s)\**\s*(?:q|question\s*)?{n}\s*\**\s*[:.)=\-]\s*(.+?)\s*(?=(?:\n|\s)\**\s*(?:q|question\s*)?[1-4]\s*\**\s*[:.)=\-]|$)"


def _task_text(block: str, q: str) -> Optional[str]:
    """``<qN>…</qN>`` (the last one), else a ``qN: …`` / ``N. …`` line in the block."""
    tagged = last_tag(block, q)
    if tagged is not None:
        return tagged
    pat = re.compile(_LOOSE_Q_RE.format(n=q[1]), flags=re.I | re.S)
    found = pat.findall(block)
    return found[-1].strip() if found else None


def parse_response(text: str, q2_options: dict[str, str], q3_options: dict[str, str]) -> ParsedAnswer:
    """Parse a model response in the benchmark's tag format.

    The last ``<answer>`` block wins (an unclosed one runs to the end; without one the whole
    response is searched); inside it the last ``<qN>`` tag wins, or a ``qN: …`` line when tags are
    missing. Each task is parsed independently, so one bad answer does not void the others."""
    out = ParsedAnswer()
    text = text or ""
    block = last_tag(text, "answer")
    if block is None:
        out.errors.append("no <answer> block")
        block = text
    for q, opts in (("q1", Q1_OPTIONS), ("q2", q2_options), ("q3", q3_options)):
        val, how = parse_choice(_task_text(block, q), opts)
        setattr(out, q, val)
        if val is None:
            out.errors.append(f"{q} unparseable")
        elif how == "text":
            out.by_text.append(q)
    raw4 = _task_text(block, "q4")
    out.q4 = parse_intervals(raw4)
    if out.q4 is None:
        out.errors.append("q4 unparseable")
    return out
