"""The trainer's test fixture (trainer/tests/data/smoke) is what `mmviad build` of the smoke config
writes today: the trainer tests run on the pipeline's real output, and this test catches drift."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FIXTURE = Path(__file__).resolve().parents[1] / "trainer" / "tests" / "data" / "smoke"
REGENERATE = ".venv/bin/python trainer/tests/data/regenerate.py"


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]).astype(np.float32)


def test_trainer_fixture_matches_the_smoke_build(smoke_built):
    qa = sorted(p.relative_to(smoke_built) for p in smoke_built.glob("qa/*/*.jsonl"))
    assert qa == sorted(p.relative_to(FIXTURE) for p in FIXTURE.glob("qa/*/*.jsonl")), f"regenerate: {REGENERATE}"
    for rel in qa:  # labels, intervals, options: byte for byte (the build is deterministic there)
        assert (FIXTURE / rel).read_bytes() == (smoke_built / rel).read_bytes(), f"{rel} drifted; run {REGENERATE}"
    clips = sorted(p.name for p in smoke_built.glob("clips/*.mp4") if not p.name.endswith(".marked.mp4"))
    assert clips == sorted(p.name for p in FIXTURE.glob("clips/*.mp4"))
    for name in clips:
        # Cycles' multithreaded sampling changes a few pixel values between runs (measured: mean
        # |Δ| ≤ 0.15 of 255 on re-renders of the same config); a changed scene moves it by tens.
        a, b = _frames(FIXTURE / "clips" / name), _frames(smoke_built / "clips" / name)
        assert a.shape == b.shape, name
        assert float(np.abs(a - b).mean()) < 2.0, f"clips/{name} drifted; run {REGENERATE}"
