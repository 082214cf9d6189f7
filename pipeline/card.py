"""card: write ``<out>/README.md``, the dataset card of a built dataset: what it is, how it was made
(config, seed, Blender version), counts by protocol and split, and plots."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt  # noqa: E402

from . import evidence_stats  # noqa: E402
from .config import Config, config_dict  # noqa: E402
from .contact_sheet import write_contact_sheet  # noqa: E402
from .ids import GOOD  # noqa: E402
from .io import atomic_write_text, read_json  # noqa: E402
from .layout import Layout  # noqa: E402
from .records import QARecord, iter_records, read_clips_jsonl  # noqa: E402
from .render.gpu import TEST_GPU_ON_CPU_BACKEND, TEST_GPU_ON_CPU_ENV  # noqa: E402

PROTOCOLS = ("standard", "unseen")


def _rows(out: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    layout = Layout(out)
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in PROTOCOLS:
        for s in ("train", "test"):
            f = layout.qa_file(p, s)
            if f.exists():
                found.setdefault(p, {})[s] = [r.to_json() for _, r in iter_records(QARecord, f)]
    if "standard" not in found:
        raise FileNotFoundError(f"{layout.qa_dir('standard')}: no QA files; run `mmviad qa` first")
    return found


def _bar(ax, counts: collections.Counter, title: str) -> None:
    keys = sorted(counts)
    ax.bar(range(len(keys)), [counts[k] for k in keys], color="#4c72b0")
    ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("clips", fontsize=8)


def plot_distributions(rows: list[dict[str, Any]], dest: Path) -> Path:
    """Clips per category, defect type, environment and material; anomalous vs normal clips."""
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.6))
    for ax, key, title in zip(axes, ("category", "defect", "environment", "material"),
                              ("category", "defect type (object)", "environment", "material")):
        _bar(ax, collections.Counter(str(r[key]) for r in rows), f"clips per {title}")
    vis = collections.Counter("defect visible (Q1 = Yes)" if r["visible_intervals"] else "no visible defect" for r in rows)
    _bar(axes[4], vis, "anomalous vs normal clips")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return dest


def plot_intervals(rows: list[dict[str, Any]], dest: Path) -> Path:
    """Histograms of visible-interval length and of visible time within the clip."""
    lengths = [b - a for r in rows for a, b in r["visible_intervals"]]
    mids = [(a + b) / 2 for r in rows for a, b in r["visible_intervals"]]
    covered = [sum(b - a for a, b in r["visible_intervals"]) / r["duration"] for r in rows if r["visible_intervals"]]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, data, title, xlabel in ((axes[0], lengths, "visible-interval length", "seconds"),
                                    (axes[1], mids, "interval centre within the clip", "seconds"),
                                    (axes[2], covered, "visible share of anomalous clips", "fraction of the clip")):
        ax.hist(data, bins=20, color="#dd8452")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return dest


def plot_evidence(summary: dict[str, Any], dest: Path) -> Path:
    """Histogram of the clips' evident share (in-view frames that the unmarked video shows) and the
    share per defect type."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].hist(summary["clip_shares"], bins=[i / 10 for i in range(11)], color="#55a868")
    axes[0].axvline(evidence_stats.WEAK_SHARE, color="#c44e52", ls="--", lw=1)
    axes[0].set_title("evidence strength of clips with the defect in view", fontsize=9)
    axes[0].set_xlabel("share of in-view frames with evidence (left of the line: weak)", fontsize=8)
    axes[0].set_ylabel("clips", fontsize=8)
    kinds = [k for k, r in summary["by_defect"].items() if k not in ("all", GOOD) and r["evident_share"] is not None]
    axes[1].bar(range(len(kinds)), [summary["by_defect"][k]["evident_share"] for k in kinds], color="#55a868")
    axes[1].set_xticks(range(len(kinds)), kinds, rotation=30, ha="right", fontsize=8)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("in-view frames with evidence, per defect type", fontsize=9)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return dest


def evidence_table(summary: dict[str, Any], resolution: str) -> list[str]:
    """Markdown table of :func:`pipeline.evidence_stats.summarize` per defect type (and all clips)."""
    def pct(v: Any) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    lines = ["| defect | resolution | clips | in-view frames | with evidence | visible time (mask) | "
             "without evidence | anomalous clips (mask → evident) | weak clips |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, r in summary["by_defect"].items():
        if k == GOOD:
            continue
        lines.append(f"| {'**all**' if k == 'all' else k} | {resolution} | {r['clips']} | {r['in_view_frames']} | "
                     f"{pct(r['evident_share'])} | {r['mask_s']:.1f} s | {pct(r['time_without_evidence'])} | "
                     f"{r['anomalous_mask']} → {r['anomalous_evident']} | {r['weak']} |")
    return lines


def evidence_lines(summary: dict[str, Any], resolution: str) -> list[str]:
    """The card's evidence section: a table per defect type at this resolution."""
    return (["## Evidence: what the unmarked video shows", "",
             "Each defective object was also rendered as its defect-free twin near the defect; a frame is "
             "*evident* when enough pixels of the (slightly grown) defect mask differ from the twin by more "
             "than the noise floor measured around them. `in_view_and_evident` intervals need both the mask "
             "and the evidence; `mask` intervals need the mask only.", ""]
            + evidence_table(summary, resolution)
            + ["", f"Weak: in view, but evident in fewer than {evidence_stats.WEAK_SHARE:.0%} of those frames "
                   "(review them first).", "", "![evidence](card/evidence.png)", ""])


def asset_credits(jobs: list[dict[str, Any]]) -> list[str]:
    """One Markdown line per third-party asset the jobs use (today: Blender's bundled HDRIs, CC0),
    with its source and licence."""
    seen: dict[str, str] = {}
    for j in jobs:
        e = j.get("environment") or {}
        if e.get("license") and e["name"] not in seen:
            seen[e["name"]] = f"- `{e['name']}`: {e['source']} ({e['license']})"
    return [seen[k] for k in sorted(seen)]


def write_card(cfg: Config, out: Path, jobs: list[dict[str, Any]]) -> Path:
    """Write the card and its pictures into ``<out>/card/``; return the README path."""
    out = Path(out)
    layout = Layout(out)
    protocols = _rows(out)
    std = protocols["standard"]["train"] + protocols["standard"]["test"]
    pics = layout.card_dir()
    pics.mkdir(parents=True, exist_ok=True)
    plot_distributions(std, pics / "distributions.png")
    plot_intervals(std, pics / "intervals.png")
    rendered = [j for j in jobs if layout.is_done(j["job_id"])]
    write_contact_sheet(out, rendered[:6], pics / "contact_sheet.png", columns=6, tile_width=200)
    metas = [read_json(layout.render_dir(j["job_id"]) / "meta.json") for j in rendered]
    blender = sorted({m["blender_version"] for m in metas})
    faked = sum(m.get("render", {}).get("backend") == TEST_GPU_ON_CPU_BACKEND for m in metas)
    lines = [
        f"# {cfg.name}: an mmviad dataset",
        "",
        "Multi-view video clips of 3D objects with and without structural defects, rendered with Blender "
        "(Cycles) along a 360° camera orbit, with four aligned questions per 2-second clip: defect or not (Q1), "
        "defect type (Q2), object category (Q3) and the seconds in which the defect is visible (Q4). Visible "
        "time comes from an exact per-frame defect mask rendered with the unmarked video, and is compared with "
        "the paper's marked-vs-unmarked frame difference in `annotations/`.",
        "",
        "## How it was made",
        "",
        f"- config `{cfg.name}`, seed {cfg.seed}; Blender {', '.join(blender) or 'unknown'}; "
        f"{cfg.render.width}×{cfg.render.height} px, {cfg.render.samples} spp, denoise {cfg.render.denoise}, "
        f"{cfg.render.fps} fps, {cfg.render.orbit_frames}-frame orbits, {cfg.render.clip_seconds:g}-second clips",
        f"- {len(rendered)} of {len(jobs)} planned orbits rendered; labels from `{cfg.qa.label_source}` "
        "unless reviewed",
        *([f"- **WARNING: {faked} orbit(s) rendered on the CPU by the test-only {TEST_GPU_ON_CPU_ENV} switch "
            "although the config asks for a GPU: a test run, not a dataset to publish**"] if faked else []),
        "",
        "## Counts",
        "",
        "| protocol | split | clips | anomalous (Q1 = Yes) | normal | orbits | categories |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, splits in protocols.items():
        for s, rows in splits.items():
            pos = sum(1 for r in rows if r["visible_intervals"])
            lines.append(f"| {p} | {s} | {len(rows)} | {pos} | {len(rows) - pos} | "
                         f"{len({r['job_id'] for r in rows})} | {len({r['category'] for r in rows})} |")
    clips = read_clips_jsonl(layout.clips_jsonl()) if layout.clips_jsonl().exists() else []
    if any("evidence" in c for c in clips):
        summary = evidence_stats.summarize(clips, {j["job_id"]: j["defect"] for j in jobs})
        plot_evidence(summary, pics / "evidence.png")
        lines += [""] + evidence_lines(summary, f"{cfg.render.width}×{cfg.render.height}")
    lines += ["", "## Distributions", "", "![distributions](card/distributions.png)", "",
              "![intervals](card/intervals.png)", "", "## Sample orbits", "",
              "Unmarked (top) and red-marked (bottom) frames around each orbit:", "",
              "![contact sheet](card/contact_sheet.png)", "", "## Files", "",
              "- `qa/<protocol>/{train,test}.jsonl`: one record per clip (`datasets.load_dataset(\"json\", ...)` "
              "reads them as they are)",
              "- `clips/<clip_id>.mp4` (benchmark), `clips/<clip_id>.marked.mp4` (review)",
              "- `annotations/<job_id>.json`: per-frame mask and diff scores and intervals",
              "- `jobs.jsonl`: every random choice of every orbit", ""]
    credits = asset_credits(rendered)
    if credits:
        lines += ["## Asset licences", "", "HDRI environment maps (lighting and background):", "", *credits, ""]
    lines += ["## Config", "", "```json",
              json.dumps(config_dict(cfg), indent=1, sort_keys=True), "```", ""]
    dest = layout.card()
    atomic_write_text(dest, "\n".join(lines))
    return dest
