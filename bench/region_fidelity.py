"""Is ``marked: region`` faithful to a full second render? Renders each defective job of a config
three ways in one Blender process (``bench/region_fidelity_blender.py``) and compares, per frame, the
region composition with the full marked render at the same seed:

- inside the region: max and mean absolute difference (8-bit levels);
- outside it: what the region pass leaves out (paint reflected or bounced beyond the margin, and
  the denoiser's spread), as max difference and pixels off by >= 8 and >= 24 levels;
- frames where the defect is not seen (region mode reuses the unmarked frame): the same;
- the diff-vs-mask interval IoU (pipeline.annotate) of region mode against the full render's;
- the path tracer's halo: the share of noisy pixels the paint changed beyond a distance from the
  defect's bounds, and the same comparison for a range of margins, to show where the halo is cut;
- Blender render time of each pass (unmarked, full marked, region).

It reports; it never passes or fails. ``--plot`` draws error and cost against the margin.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.annotate import diff_intervals, threshold_px  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.intervals import union_iou, visible_intervals  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.plan import plan_jobs  # noqa: E402
from pipeline.render.region import margin_px  # noqa: E402
from pipeline.render.scene import build_mesh, scene_spec  # noqa: E402

BLENDER_SIDE = Path(__file__).resolve().parent / "region_fidelity_blender.py"


def run_job(job: dict, cfg: Config, work: Path, params: dict[str, Any]) -> dict[str, Any]:
    stage = work / job["job_id"]
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    mesh = build_mesh(job, cfg)
    mesh.save(stage / "object.npz")
    spec = scene_spec(job, cfg, mesh, stage / "object.npz", stage)
    write_json(stage / "scene.json", spec)
    write_json(stage / "params.json", params)
    with open(stage / "blender.log", "wb") as log:
        code = subprocess.call([sys.executable, str(BLENDER_SIDE), str(stage / "scene.json"), str(stage / "params.json")],
                               stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f"{job['job_id']}: Blender failed ({code}); see {stage / 'blender.log'}")
    return json.loads((stage / "stats.json").read_text())


def iou_of(frames: list[dict], diff_key: Any, cfg: Config, w: int, h: int) -> float:
    a = cfg.annotate
    thr = threshold_px(a, w, h)
    mask_iv = visible_intervals([f["mask_px"] for f in frames], thr, a.min_len, a.min_gap)
    return union_iou(diff_intervals([diff_key(f) for f in frames], thr, a), mask_iv)


def summarize(stats: list[dict], cfg: Config) -> dict[str, Any]:
    """Per variant (margin): pooled over jobs and frames."""
    names = list(next(f for s in stats for f in s["frames"] if "variants" in f)["variants"])
    out: dict[str, Any] = {"variants": {}, "jobs": {}}
    for name in names + ["region"]:
        seen = [(s, f, f["variants"][name] if name != "region" else f["region"]) for s in stats for f in s["frames"]
                if "variants" in f]
        v = [x for _, _, x in seen]
        row = {"frames": len(v), "area": sum(x["area"] for x in v) / len(v),
               "max_in": max(x["max_in"] for x in v), "mean_in": sum(x["mean_in"] for x in v) / len(v),
               "max_out": max(x["max_out"] for x in v), "out_ge8": sum(x["out_ge8"] for x in v),
               "out_ge24": sum(x["out_ge24"] for x in v),
               "frames_out_ge8": sum(x["out_ge8"] > 0 for x in v), "frames_out_ge24": sum(x["out_ge24"] > 0 for x in v)}
        key = (lambda f, n=name: (f["variants"][n] if n != "region" else f["region"])["diff_px"] if "variants" in f else 0)
        ious = [iou_of(s["frames"], key, cfg, s["width"], s["height"]) for s in stats]
        row["iou"] = sum(ious) / len(ious)
        row["iou_per_job"] = ious
        if name == "region":
            row["vs_cut_max"] = max(x.get("vs_cut_max", 0) for x in v)
        out["variants"][name] = row
    ref = [iou_of(s["frames"], lambda f: f["ref_diff_px"], cfg, s["width"], s["height"]) for s in stats]
    unseen = [f["none"] for s in stats for f in s["frames"] if "none" in f]
    changed = sum(f["noisy_changed_px"] for s in stats for f in s["frames"] if "noisy_changed_px" in f)
    halo = {k: sum(f["noisy_changed_by_dist"][k] for s in stats for f in s["frames"] if "noisy_changed_by_dist" in f)
            for k in next(f for s in stats for f in s["frames"] if "noisy_changed_by_dist" in f)["noisy_changed_by_dist"]}
    t = {k: sum(f.get(k, 0.0) for s in stats for f in s["frames"]) for k in ("t_unmarked", "t_marked", "t_region")}
    out.update({
        "reference_iou": sum(ref) / len(ref), "reference_iou_per_job": ref,
        "frames": sum(len(s["frames"]) for s in stats),
        "unseen": {"frames": len(unseen), "max_out": max((x["max_out"] for x in unseen), default=0),
                   "mean_out": sum(x["mean_out"] for x in unseen) / max(1, len(unseen)),
                   "out_ge8": sum(x["out_ge8"] for x in unseen), "out_ge24": sum(x["out_ge24"] for x in unseen),
                   "frames_out_ge8": sum(x["out_ge8"] > 0 for x in unseen)},
        "noisy_halo": {"changed_px": changed, "share_beyond": {k: v / max(1, changed) for k, v in halo.items()}},
        "seconds": t,
        "blender_ratio": {"render": (t["t_unmarked"] + t["t_marked"]) / t["t_unmarked"],
                          "region": (t["t_unmarked"] + t["t_region"]) / t["t_unmarked"]},
    })
    for s, r in zip(stats, ref):
        out["jobs"][s["job_id"]] = {"reference_iou": r, "region_iou": out["variants"]["region"]["iou_per_job"][stats.index(s)]}
    return out


def table(summary: dict[str, Any], w: int) -> str:
    lines = ["| region | frames | mean area | max in | mean in | max out | px out ≥ 8 (frames) | px out ≥ 24 (frames) | diff-vs-mask IoU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in summary["variants"].items():
        lines.append(f"| {name} | {r['frames']} | {100 * r['area']:.1f} % | {r['max_in']} | {r['mean_in']:.3f} | "
                     f"{r['max_out']} | {r['out_ge8']} ({r['frames_out_ge8']}) | {r['out_ge24']} ({r['frames_out_ge24']}) | "
                     f"{r['iou']:.4f} |")
    u = summary["unseen"]
    lines.append(f"| not seen (unmarked reused) | {u['frames']} | 0 % | – | – | {u['max_out']} | {u['out_ge8']} "
                 f"({u['frames_out_ge8']}) | {u['out_ge24']} | – |")
    lines.append(f"| full second render (reference) | {summary['frames']} | 100 % | 0 | 0 | 0 | 0 | 0 | "
                 f"{summary['reference_iou']:.4f} |")
    return "\n".join(lines)


def plot(summary: dict[str, Any], w: int, path: Path, highlight: str = "region") -> None:
    """Left: the path tracer's halo (noisy pixels the paint changed, share beyond a margin around the
    defect's bounds). Right: what each region leaves out against what it costs (mean area); the
    ``highlight`` variant (default: the configured region's border renders) is starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    halo = summary["noisy_halo"]["share_beyond"]
    hk = sorted(int(k) for k in halo)
    a1.plot([max(k, 0.5) for k in hk], [100 * halo[str(k)] for k in hk], "o-", color="#c44e52")
    a1.set_xscale("log")
    a1.set_xticks([max(k, 0.5) for k in hk], [str(k) for k in hk])
    a1.set_xlabel(f"margin around the defect's bounds (px at width {w})")
    a1.set_ylabel("noisy pixels changed by the paint\nbeyond the margin (%)")
    a1.grid(alpha=0.3)
    for scope, color in (("defect", "#c44e52"), ("object", "#4c72b0")):
        rows = sorted(((int(k.split("+")[1]), r) for k, r in summary["variants"].items()
                       if k.startswith(scope + "+")),
                      key=lambda x: x[0])
        if not rows:
            continue
        xs = [100 * r["area"] for _, r in rows]
        ys = [r["out_ge8"] / max(1, r["frames"]) for _, r in rows]
        a2.plot(xs, ys, "o-", color=color, label=f"{scope} bounds + margin")
        for (k, r), x, y in zip(rows, xs, ys):
            a2.annotate(f"+{k} (max {r['max_out']})", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    reg = summary["variants"][highlight]
    a2.plot([100 * reg["area"]], [reg["out_ge8"] / max(1, reg["frames"])], "*", ms=14, color="#55a868",
            label="default region" if highlight != "region" else "configured region (border renders)")
    a2.set_yscale("symlog", linthresh=0.1)
    a2.set_xlabel("mean region area (% of the frame)")
    a2.set_ylabel("pixels off by >= 8 levels outside\nthe region, per frame with a region")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "manifests" / "default.yaml")
    p.add_argument("--jobs", default="", help="comma-separated job ids (default: every defective job)")
    p.add_argument("--orbit-frames", type=int, default=0, help="shorten the orbit to this many frames (0: as configured)")
    p.add_argument("--margins", default="0,2,4,8,16,32,64", help="defect-bounds margins to compare (px)")
    p.add_argument("--object-margins", default="0,4,16", help="object-bounds margins to compare (px)")
    p.add_argument("--work", type=Path, default=None, help="keep the renders here (default: a temp folder)")
    p.add_argument("--json", type=Path, default=None, help="write stats and summary here")
    p.add_argument("--plot", type=Path, default=None, help="write the margin plot here (PNG)")
    args = p.parse_args(argv)

    d = load_config(args.config).model_dump()
    if args.orbit_frames:
        d["render"].update({"orbit_frames": args.orbit_frames, "fps": args.orbit_frames // 2, "clip_seconds": 2.0})
    cfg = Config.model_validate(d)
    jobs = [j for j in plan_jobs(cfg, progress=False) if j["defect"]]
    if args.jobs:
        want = args.jobs.split(",")
        jobs = [j for j in jobs if j["job_id"] in want]
    params = {"margins_px": [int(x) for x in args.margins.split(",")],
              "object_margins_px": [int(x) for x in args.object_margins.split(",") if x],
              "annotate": cfg.annotate.model_dump(mode="json")}
    work = args.work or Path(tempfile.mkdtemp(prefix="mmviad-fidelity-"))
    stats = []
    for j in jobs:
        print(f"fidelity: {j['job_id']} ({cfg.render.orbit_frames} frames)", flush=True)
        stats.append(run_job(j, cfg, work, params))
    summary = summarize(stats, cfg)
    print(f"\n{cfg.render.width}x{cfg.render.height}, {cfg.render.samples} spp, denoise {cfg.render.denoise}; region: "
          f"scope {cfg.render.region_scope}, margin {margin_px(cfg.render.region_margin, cfg.render.width)} px "
          f"(region_margin {cfg.render.region_margin})\n")
    print(table(summary, cfg.render.width))
    print("\nnoisy pixels the paint changed, share beyond a margin:",
          {k: round(v, 4) for k, v in summary["noisy_halo"]["share_beyond"].items()})
    print("Blender render time ratio (unmarked + marked) / unmarked:",
          {k: round(v, 3) for k, v in summary["blender_ratio"].items()})
    print("border renders vs the same region cut from the full render: max difference",
          summary["variants"]["region"]["vs_cut_max"])
    print("per job IoU (reference, region):", {k: (round(v["reference_iou"], 4), round(v["region_iou"], 4))
                                               for k, v in summary["jobs"].items()})
    if args.json:
        write_json(args.json, {"params": params, "summary": summary, "stats": stats})
    if args.plot:
        plot(summary, cfg.render.width, args.plot)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
