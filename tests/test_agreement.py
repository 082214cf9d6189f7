"""`mmviad annotate --report` on a real (smoke) render: per-job agreement and the dataset summary."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.cli import main
from pipeline.io import read_json, read_jsonl

SMOKE = Path(__file__).resolve().parents[1] / "manifests" / "smoke.yaml"


def test_annotate_report(smoke_out: Path) -> None:
    assert main(["annotate", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress", "--report"]) == 0
    rep = smoke_out / "reports"
    s = json.loads((rep / "agreement.json").read_text())
    anns = [read_json(p) for p in sorted((smoke_out / "annotations").glob("*.json"))]
    assert s["jobs"] == len(anns) == len(read_jsonl(smoke_out / "jobs.jsonl"))
    assert abs(s["mean_iou"] - sum(a["agreement"]["iou"] for a in anns) / len(anns)) < 1e-6
    for a in anns:
        ag = a["agreement"]
        n = a["num_frames"]
        frames = lambda spans: sum(e - s for s, e in spans)  # noqa: E731
        assert frames(ag["disagree_spans"]) == frames(ag["missed_spans"]) + frames(ag["spurious_spans"])
        assert len(ag["clip_iou"]) == n // a["clip_frames"]
    assert s["worst_jobs"][0]["iou"] == min(a["agreement"]["iou"] for a in anns)
    assert (rep / "agreement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean IoU per orbit" in (rep / "agreement.md").read_text()
