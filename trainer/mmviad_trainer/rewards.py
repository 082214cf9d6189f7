"""VISTA-GRPO rewards (MMVIAD, section 3.2 and the reward figure), as plain functions.

Every reward has TRL's signature ``f(completions, solution, **kwargs) -> list[float]``: ``completions``
as TRL passes them (strings, or ``[{"role": "assistant", "content": …}]`` for conversational
prompts) and ``solution`` the dataset column holding :meth:`GroundTruth.to_json`. Every reward reads
and scores a completion with :func:`pipeline.eval.metrics.score_response`, the benchmark's own
parse-and-score step: the answer and defect rewards are the evaluator's per-clip Q1/Q3 and (gated)
Q2 results, and the IoU inside the temporal reward is the evaluator's per-clip Q4 IoU (clipped to
the clip's duration), so a reward and the benchmark's metric never read or score an answer
differently (``trainer/tests/test_rewards.py`` checks it).

The paper's four rewards, as its reward figure states them:

* format      ``R_fmt = 1`` for a valid ``<global_perception><segment_perception><think><answer>``
  structure, else 0;
* answer      ``R_ans = R_ano + R_obj``: Q1 (anomaly detection) correct 1 / wrong 0, plus Q3 (object
  classification) correct 1 / wrong 0;
* defect      ``R_sg = 1`` if the defect type (Q2) is correct *and* Q1 is correct, else 0 (the gate);
* temporal    visibility-aware, with M predicted and N ground-truth intervals: (i) M=0, N=0 reward 1;
  (ii) M=0, N>0 missed visible defect, penalty α_pen; (iii) M>0, N=0 hallucinated interval, penalty
  α_pen; (iv) M>0, N>0 interval match, a reward from the overlap, with a discovery bonus that
  gives feedback while boundaries are still poor and a count penalty on |M − N| (over- and
  under-segmentation).

The figure gives no value for α_pen and the text's constants for case (iv) are not published with
the code; ours are in :class:`TemporalConstants` and justified in ``trainer/README.md``. Two
switches reproduce the paper's reward ablations (Table 5): ``defect_gate=False`` (no gate) and
``TemporalConstants.mode="flat_iou"`` (plain IoU instead of the visibility-aware reward).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable, Optional, Sequence

from pipeline.eval.metrics import q4_iou, score_response
from pipeline.grammar import ParsedAnswer

from .records import GroundTruth
from .structure import STRUCTURE_RE, completion_text

RewardFn = Callable[..., list[float]]
TEMPORAL_MODES = ("visibility", "flat_iou")


@dataclass(frozen=True)
class TemporalConstants:
    """Constants of the Q4 reward (``grpo.temporal`` in the config overrides any field)."""
    mode: str = "visibility"          # "flat_iou": Table 5's ablation, IoU only, no visibility cases
    empty_reward: float = 1.0         # (i)  M=0, N=0 (the paper's value)
    alpha_pen: float = 0.5            # (ii) and (iii): reward −α_pen (one α_pen for both, as in the figure)
    unparseable_penalty: float = 1.0  # no readable Q4 at all: reward −1 (not a case of the paper's figure)
    discovery_weight: float = 0.3     # (iv) β: (1 − β)·IoU + β·(share of GT intervals overlapped at all)
    count_penalty: float = 0.1        # (iv) λ: minus λ·|M − N|
    # (iv) is floored at −α_pen: an attempt that overlaps nothing is never worse than a miss.


def _gt(solution: Any) -> GroundTruth:
    return solution if isinstance(solution, GroundTruth) else GroundTruth.from_json(solution)


def scored(completion: Any, solution: Any) -> tuple[ParsedAnswer, dict[str, Any]]:
    """One completion read and scored by the benchmark (:func:`pipeline.eval.metrics.score_response`)
    against one ``solution``: the parsed answer and the evaluator's per-clip scores."""
    return score_response(_gt(solution).as_record(), completion_text(completion))


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """Paper: "R_fmt = 1 if valid, 0 otherwise"; valid = the four sections
    ``<global_perception>``, ``<segment_perception>``, ``<think>``, ``<answer>``, each once, non-empty,
    in this order, with ``<q1>``…``<q4>`` inside ``<answer>`` and nothing around them.

    >>> ok = ("<global_perception>a vase</global_perception><segment_perception>0-2 s: a crack"
    ...       "</segment_perception><think>cracked</think><answer><q1>A</q1><q2>C</q2><q3>B</q3>"
    ...       "<q4>[[0.40, 1.20]]</q4></answer>")
    >>> format_reward([ok, ok.replace("<think>cracked</think>", ""), "A"])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if STRUCTURE_RE.match(completion_text(c)) else 0.0 for c in completions]


def answer_reward(completions: Sequence[Any], solution: Sequence[Any], **kwargs: Any) -> list[float]:
    """Paper: "R_ans = R_ano + R_obj", each "correct: 1, wrong: 0" — Q1 (anomaly detection) plus
    Q3 (object classification), so 0, 1 or 2. An unparseable answer is wrong.

    >>> from pipeline.grammar import format_answer, format_structured
    >>> sol = GroundTruth("A", "C", "B", {"A": "hole", "C": "crack"}, {"A": "cup", "B": "vase"},
    ...                   [[0.4, 1.2]], 2.0).to_json()
    >>> resp = lambda q1, q3: format_structured("g", "s", "t", format_answer(q1, "C", q3, "[]"))
    >>> answer_reward([resp("A", "B"), resp("A", "A"), resp("B", "B"), resp("B", "A")], solution=[sol] * 4)
    [2.0, 1.0, 1.0, 0.0]
    """
    out = []
    for c, s in zip(completions, solution, strict=True):
        sc = scored(c, s)[1]
        out.append(float(sc["q1"]) + float(sc["q3"]))
    return out


def defect_reward(completions: Sequence[Any], solution: Sequence[Any], gate: bool = True,
                  **kwargs: Any) -> list[float]:
    """Paper (semantic-gated defect reward): "R_sg = 1 if defect correct and Q1 correct, 0 otherwise";
    a wrong Q1 closes the gate ("no reward"). ``gate=False`` is Table 5's "without the gate"
    ablation: 1 whenever Q2 is correct.

    >>> from pipeline.grammar import format_answer, format_structured
    >>> sol = GroundTruth("A", "C", "B", {"A": "hole", "C": "crack"}, {"A": "cup", "B": "vase"},
    ...                   [[0.4, 1.2]], 2.0).to_json()
    >>> resp = lambda q1, q2: format_structured("g", "s", "t", format_answer(q1, q2, "B", "[]"))
    >>> comps = [resp("A", "C"), resp("B", "C"), resp("A", "A")]
    >>> defect_reward(comps, solution=[sol] * 3)
    [1.0, 0.0, 0.0]
    >>> defect_reward(comps, solution=[sol] * 3, gate=False)
    [1.0, 1.0, 0.0]
    """
    out = []
    for c, s in zip(completions, solution, strict=True):
        sc = scored(c, s)[1]
        out.append(float(sc["q2_gated"] if gate else sc["q2"]))
    return out


def discovery_share(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]]) -> float:
    """Share of ground-truth intervals that some predicted interval overlaps at all (any positive
    overlap, however poor the boundaries); 0 when there is no ground-truth interval.

    >>> discovery_share([[0.0, 0.1]], [[0.05, 0.9], [1.3, 2.0]])
    0.5
    """
    if not gt:
        return 0.0
    hit = sum(1 for a, b in gt if any(min(b, d) - max(a, c) > 0 for c, d in pred))
    return hit / len(gt)


def temporal_score(pred: Optional[list[list[float]]], gt: list[list[float]],
                   k: TemporalConstants = TemporalConstants(), duration: float = math.inf) -> float:
    """The Q4 reward for one parsed prediction (``None`` = unparseable), M = ``len(pred)``,
    N = ``len(gt)``. Paper, visibility-aware temporal reward:

    (i) M=0, N=0 "correct empty prediction", reward 1;
    (ii) M=0, N>0 "missed visible defect", penalty α_pen;
    (iii) M>0, N=0 "hallucinated interval", penalty α_pen;
    (iv) M>0, N>0 "interval match", reward from the overlap: ours is
    ``(1 − β)·IoU + β·D − λ·|M − N|``, floored at −α_pen, where IoU is the evaluator's Q4 IoU
    (:func:`pipeline.eval.metrics.q4_iou`: the prediction clipped to ``[0, duration]``, union IoU)
    and D the share of GT intervals overlapped at all (the discovery bonus). An exact match earns 1,
    the same as a correct empty answer.

    >>> temporal_score([], [])                          # (i)
    1.0
    >>> temporal_score([], [[0.4, 1.2]])                # (ii)
    -0.5
    >>> temporal_score([[0.1, 0.5]], [])                # (iii)
    -0.5
    >>> temporal_score([[0.4, 1.2]], [[0.4, 1.2]])      # (iv) exact
    1.0
    >>> round(temporal_score([[1.1, 1.5]], [[0.4, 1.2]]), 4)   # (iv) poor boundaries, still found
    0.3636
    >>> round(temporal_score([[0.4, 1.2]], [[0.4, 1.2], [1.6, 2.0]]), 4)  # (iv) one of two: |M−N| = 1
    0.5167
    >>> temporal_score(None, [[0.4, 1.2]])              # unreadable Q4
    -1.0

    ``mode="flat_iou"`` (Table 5 ablation) is the evaluator's IoU alone where both sides have
    intervals, and 0 when either side is empty or the answer is unreadable (no visibility cases):

    >>> flat = TemporalConstants(mode="flat_iou")
    >>> temporal_score([], [], flat), temporal_score([[0.4, 1.2]], [[0.4, 1.2]], flat)
    (0.0, 1.0)
    """
    if k.mode == "flat_iou":
        if not pred or not gt:
            return 0.0
        return q4_iou(pred, gt, duration)
    if pred is None:
        return -k.unparseable_penalty
    m, n = len(pred), len(gt)
    if m == 0 and n == 0:
        return k.empty_reward
    if m == 0 or n == 0:
        return -k.alpha_pen
    iou = q4_iou(pred, gt, duration)
    value = ((1 - k.discovery_weight) * iou + k.discovery_weight * discovery_share(pred, gt)
             - k.count_penalty * abs(m - n))
    return max(value, -k.alpha_pen)


def temporal_reward(completions: Sequence[Any], solution: Sequence[Any],
                    constants: TemporalConstants = TemporalConstants(), **kwargs: Any) -> list[float]:
    """Paper: the visibility-aware temporal reward; see :func:`temporal_score` for the four cases.

    >>> from pipeline.grammar import format_answer, format_structured
    >>> sol = GroundTruth("A", "C", "B", {"A": "hole", "C": "crack"}, {"A": "cup", "B": "vase"},
    ...                   [[0.4, 1.2]], 2.0).to_json()
    >>> resp = lambda q4: format_structured("g", "s", "t", format_answer("A", "C", "B", q4))
    >>> temporal_reward([resp("[[0.40, 1.20]]"), resp("[]"), resp("soon")], solution=[sol] * 3)
    [1.0, -0.5, -1.0]
    """
    out = []
    for c, s in zip(completions, solution, strict=True):
        gt = _gt(s)
        out.append(temporal_score(scored(c, gt)[0].q4, gt.intervals, constants, gt.duration))
    return out


REWARDS: dict[str, RewardFn] = {
    "format": format_reward,
    "answer": answer_reward,
    "defect": defect_reward,
    "temporal": temporal_reward,
}


def temporal_constants(overrides: Optional[dict[str, Any]] = None) -> TemporalConstants:
    """:class:`TemporalConstants` with ``overrides``; unknown fields or modes raise ``ValueError``."""
    fields = set(asdict(TemporalConstants()))
    bad = set(overrides or {}) - fields
    if bad:
        raise ValueError(f"unknown temporal reward constant(s) {sorted(bad)}; known: {sorted(fields)}")
    k = TemporalConstants(**(overrides or {}))
    if k.mode not in TEMPORAL_MODES:
        raise ValueError(f"grpo.temporal.mode must be one of {TEMPORAL_MODES}, got {k.mode!r}")
    return k


def build_rewards(names: Sequence[str], temporal: Optional[dict[str, Any]] = None,
                  defect_gate: bool = True) -> list[RewardFn]:
    """Reward functions by name, in order; ``temporal`` overrides :class:`TemporalConstants` fields,
    ``defect_gate=False`` removes the Q1 gate of the defect reward (Table 5 ablations).

    Each returned function carries ``__name__`` = its registry name so TRL logs
    ``rewards/<name>/mean``.
    """
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    k = temporal_constants(temporal)
    out = []
    for n in names:
        fn = REWARDS[n]
        if n == "temporal" and k != TemporalConstants():
            fn = partial(temporal_reward, constants=k)
        elif n == "defect" and not defect_gate:
            fn = partial(defect_reward, gate=False)
        if isinstance(fn, partial):
            fn.__name__ = REWARDS[n].__name__  # type: ignore[attr-defined]
        out.append(fn)
    return out


def weighted_total(completion: Any, solution: Any, rewards: Sequence[RewardFn], weights: Sequence[float]) -> float:
    """Weighted sum of ``rewards`` for one completion (what GRPO's advantage is computed from)."""
    return sum(w * f([completion], solution=[solution])[0] for f, w in zip(rewards, weights, strict=True))
