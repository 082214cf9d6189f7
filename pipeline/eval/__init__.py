"""eval: run a model (or a baseline) on the QA files, parse its answers with :mod:`pipeline.grammar`
and score them (docs/architecture.md, Metrics). Host-side only; never imports bpy."""

from typing import Any, Sequence


def score_predictions(records: Sequence[dict[str, Any]], responses: Sequence[str]) -> dict[str, Any]:
    """Score raw model responses against QA records with the benchmark's parser and metrics.

    The one entry point other packages (the trainer's final evaluation) use, so every model is scored
    by the same code: ``{"overall": {...}, "parsing": {...}, "breakdown": {...}}`` in percent."""
    from .metrics import evaluate_scores, score_response

    if len(records) != len(responses):
        raise ValueError(f"{len(records)} records but {len(responses)} responses")
    scores = [score_response(r, t)[1] for r, t in zip(records, responses)]
    return evaluate_scores(records, scores)
