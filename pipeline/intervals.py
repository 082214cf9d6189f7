"""Interval algebra. Internally intervals are half-open frame ranges ``[start, end)`` (docs/architecture.md);
for people and answers they become clip-local seconds rounded to 2 decimals."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

Interval = tuple[int, int]
SecInterval = tuple[float, float]


def runs(active: Sequence[bool] | np.ndarray) -> list[Interval]:
    """Maximal runs of True as half-open ``[start, end)`` frame intervals."""
    a = np.asarray(active, dtype=bool).astype(np.int8)
    if a.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], a, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def normalize(intervals: Iterable[Sequence[float]]) -> list[tuple]:
    """Sort and merge overlapping or touching intervals; drop empty ones."""
    items = sorted((a, b) for a, b in intervals if b > a)
    out: list[list] = []
    for a, b in items:
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(x) for x in out]


def merge_gaps(intervals: Sequence[Interval], max_gap: int) -> list[Interval]:
    """Join neighbours separated by at most ``max_gap`` frames (a short dropout is not a new span)."""
    out: list[list[int]] = []
    for a, b in normalize(intervals):
        if out and a - out[-1][1] <= max_gap:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def drop_short(intervals: Sequence[Interval], min_len: int) -> list[Interval]:
    """Remove blips shorter than ``min_len`` frames."""
    return [(a, b) for a, b in intervals if b - a >= min_len]


def visible_intervals(scores: Sequence[float] | np.ndarray, threshold: float, min_len: int = 1,
                      max_gap: int = 0) -> list[Interval]:
    """Frames whose score is ``>= threshold`` → runs → gaps merged → blips dropped."""
    active = np.asarray(scores, dtype=float) >= threshold
    return drop_short(merge_gaps(runs(active), max_gap), min_len)


def hysteresis_intervals(scores: Sequence[float] | np.ndarray, high: float, low: float, min_len: int = 1,
                         max_gap: int = 0) -> list[Interval]:
    """Runs above ``low`` that contain at least one frame above ``high`` (two-threshold hysteresis)."""
    s = np.asarray(scores, dtype=float)
    keep = [(a, b) for a, b in runs(s >= low) if (s[a:b] >= high).any()]
    return drop_short(merge_gaps(keep, max_gap), min_len)


def total_length(intervals: Iterable[Sequence[float]]) -> float:
    return float(sum(b - a for a, b in normalize(intervals)))


def intersection_length(x: Iterable[Sequence[float]], y: Iterable[Sequence[float]]) -> float:
    xs, ys = normalize(x), normalize(y)
    i = j = 0
    total = 0.0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if hi > lo:
            total += hi - lo
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return total


def union_iou(pred: Iterable[Sequence[float]], true: Iterable[Sequence[float]]) -> float:
    """IoU of the union of predicted and the union of true intervals (docs/architecture.md, Metrics):
    1 when both are empty, 0 when only one is."""
    p, t = normalize(pred), normalize(true)
    if not p and not t:
        return 1.0
    if not p or not t:
        return 0.0
    inter = intersection_length(p, t)
    union = total_length(p) + total_length(t) - inter
    return inter / union if union > 0 else 0.0


def clip_local(intervals: Sequence[Interval], clip_start: int, clip_end: int) -> list[Interval]:
    """Intersect global frame intervals with clip ``[clip_start, clip_end)`` and shift to clip frames."""
    out = []
    for a, b in intervals:
        lo, hi = max(a, clip_start), min(b, clip_end)
        if hi > lo:
            out.append((lo - clip_start, hi - clip_start))
    return out


def frames_to_seconds(intervals: Sequence[Interval], fps: float) -> list[list[float]]:
    """``[start, end)`` frames → ``[[start_s, end_s]]``; frame f covers ``[f/fps, (f+1)/fps)``."""
    return [[round(a / fps, 2), round(b / fps, 2)] for a, b in intervals]


def seconds_to_frames(intervals: Sequence[Sequence[float]], fps: float, num_frames: int) -> list[Interval]:
    """Inverse of :func:`frames_to_seconds` (nearest frame boundary, clamped to the clip)."""
    out = []
    for a, b in intervals:
        fa = min(max(int(round(a * fps)), 0), num_frames)
        fb = min(max(int(round(b * fps)), 0), num_frames)
        if fb > fa:
            out.append((fa, fb))
    return normalize(out)
