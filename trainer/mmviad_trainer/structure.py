"""The response structure shared by the trace filter and the format reward.

A well-formed response is exactly::

    <global_perception>…</global_perception><segment_perception>…</segment_perception>
    <think>…</think><answer><q1>…</q1><q2>…</q2><q3>…</q3><q4>…</q4></answer>

(whitespace between blocks allowed, every section non-empty, nothing before or after). Parsing
the *answer* is not done here: that is :func:`pipeline.grammar.parse_response`, the project's
single answer grammar.
"""

from __future__ import annotations

import re
from typing import Optional

from pipeline.grammar import TAGS

_SECTION = r"<{t}>(?P<{t}>(?:(?!<{t}>).)*?\S(?:(?!<{t}>).)*?)</{t}>"
_ANSWER_INNER = r"\s*<q1>[^<]*</q1>\s*<q2>[^<]*</q2>\s*<q3>[^<]*</q3>\s*<q4>[^<]*</q4>\s*"
STRUCTURE_RE = re.compile(
    r"^\s*" + r"\s*".join(_SECTION.format(t=t) for t in TAGS[:3])
    + r"\s*<answer>(?P<answer>" + _ANSWER_INNER + r")</answer>\s*$",
    flags=re.S,
)


def structure_problem(text: str) -> Optional[str]:
    """``None`` when ``text`` has the four sections, each once, non-empty, in order; else why not."""
    if STRUCTURE_RE.match(text):
        return None
    positions = []
    for tag in TAGS:
        opens = len(re.findall(rf"<{tag}>", text))
        closes = len(re.findall(rf"</{tag}>", text))
        if opens == 0 or closes == 0:
            return f"missing section <{tag}>"
        if opens != 1 or closes != 1:
            return f"section <{tag}> appears {max(opens, closes)} times"
        positions.append(text.index(f"<{tag}>"))
    if positions != sorted(positions):
        return "sections out of order"
    return "malformed structure (empty section, text outside the sections, or q1–q4 tags missing)"


def completion_text(completion: object) -> str:
    """The text of one TRL completion: a plain string or ``[{"role": "assistant", "content": …}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks
            return "".join(b.get("text", "") for b in content if isinstance(b, dict))
        return str(content)
    return str(completion)
