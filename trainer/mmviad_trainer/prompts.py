"""Prompts: the four questions with their options, the structured response format and, optionally,
domain knowledge about the defect types (MMR-AD style). Built lazily per row, never stored in Arrow
(mixed content blocks get their struct fields unified there: trainer.md §6).
"""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = ("You are an industrial inspection assistant. You watch a short video of one object "
                 "filmed by an orbiting camera and answer questions about surface defects.")

# Short, category-independent descriptions of the six defect types (pipeline.ids.DEFECT_TYPES).
DEFECT_KNOWLEDGE: dict[str, str] = {
    "crack": "a thin dark line or fracture running across the surface",
    "scratch": "a shallow, narrow mark scraped into the surface",
    "concavity": "a local dent where the surface is pushed inwards",
    "bulge": "a local bump where the surface swells outwards",
    "broken": "a missing chunk with a jagged edge",
    "hole": "an opening through the surface",
    "good": "no defect: the surface is regular everywhere",
}

RESPONSE_FORMAT = ("Answer in exactly this format: <global_perception>what the whole clip shows"
                   "</global_perception><segment_perception>what is seen in each time segment, with seconds"
                   "</segment_perception><think>your reasoning</think><answer><q1>LETTER</q1><q2>LETTER</q2>"
                   "<q3>LETTER</q3><q4>[[start_sec, end_sec], ...] or []</q4></answer>")


def _options(opts: dict[str, str]) -> str:
    return " ".join(f"{k}: {v}" for k, v in opts.items())


def question_text(rec: dict[str, Any], domain_knowledge: bool = True) -> str:
    """The user turn's text for one QA record."""
    lines = [f"The clip lasts {rec['duration']:.2f} seconds."]
    for i, q in enumerate(("q1", "q2", "q3"), 1):
        lines.append(f"Q{i}. {rec[q]['question']} Options: {_options(rec[q]['options'])}")
    lines.append(f"Q4. {rec['q4']['question']}")
    if domain_knowledge:
        known = [v for v in rec["q2"]["options"].values() if v in DEFECT_KNOWLEDGE]
        lines.append("Defect types: " + "; ".join(f"{d} = {DEFECT_KNOWLEDGE[d]}" for d in known) + ".")
    lines.append(RESPONSE_FORMAT)
    return "\n".join(lines)


def user_message(frames: Any, rec: dict[str, Any], domain_knowledge: bool = True) -> dict[str, Any]:
    """``{"role": "user", "content": [video, text]}`` with the frames inline."""
    return {"role": "user", "content": [{"type": "video", "video": frames},
                                        {"type": "text", "text": question_text(rec, domain_knowledge)}]}


def prompt_messages(frames: Any, rec: dict[str, Any], domain_knowledge: bool = True) -> list[dict[str, Any]]:
    """System + user turns (the GRPO prompt; SFT appends the assistant trace)."""
    return [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            user_message(frames, rec, domain_knowledge)]
