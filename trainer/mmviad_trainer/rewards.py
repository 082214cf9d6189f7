"""VISTA-GRPO rewards as plain functions with TRL's reward signature.

Each reward is ``f(completions, solution, **kwargs) -> list[float]``: ``completions`` as TRL passes
them (strings, or ``[{"role": "assistant", "content": …}]`` for conversational prompts), and
``solution`` the dataset column holding :meth:`GroundTruth.to_json`. Answers are parsed with
:func:`pipeline.grammar.parse_response`, the project's one answer grammar. Default constants are
justified in ``trainer/README.md`` ("Reward constants").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable, Optional, Sequence

from pipeline.grammar import ParsedAnswer, last_tag, parse_intervals, parse_response

from .records import GroundTruth
from .structure import STRUCTURE_RE, completion_text

RewardFn = Callable[..., list[float]]


@dataclass(frozen=True)
class TemporalConstants:
    """Constants of the visibility-aware temporal (Q4) reward."""
    empty_reward: float = 1.0           # M=0, N=0: correctly says nothing is visible
    miss_penalty: float = -0.5          # M=0, N>0: a visible defect missed
    hallucination_penalty: float = -0.5  # M>0, N=0: an interval on a clip with nothing visible
    unparseable_penalty: float = -1.0   # no readable Q4 answer at all
    discovery_bonus: float = 0.2        # × share of GT intervals matched at IoU >= discovery_iou
    discovery_iou: float = 0.5
    count_penalty: float = 0.1          # per predicted interval beyond the number of GT intervals


def _gt(solution: Any) -> GroundTruth:
    return solution if isinstance(solution, GroundTruth) else GroundTruth.from_json(solution)


def _parse(completion: Any, gt: GroundTruth) -> tuple[str, ParsedAnswer]:
    text = completion_text(completion)
    return text, parse_response(text, gt.q2_options, gt.q3_options)


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1 when all four sections are present once, non-empty and in order with q1–q4 inside
    ``<answer>``; 0 otherwise."""
    return [1.0 if STRUCTURE_RE.match(completion_text(c)) else 0.0 for c in completions]


def answer_reward(completions: Sequence[Any], solution: Sequence[Any], **kwargs: Any) -> list[float]:
    """0.5 for a correct Q1 (defect yes/no) plus 0.5 for a correct Q3 (object category)."""
    out = []
    for c, s in zip(completions, solution, strict=True):
        gt = _gt(s)
        _, p = _parse(c, gt)
        out.append(0.5 * (p.q1 == gt.q1) + 0.5 * (p.q3 == gt.q3))
    return out


def defect_reward(completions: Sequence[Any], solution: Sequence[Any], **kwargs: Any) -> list[float]:
    """Semantic-gated Q2: 1 only when Q2 (defect type) *and* Q1 are both correct, else 0."""
    out = []
    for c, s in zip(completions, solution, strict=True):
        gt = _gt(s)
        _, p = _parse(c, gt)
        out.append(1.0 if (p.q1 == gt.q1 and p.q2 == gt.q2) else 0.0)
    return out


def interval_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """1-D IoU of two ``[start, end]`` intervals (0 when the union is empty)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else (1.0 if a == b else 0.0)


def temporal_score(pred: Optional[list[list[float]]], gt: list[list[float]],
                   k: TemporalConstants = TemporalConstants()) -> float:
    """The visibility-aware Q4 reward for one parsed prediction (``None`` = unparseable)."""
    if pred is None:
        return k.unparseable_penalty
    m, n = len(pred), len(gt)
    if m == 0 and n == 0:
        return k.empty_reward
    if m == 0:
        return k.miss_penalty
    if n == 0:
        return k.hallucination_penalty
    best = max(interval_iou(p, g) for p in pred for g in gt)
    found = sum(1 for g in gt if any(interval_iou(p, g) >= k.discovery_iou for p in pred)) / n
    value = best + k.discovery_bonus * found - k.count_penalty * max(0, m - n)
    return max(value, k.hallucination_penalty)


def temporal_reward(completions: Sequence[Any], solution: Sequence[Any],
                    constants: TemporalConstants = TemporalConstants(), **kwargs: Any) -> list[float]:
    """Visibility-aware Q4 reward: see :func:`temporal_score`."""
    out = []
    for c, s in zip(completions, solution, strict=True):
        gt = _gt(s)
        text = completion_text(c)
        block = last_tag(text, "answer")
        raw = last_tag(block if block is not None else text, "q4")
        out.append(temporal_score(parse_intervals(raw) if raw is not None else None, gt.intervals, constants))
    return out


REWARDS: dict[str, RewardFn] = {
    "format": format_reward,
    "answer": answer_reward,
    "defect": defect_reward,
    "temporal": temporal_reward,
}


def build_rewards(names: Sequence[str], temporal: Optional[dict[str, float]] = None) -> list[RewardFn]:
    """Reward functions by name, in order; ``temporal`` overrides :class:`TemporalConstants` fields.

    Each returned function carries ``__name__`` = its registry name so TRL logs
    ``rewards/<name>/mean``.
    """
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    fields = set(asdict(TemporalConstants()))
    bad = set(temporal or {}) - fields
    if bad:
        raise ValueError(f"unknown temporal reward constant(s) {sorted(bad)}; known: {sorted(fields)}")
    out = []
    for n in names:
        fn = REWARDS[n]
        if n == "temporal" and temporal:
            fn = partial(temporal_reward, constants=TemporalConstants(**temporal))
            fn.__name__ = "temporal"  # type: ignore[attr-defined]
        out.append(fn)
    return out


def total_reward(completion: Any, solution: Any, names: Sequence[str], weights: Sequence[float],
                 temporal: Optional[dict[str, float]] = None) -> float:
    """Weighted sum of the named rewards for one completion (used by contrastive sampling)."""
    fns = build_rewards(names, temporal)
    return sum(w * f([completion], solution=[solution])[0] for f, w in zip(fns, weights, strict=True))
