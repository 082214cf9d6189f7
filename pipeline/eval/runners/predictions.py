"""Score answers written elsewhere: a predictions JSONL (``{"clip_id", "response"}`` per line, as
``mmviad eval``, the trainer or the lmms-eval task write it) goes through the same grammar and
metrics as a live model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from ..inputs import load_predictions
from .base import Prediction, PromptFn, Runner


class PredictionsRunner(Runner):
    name = "predictions"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        answers = load_predictions(self.path, [r["clip_id"] for r in records])
        return [Prediction(r["clip_id"], answers[r["clip_id"]]) for r in records]

    def summary(self) -> dict[str, Any]:
        return {"predictions": str(self.path)}
