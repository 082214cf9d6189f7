"""Fixtures: the pipeline's own output (``data/smoke``: QA files and clips that `mmviad build` of
manifests/smoke.yaml wrote; regenerate with ``data/regenerate.py``), a hand-written dataset for
cases the smoke build lacks (several intervals, a defective object with nothing visible) and a
tiny Qwen3-VL checkpoint built in code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline.grammar import Q1_OPTIONS, Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT, format_intervals  # noqa: E402

from mmviad_trainer.video import write_test_mp4  # noqa: E402

Q2 = {"A": "hole", "B": "bulge", "C": "crack", "D": "scratch", "E": "good", "F": "concavity", "G": "broken"}
Q3 = {"A": "cup", "B": "vase", "C": "bowl", "D": "bottle"}


def make_record(clip_id: str, group: str, defect: str | None, intervals: list[list[float]],
                split: str = "train") -> dict:
    """One QA line (a valid :class:`pipeline.records.QARecord`) for a 2-second, 10 fps clip."""
    has = bool(intervals)
    job, index = clip_id.rsplit("-c", 1)
    q2_ans = next(k for k, v in Q2.items() if v == (defect if has else "good"))
    q3_ans = next(k for k, v in Q3.items() if v == group)
    return {"clip_id": clip_id, "job_id": job, "clip_index": int(index), "video": f"clips/{clip_id}.mp4",
            "video_marked": f"clips/{clip_id}.marked.mp4",
            "fps": 10, "num_frames": 20, "duration": 2.0, "category": f"{group}0", "group": group,
            "defect": defect or "good", "visible_intervals": intervals, "provenance": "mask", "split": split,
            "material": "glazed_ceramic", "environment": "studio",
            "q1": {"question": Q1_TEXT, "options": dict(Q1_OPTIONS), "answer": "A" if has else "B"},
            "q2": {"question": Q2_TEXT, "options": dict(Q2), "answer": q2_ans},
            "q3": {"question": Q3_TEXT, "options": dict(Q3), "answer": q3_ans},
            "q4": {"question": Q4_TEXT, "answer": format_intervals(intervals)}}


RECORDS = [
    make_record("vase0-0000-crack-t0-c0", "vase", "crack", [[0.4, 1.2]]),
    make_record("vase0-0000-crack-t0-c1", "vase", "crack", [[0.0, 0.5], [1.3, 2.0]]),
    make_record("cup0-0000-good-t0-c0", "cup", None, []),
    make_record("cup0-0001-bulge-t0-c0", "cup", "bulge", []),  # defective object, defect not visible
    make_record("bowl0-0000-hole-t0-c0", "bowl", "hole", [[0.8, 1.5]], split="test"),
    make_record("bowl0-0001-good-t0-c0", "bowl", None, [], split="test"),
]


SMOKE_DATA = Path(__file__).resolve().parent / "data" / "smoke"


@pytest.fixture(scope="session")
def smoke_data() -> Path:
    """The committed `mmviad build` output of the smoke config (6 train / 3 test clips per protocol)."""
    assert (SMOKE_DATA / "qa" / "standard" / "train.jsonl").exists(), "run trainer/tests/data/regenerate.py"
    return SMOKE_DATA


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for rec in RECORDS:
        frames = [(rng.random((36, 64, 3)) * 255).astype(np.uint8) for _ in range(rec["num_frames"])]
        write_test_mp4(root / rec["video"], frames, rec["fps"])
    qa = root / "qa" / "standard"
    qa.mkdir(parents=True)
    for split in ("train", "test"):
        (qa / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in RECORDS if r["split"] == split), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    from mmviad_trainer.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("model") / "base", seed=0)


@pytest.fixture(scope="session")
def smoke_cfg():
    """configs/cpu-smoke.yaml as a (frozen) :class:`TrainConfig`; tests derive changed copies with ``updated``."""
    from mmviad_trainer.config import load_config

    return load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-smoke.yaml")
