import numpy as np
import pytest
from hypothesis import given, strategies as st

from pipeline import intervals as iv


def test_runs_half_open():
    assert iv.runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert iv.runs([]) == []
    assert iv.runs([1, 1]) == [(0, 2)]


def test_gap_merge_and_min_len():
    assert iv.merge_gaps([(0, 3), (5, 8), (12, 13)], max_gap=2) == [(0, 8), (12, 13)]
    assert iv.drop_short([(0, 8), (12, 13)], min_len=2) == [(0, 8)]


def test_visible_intervals_threshold_gap_len():
    scores = [0, 5, 5, 0, 5, 5, 5, 0, 0, 0, 9, 0]
    assert iv.visible_intervals(scores, threshold=4, min_len=1, max_gap=0) == [(1, 3), (4, 7), (10, 11)]
    assert iv.visible_intervals(scores, threshold=4, min_len=2, max_gap=1) == [(1, 7)]
    assert iv.visible_intervals(scores, threshold=10) == []


def test_hysteresis_keeps_runs_touching_high():
    s = [0, 3, 6, 3, 0, 3, 3, 0]
    assert iv.hysteresis_intervals(s, high=5, low=2) == [(1, 4)]


def test_union_iou_conventions():
    assert iv.union_iou([], []) == 1.0
    assert iv.union_iou([(0, 1)], []) == 0.0
    assert iv.union_iou([], [(0, 1)]) == 0.0
    assert iv.union_iou([(0, 2)], [(1, 3)]) == pytest.approx(1 / 3)
    # unions: overlapping predictions count once
    assert iv.union_iou([(0, 2), (1, 2)], [(0, 2)]) == 1.0


def test_clip_local_and_seconds():
    glob = [(10, 47), (55, 70)]
    assert iv.clip_local(glob, 20, 40) == [(0, 20)]
    assert iv.clip_local(glob, 40, 60) == [(0, 7), (15, 20)]
    assert iv.frames_to_seconds([(12, 60)], fps=30) == [[0.4, 2.0]]


@given(st.lists(st.booleans(), max_size=80))
def test_runs_reconstruct_the_mask(mask):
    rebuilt = np.zeros(len(mask), bool)
    for a, b in iv.runs(mask):
        assert a < b
        rebuilt[a:b] = True
    assert rebuilt.tolist() == list(mask)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=6),
       st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=6))
def test_iou_matches_framewise_count(a, b):
    def frames(xs):
        s = set()
        for lo, hi in xs:
            s.update(range(lo, hi))
        return s
    fa, fb = frames(a), frames(b)
    got = iv.union_iou(a, b)
    if not fa and not fb:
        assert got == 1.0
    elif not fa or not fb:
        assert got == 0.0
    else:
        assert got == pytest.approx(len(fa & fb) / len(fa | fb))


@given(st.lists(st.tuples(st.integers(0, 59), st.integers(1, 60)), max_size=5))
def test_seconds_round_trip(xs):
    frames = iv.normalize([(a, b) for a, b in xs if b > a])
    secs = iv.frames_to_seconds(frames, fps=30)
    assert iv.seconds_to_frames(secs, fps=30, num_frames=60) == frames
