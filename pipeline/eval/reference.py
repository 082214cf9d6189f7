"""Reference (template) clips for the 1-shot settings, as in MMAD.

``1-shot``: a normal clip of the same category, chosen with a per-clip seed. ``1-shot+``: the most
similar normal clip of the same category, by SSIM of the grey middle frames plus the Bhattacharyya
distance of their colour histograms (score = SSIM − distance; higher is more similar). Candidates
never come from the queried clip's own orbit (``job_id``), and train-split normals are preferred.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from ..ids import GOOD, label_of
from ..layout import Layout
from ..seeds import rng_for
from .frames import sample_frames

_SIZE = (64, 64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equally sized grey images (Gaussian window σ=1.5, Wang et al. constants)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (7, 7), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    va, vb, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def bhattacharyya(a: np.ndarray, b: np.ndarray, bins: int = 16) -> float:
    """Bhattacharyya distance (0 = same, 1 = disjoint) of normalised 3-D RGB histograms."""
    h = [cv2.normalize(cv2.calcHist([x], [0, 1, 2], None, [bins] * 3, [0, 256] * 3), None).astype(np.float32)
         for x in (a, b)]
    return float(cv2.compareHist(h[0], h[1], cv2.HISTCMP_BHATTACHARYYA))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (grey, resized to 64×64) minus colour-histogram Bhattacharyya distance; RGB uint8 in."""
    ga, gb = (cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), _SIZE, interpolation=cv2.INTER_AREA) for x in (a, b))
    return ssim(ga, gb) - bhattacharyya(a, b)


def _middle(out: Path, rec: dict[str, Any], cache: dict[str, np.ndarray]) -> np.ndarray:
    if rec["clip_id"] not in cache:
        s = sample_frames(Layout(out).resolve(rec["video"]), 1)
        cache[rec["clip_id"]] = s.frames[0]
    return cache[rec["clip_id"]]


def candidates(query: dict[str, Any], pool: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normal clips of the query's category from other orbits; train split first, then the rest."""
    c = [r for r in pool if r["category"] == query["category"] and not r["visible_intervals"]
         and label_of(r.get("defect")) == GOOD and r["job_id"] != query["job_id"]]
    train = [r for r in c if r.get("split") == "train"]
    return sorted(train or c, key=lambda r: r["clip_id"])


def pick_reference(query: dict[str, Any], pool: Sequence[dict[str, Any]], mode: str, out: Path, seed: int,
                   cache: Optional[dict[str, np.ndarray]] = None) -> Optional[dict[str, Any]]:
    """The reference record for ``mode`` in ``{"1-shot", "1-shot+"}``, or ``None`` when the
    category has no normal clip outside the query's orbit."""
    cands = candidates(query, pool)
    if not cands:
        return None
    if mode == "1-shot":
        return cands[int(rng_for(seed, query["clip_id"], "reference").integers(len(cands)))]
    if mode == "1-shot+":
        cache = {} if cache is None else cache
        q = _middle(out, query, cache)
        scored = [(similarity(q, _middle(out, r, cache)), r["clip_id"], r) for r in cands]
        return max(scored, key=lambda x: (x[0], x[1]))[2]
    raise ValueError(f"unknown reference mode {mode!r} (known: 1-shot, 1-shot+)")
