import shutil

import cv2
import pytest

from conftest import SMOKE, run_mmviad
from pipeline.io import read_jsonl

pytestmark = pytest.mark.slow


def test_card_counts_and_plots(smoke_built, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(smoke_built, out)
    run_mmviad("card", "--config", str(SMOKE), "--out", str(out))
    text = (out / "README.md").read_text()
    for split in ("train", "test"):
        rows = read_jsonl(out / "qa" / "standard" / f"{split}.jsonl")
        pos = sum(1 for r in rows if r["visible_intervals"])
        n_orbits = len({r["job_id"] for r in rows})
        n_cat = len({r["category"] for r in rows})
        assert f"| standard | {split} | {len(rows)} | {pos} | {len(rows) - pos} | {n_orbits} | {n_cat} |" in text
    assert "Blender 5.0" in text and "seed 7" in text
    for name in ("distributions.png", "intervals.png", "contact_sheet.png"):
        img = cv2.imread(str(out / "card" / name))
        assert img is not None and img.shape[0] > 100 and img.std() > 5, name
