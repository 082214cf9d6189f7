"""Dataset-level agreement between diff-derived and mask-derived visible intervals
(``mmviad annotate --report``) → ``<out>/reports/agreement.{json,md,png}``.

Every annotation file already holds its job's agreement (:func:`pipeline.annotate.agreement`);
this module sums them: mean IoU per orbit and per clip, pooled pixel precision/recall, the missed
(mask only) and spurious (diff only) spans, and the worst jobs, plus a plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import atomic_write_bytes, atomic_write_text, read_json, write_json
from .layout import Layout

WORST = 5


def summarize(anns: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate the per-job ``agreement`` blocks of annotation files (any order; output is sorted)."""
    anns = sorted(anns, key=lambda a: a["job_id"])
    ious = [a["agreement"]["iou"] for a in anns]
    clip_ious = [x for a in anns for x in a["agreement"].get("clip_iou", [])]
    pix = {"both": 0, "diff": 0, "mask": 0}
    missed: list[dict[str, Any]] = []
    spurious: list[dict[str, Any]] = []
    for a in anns:
        ag = a["agreement"]
        for k in pix:
            pix[k] += int(ag.get("pixels", {}).get(k, 0))
        missed += [{"job_id": a["job_id"], "span": s} for s in ag.get("missed_spans", [])]
        spurious += [{"job_id": a["job_id"], "span": s} for s in ag.get("spurious_spans", [])]
    worst = sorted(anns, key=lambda a: (a["agreement"]["iou"], a["job_id"]))[:WORST]
    return {
        "jobs": len(anns),
        "jobs_with_visible_defect": sum(1 for a in anns if a["mask"]["intervals"]),
        "mean_iou": round(sum(ious) / len(ious), 6) if ious else None,
        "min_iou": min(ious) if ious else None,
        "clips": len(clip_ious),
        "mean_clip_iou": round(sum(clip_ious) / len(clip_ious), 6) if clip_ious else None,
        "pixels": {**pix,
                   "precision": round(pix["both"] / pix["diff"], 6) if pix["diff"] else 1.0,
                   "recall": round(pix["both"] / pix["mask"], 6) if pix["mask"] else 1.0},
        "missed": {"spans": len(missed), "frames": sum(m["span"][1] - m["span"][0] for m in missed),
                   "list": missed},
        "spurious": {"spans": len(spurious), "frames": sum(m["span"][1] - m["span"][0] for m in spurious),
                     "list": spurious},
        "worst_jobs": [{"job_id": a["job_id"], "iou": a["agreement"]["iou"],
                        "disagree_spans": a["agreement"]["disagree_spans"]} for a in worst],
        "params": anns[0]["params"] if anns else None,
    }


def _markdown(s: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)

    lines = [
        "# Diff vs mask agreement", "",
        f"- jobs: {s['jobs']} ({s['jobs_with_visible_defect']} with a visible defect)",
        f"- mean IoU per orbit: {f(s['mean_iou'])} (min {f(s['min_iou'])})",
        f"- mean IoU per clip: {f(s['mean_clip_iou'])} over {s['clips']} clips",
        f"- pixels: precision {f(s['pixels']['precision'])}, recall {f(s['pixels']['recall'])}",
        f"- missed spans (mask only): {s['missed']['spans']} ({s['missed']['frames']} frames)",
        f"- spurious spans (diff only): {s['spurious']['spans']} ({s['spurious']['frames']} frames)",
        "", "| worst jobs | IoU | disagreeing frames |", "|---|---|---|",
    ]
    for w in s["worst_jobs"]:
        spans = ", ".join(f"[{a}, {b})" for a, b in w["disagree_spans"]) or "none"
        lines.append(f"| {w['job_id']} | {w['iou']:.4f} | {spans} |")
    return "\n".join(lines) + "\n"


def plot(anns: list[dict[str, Any]], s: dict[str, Any], path: Path) -> None:
    """Left: IoU per job (sorted). Right: per-frame mask and diff scores of the worst job."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    anns = sorted(anns, key=lambda a: (a["agreement"]["iou"], a["job_id"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    ax1.barh(range(len(anns)), [a["agreement"]["iou"] for a in anns], color="#4c72b0")
    ax1.set_yticks(range(len(anns)), [a["job_id"] for a in anns], fontsize=7)
    ax1.axvline(0.95, color="#c44e52", ls="--", lw=1)
    ax1.set_xlim(0, 1.0)
    ax1.set_xlabel("diff vs mask interval IoU (orbit)")
    ax1.set_title(f"mean IoU {s['mean_iou']:.3f} over {s['jobs']} jobs" if anns else "no jobs", fontsize=9)
    if anns:
        w = anns[0]
        ax2.plot(w["mask"]["scores"], color="#333333", lw=1, label="mask px")
        ax2.plot(w["diff"]["scores"], color="#d62728", lw=1, label="diff px")
        ax2.axhline(w["threshold_px"], color="#888888", ls=":", lw=1, label="threshold")
        for a, b in w["mask"]["intervals"]:
            ax2.axvspan(a, b, ymin=0.0, ymax=0.04, color="#333333")
        for a, b in w["diff"]["intervals"]:
            ax2.axvspan(a, b, ymin=0.05, ymax=0.09, color="#d62728")
        ax2.set_yscale("symlog", linthresh=10)
        ax2.set_xlabel("orbit frame")
        ax2.set_title(f"worst: {w['job_id']} (IoU {w['agreement']['iou']:.3f}); bars = intervals", fontsize=9)
        ax2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_report(out: Path, job_ids: list[str]) -> dict[str, Any]:
    """Summarize the annotation files of ``job_ids`` that exist; write JSON, Markdown and PNG."""
    layout = Layout(out)
    anns = [read_json(p) for p in (layout.annotation(j) for j in job_ids) if p.exists()]
    s = summarize(anns)
    d = layout.reports_dir()
    write_json(d / "agreement.json", s)
    atomic_write_text(d / "agreement.md", _markdown(s))
    plot(anns, s, d / "agreement.png")
    return s
