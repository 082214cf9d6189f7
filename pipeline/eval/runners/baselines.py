"""Baselines that need no model. Each writes a response in the benchmark's answer grammar, so it
goes through the same parser and metrics as a model.

- ``random``: uniform letters for Q1–Q3 with a per-clip seed; Q4 is one uniform random interval
  inside the clip when Q1 says Yes, else ``[]``.
- ``prior``: the majority class of the train split for each task (Q1 label, Q2 defect type, Q3 the
  most frequent train group among the clip's four options); Q4, when Q1 is Yes, the median train
  start/end of the defective clips' visible hull.
- ``no-defect``: always "No", "good", ``[]``; Q3 is option A.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np

from ...grammar import format_answer, format_intervals
from ...seeds import rng_for
from .base import Prediction, PromptFn, Runner


def _letter_of(opts: dict[str, str], text: str) -> Optional[str]:
    return next((k for k, v in opts.items() if v == text), None)


class RandomRunner(Runner):
    name = "random"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        out = []
        for rec in records:
            rng = rng_for(self.seed, rec["clip_id"], "eval-random")
            q1, q2, q3 = (str(rng.choice(sorted(rec[q]["options"]))) for q in ("q1", "q2", "q3"))
            q4: list[list[float]] = []
            if q1 == "A":
                a, b = sorted(rng.uniform(0.0, rec["duration"], size=2).tolist())
                q4 = [[a, b]]
            out.append(Prediction(rec["clip_id"], format_answer(q1, q2, q3, format_intervals(q4))))
        return out


class PriorRunner(Runner):
    name = "prior"

    def __init__(self, train: Sequence[dict[str, Any]]) -> None:
        if not train:
            raise ValueError("the prior baseline needs a non-empty train split")
        q1 = Counter(r["q1"]["options"][r["q1"]["answer"]] for r in train)
        q2 = Counter(r["q2"]["options"][r["q2"]["answer"]] for r in train)
        self.q1_text = max(sorted(q1), key=lambda k: q1[k])
        self.q2_text = max(sorted(q2), key=lambda k: q2[k])
        self.groups = Counter(r["group"] for r in train)
        hulls = [(min(a for a, _ in r["visible_intervals"]), max(b for _, b in r["visible_intervals"]))
                 for r in train if r["visible_intervals"]]
        self.q4 = ([[round(float(np.median([h[0] for h in hulls])), 2), round(float(np.median([h[1] for h in hulls])), 2)]]
                   if hulls else [])

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        out = []
        for rec in records:
            q1 = _letter_of(rec["q1"]["options"], self.q1_text) or "B"
            q2 = _letter_of(rec["q2"]["options"], self.q2_text) or "A"
            q3 = max(sorted(rec["q3"]["options"]), key=lambda k: (self.groups.get(rec["q3"]["options"][k], 0), -ord(k)))
            q4 = self.q4 if self.q1_text == "Yes" else []
            out.append(Prediction(rec["clip_id"], format_answer(q1, q2, q3, format_intervals(q4))))
        return out


class NoDefectRunner(Runner):
    name = "no-defect"

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        return [Prediction(r["clip_id"], format_answer("B", _letter_of(r["q2"]["options"], "good") or "A", "A", "[]"))
                for r in records]
