"""The runner interface: QA records in, raw text responses out (parsed later by the grammar)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..prompts import Prompt

PromptFn = Callable[[dict[str, Any]], Prompt]


@dataclass
class Prediction:
    """One clip's raw response; ``error`` is set (and ``response`` empty) when the call failed."""
    clip_id: str
    response: str
    usage: dict[str, int] = field(default_factory=dict)
    error: Optional[str] = None
    cached: bool = False


class Runner:
    """Base class. ``needs_prompt`` runners receive a :class:`Prompt` per record (frames decoded)."""
    name: str = "runner"
    needs_prompt: bool = False

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Run statistics for the report (requests, tokens, cost); empty for baselines."""
        return {}
