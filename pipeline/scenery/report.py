"""Plain-text summaries: the spread of looks in a plan, and predicted vs rendered visibility."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..intervals import union_iou
from ..io import read_json, write_json
from ..layout import Layout
from .visibility import clip_flags


def plan_summary(cfg: Config, jobs: list[dict[str, Any]]) -> str:
    """Counts of material groups, environments and floors, and the predicted visible-clip share."""
    def top(key, field):
        c = Counter(j[key][field] for j in jobs)
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [f"looks: materials [{top('material', 'group')}]; "
             f"{len({j['material']['name'] for j in jobs})} material subclasses",
             f"looks: environments [{top('environment', 'name')}]", f"looks: floors [{top('floor', 'name')}]"]
    vis = [j["visibility"] for j in jobs if "visibility" in j]
    if vis:
        shown = sum(sum(v["predicted_clips"]) for v in vis)
        total = sum(len(v["predicted_clips"]) for v in vis)
        tgt = cfg.scene.visibility.target_share
        lines.append(f"visibility (predicted by ray casting): {shown}/{total} clips show the defect "
                     f"({shown / max(total, 1):.1%})" + (f", target {tgt:.1%}" if tgt is not None else ""))
    return "\n".join(lines)


def visibility_agreement(cfg: Config, jobs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Compare each annotated job's predicted visibility with its rendered mask intervals:
    frame agreement (share of frames where both say the same), interval IoU and clip agreement.
    Writes ``<out>/reports/visibility.json`` and returns the totals."""
    r = cfg.render
    rows = []
    for job in jobs:
        ann_path = Layout(out).annotation(job["job_id"])
        if "visibility" not in job or not ann_path.exists():
            continue
        ann = read_json(ann_path)
        n = int(ann["num_frames"])
        pred_iv, true_iv = job["visibility"]["predicted_intervals"], ann["mask"]["intervals"]
        p, t = np.zeros(n, bool), np.zeros(n, bool)
        for s, e in pred_iv:
            p[s:e] = True
        for s, e in true_iv:
            t[s:e] = True
        pc = job["visibility"]["predicted_clips"]
        tc = clip_flags(true_iv, n, r.clip_frames)
        rows.append({"job_id": job["job_id"], "frame_agreement": round(float((p == t).mean()), 4),
                     "iou": round(union_iou(pred_iv, true_iv), 4), "predicted_clips": pc, "rendered_clips": tc,
                     "clip_agreement": round(float(np.mean(np.array(pc) == np.array(tc))), 4)})
    frames = sum(r_["frame_agreement"] for r_ in rows) / max(len(rows), 1)
    clips_ok = sum(int(a == b) for r_ in rows for a, b in zip(r_["predicted_clips"], r_["rendered_clips"]))
    clips_n = sum(len(r_["rendered_clips"]) for r_ in rows)
    totals = {"jobs": len(rows), "mean_frame_agreement": round(frames, 4), "clip_agreement": clips_ok / max(clips_n, 1),
              "clips": clips_n, "predicted_visible_clips": sum(sum(r_["predicted_clips"]) for r_ in rows),
              "rendered_visible_clips": sum(sum(r_["rendered_clips"]) for r_ in rows)}
    if rows:
        write_json(Layout(out).reports_dir() / "visibility.json", {"totals": totals, "jobs": rows})
    return totals


def format_agreement(t: dict[str, Any]) -> str:
    return (f"visibility: predicted vs rendered over {t['jobs']} job(s): frames agree {t['mean_frame_agreement']:.1%}, "
            f"clips agree {t['clip_agreement']:.1%} ({t['predicted_visible_clips']} predicted / "
            f"{t['rendered_visible_clips']} rendered visible clips of {t['clips']})")
