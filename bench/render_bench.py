"""Render-pipeline benchmark (``make bench``): renders one job several ways in one run and prints
medians and ratios against the bare Blender render. It reports; it never passes or fails on time.

Ratios (targets from issue #8):
  overhead        end-to-end job wall time ÷ Blender's own render time for the same frames (≤ 1.05)
  paired/render   unmarked + marked + mask ÷ unmarked alone, `marked: render`             (≤ 2.0)
  paired/compos.  unmarked + mask + 2-D tint ÷ unmarked alone, `marked: composite`         (≤ 1.10)
  paired/region   unmarked + mask + region passes ÷ unmarked alone, `marked: region`     (≤ 1.3)
  post-render     annotate + clips + qa ÷ render wall                                     (≤ 3 %)
  parallelism     jobs/hour: 1 Blender × all cores vs N Blenders × 1 thread, vs bare rate  (≥ 0.9)
  memory          peak RSS of each Blender process and RSS of the long-lived Ray worker over
                  N sequential jobs (flat: processes are recycled per job)
  profiles        seconds per frame of the CPU profile and, with --paper-frames, the paper profile
                  and its paired cost with `marked: region` on frames that show the defect
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.annotate import annotate_jobs  # noqa: E402
from pipeline.clips import clip_jobs, gather_clips  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.io import read_json, write_json  # noqa: E402
from pipeline.plan import plan_jobs  # noqa: E402
from pipeline.qa import build_qa  # noqa: E402
from pipeline.render.blender import run_blender  # noqa: E402
from pipeline.render.job import render_job  # noqa: E402
from pipeline.render.runner import render_jobs  # noqa: E402
from pipeline.render.scene import build_mesh, scene_spec  # noqa: E402


def bench_config(base: Path, frames: int, overrides: dict[str, Any]) -> Config:
    """The base config with a short orbit (``frames`` frames = one clip) and render overrides."""
    d = load_config(base).model_dump()
    d["render"].update({"orbit_frames": frames, "fps": frames // 2, "clip_seconds": 2.0, **overrides})
    d["objects"]["normal_share"] = 0.0
    return Config.model_validate(d)


def bare_render(job: dict, cfg: Config, work: Path, marked: str, mask: bool,
                frames: list[int] | None = None) -> dict[str, float]:
    """One Blender process on one spec (optionally only the orbit ``frames``); returns its wall time,
    the sum of its per-frame render times and, in region mode, the region pass's share of pixels."""
    stage = work / f"bare-{marked}-{int(mask)}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    mesh = build_mesh(job, cfg)
    mesh.save(stage / "object.npz")
    spec = scene_spec(job, cfg, mesh, stage / "object.npz", stage)
    spec.update({"marked": marked, "mask_pass": mask})
    if frames is not None:
        spec["camera"]["frames"] = [spec["camera"]["frames"][i] for i in frames]
    write_json(stage / "scene.json", spec)
    t0 = time.perf_counter()
    code = run_blender(stage / "scene.json", stage / "blender.log", 3600)
    wall = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"Blender failed ({code}); see {stage / 'blender.log'}")
    meta = read_json(stage / "meta.json")
    t = meta["timings"]
    reg = meta.get("region", {})
    return {"wall": wall, "render": sum(t["unmarked_s"]) + sum(t["marked_s"]), "frames": len(t["unmarked_s"]),
            "unmarked": sum(t["unmarked_s"]), "marked": sum(t["marked_s"]),
            "region_frames": reg.get("frames_rendered", 0),
            "region_pixels": reg.get("pixels_rendered", 0) / (len(t["unmarked_s"]) * cfg.render.width * cfg.render.height)}


def median_of(repeats: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    runs = [fn() for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def pipeline_job(job: dict, cfg: Config, work: Path, tag: str) -> dict[str, float]:
    """The pipeline's own render_job (mesh, spec, Blender, verify, move, DONE) and post stages."""
    out = work / f"pipe-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = render_job(job, cfg, out)
    wall = time.perf_counter() - t0
    if res.state != "done":
        raise RuntimeError(f"pipeline job failed: {res.error}")
    t = read_json(out / "renders" / job["job_id"] / "meta.json")["timings"]
    t1 = time.perf_counter()
    annotate_jobs([job["job_id"]], cfg, out, progress=False)
    clip_jobs([job], cfg, out, progress=False)
    build_qa(gather_clips(out), [job], cfg, out)
    post = time.perf_counter() - t1
    return {"wall": wall, "render": sum(t["unmarked_s"]) + sum(t["marked_s"]), "post": post}


def throughput(jobs: list[dict], cfg: Config, work: Path, workers: int) -> float:
    """Jobs per hour through the Ray runner with ``workers`` Blender processes."""
    import ray

    d = cfg.model_dump()
    d["render"].update({"workers": workers, "threads": max(1, (os.cpu_count() or 1) // workers)})
    out = work / f"ray-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = render_jobs(jobs, Config.model_validate(d), out, progress=False)
    wall = time.perf_counter() - t0
    if any(r.state != "done" for r in res):
        raise RuntimeError(f"throughput run failed: {[r.error for r in res if r.error]}")
    ray.shutdown()  # each setting starts from a fresh local Ray
    return len(jobs) / wall * 3600


def memory_series(job: dict, cfg: Config, work: Path, n: int) -> dict[str, list[float]]:
    """Render ``n`` copies of a 4-frame job one after another through one Ray worker; return each
    Blender process's peak RSS and the worker's RSS after each job (MB)."""
    import ray

    d = cfg.model_dump()
    d["render"].update({"orbit_frames": 4, "fps": 2, "workers": 1, "threads": 0})
    small = Config.model_validate(d)
    jobs = [dict(job, job_id=f"{job['job_id']}-m{i:02d}") for i in range(n)]
    out = work / "memory"
    res = render_jobs(jobs, small, out, progress=False)
    ray.shutdown()
    if any(r.state != "done" for r in res):
        raise RuntimeError(f"memory run failed: {[r.error for r in res if r.error]}")
    return {"blender_peak_mb": [read_json(out / "renders" / j["job_id"] / "meta.json")["peak_rss_mb"] for j in jobs],
            "worker_rss_mb": [read_json(out / "renders" / j["job_id"] / "DONE")["worker_rss_mb"] for j in jobs]}


def orbit_costs(base: Path, work: Path, n: int) -> dict[str, Any]:
    """``marked: region`` on the first ``n`` jobs of the config at their full orbits: per job, the
    wall time of unmarked + mask + region in one Blender process ÷ the bare unmarked render alone."""
    cfg = Config.model_validate({**load_config(base).model_dump(), "render": {
        **load_config(base).render.model_dump(), "marked": "region"}})
    rows = {}
    for job in plan_jobs(cfg, progress=False)[:n]:
        alone = bare_render(job, cfg, work, "none", False)
        region = bare_render(job, cfg, work, "region", True)
        rows[job["job_id"]] = {"alone_s": alone["wall"], "region_s": region["wall"], "ratio": region["wall"] / alone["wall"],
                               "region_frames": region["region_frames"], "pixel_share": region["region_pixels"]}
        print(f"  {job['job_id']}: {rows[job['job_id']]['ratio']:.3f} ({region['region_frames']} region frames)", flush=True)
    total = sum(r["region_s"] for r in rows.values()) / sum(r["alone_s"] for r in rows.values())
    return {"jobs": rows, "paired_region_all": total}


def paper_config(base: Path, frames: int) -> Config:
    d = load_config(base).model_dump()
    d["render"] = {"profile": "paper", "device": "cpu", "orbit_frames": max(frames, 2), "fps": max(frames, 2) // 2,
                   "clip_seconds": 2.0}
    return Config.model_validate(d)


def paper_frame_cost(job: dict, base: Path, work: Path, frames: int) -> float:
    """Seconds per frame of the paper profile (1920x1080) rendered on this machine's device."""
    r = bare_render(job, paper_config(base, frames), work, "none", False)
    return r["render"] / r["frames"]


def paper_region_cost(base: Path, paper: Path, work: Path, frames: int) -> dict[str, float]:
    """``marked: region`` at the paper profile (1920x1080, its samples, OIDN HIGH, the paper
    config's local defects and region margin) on this machine's device: one defective job of the
    base config's first category planned with the paper config's object settings, ``frames``
    frames where the planner predicts the defect in view. Returns the paired cost on those frames
    (unmarked + mask + region ÷ unmarked alone) and the per-frame seconds of each pass."""
    d = load_config(paper).model_dump()
    d["objects"].update({"categories": load_config(base).objects.categories, "objects_per_category": 1,
                         "normal_share": 0.0})
    d["render"].update({"device": "cpu"})
    d["scene"]["visibility"]["target_share"] = None
    cfg = Config.model_validate(d)
    job = next(j for j in plan_jobs(cfg, progress=False) if j["defect"] and j["visibility"]["predicted_intervals"])
    seen = [f for s, e in job["visibility"]["predicted_intervals"] for f in range(s, e)]
    picks = [seen[int((k + 0.5) * len(seen) / frames)] for k in range(frames)]
    alone = bare_render(job, cfg, work, "none", False, picks)
    region = bare_render(job, cfg, work, "region", True, picks)
    return {"job": job["job_id"], "frames": picks, "paired_region_in_view": region["wall"] / alone["wall"],
            "s_unmarked_alone": alone["render"] / len(picks), "s_unmarked_with_passes": region["unmarked"] / len(picks),
            "s_region": region["marked"] / max(1, region["region_frames"]),
            "region_pixel_share": region["region_pixels"],
            "in_view_share": len(seen) / cfg.render.orbit_frames}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "manifests" / "default.yaml")
    p.add_argument("--frames", type=int, default=24, help="orbit frames of the bench job (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant; medians are reported")
    p.add_argument("--jobs", type=int, default=4, help="jobs in the parallelism comparison")
    p.add_argument("--memory-jobs", type=int, default=20, help="sequential jobs in the memory check (0: skip)")
    p.add_argument("--paper-frames", type=int, default=0,
                   help="also time this many frames of the paper profile (1920x1080; minutes per frame on a CPU)")
    p.add_argument("--paper-region-frames", type=int, default=0,
                   help="also time marked: region at the paper profile on this many in-view frames (minutes each)")
    p.add_argument("--paper-config", type=Path, default=ROOT / "manifests" / "mmviad.yaml")
    p.add_argument("--orbits", type=int, default=0,
                   help="also time marked: region against the bare render on the config's first N jobs at their full "
                        "orbits (7 = the whole default config, about 20 minutes here)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    # `marked: render` for the reference rows, so they compare with the figures measured before
    # `region` became the default; the region rows set it explicitly.
    cfg = bench_config(args.config, args.frames, {"marked": "render"})
    job = next(j for j in plan_jobs(cfg) if j["defect"])
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "processor": platform.processor()},
                               "settings": {**cfg.render.model_dump(), "job": job["job_id"]}}
    with tempfile.TemporaryDirectory(prefix="mmviad-bench-") as tmp:
        work = Path(tmp)
        print(f"bench: {job['job_id']}, {args.frames} frames at {cfg.render.width}x{cfg.render.height}, "
              f"{cfg.render.samples} spp, denoise {cfg.render.denoise}, {args.repeats} repeat(s)", flush=True)
        alone = median_of(args.repeats, lambda: bare_render(job, cfg, work, "none", False))
        paired_r = median_of(args.repeats, lambda: bare_render(job, cfg, work, "render", True))
        paired_g = median_of(args.repeats, lambda: bare_render(job, cfg, work, "region", True))
        comp_cfg = bench_config(args.config, args.frames, {"marked": "composite"})
        region_cfg = bench_config(args.config, args.frames, {"marked": "region"})
        pipe_r = median_of(args.repeats, lambda: pipeline_job(job, cfg, work, "render"))
        pipe_c = median_of(args.repeats, lambda: pipeline_job(job, comp_cfg, work, "composite"))
        pipe_g = median_of(args.repeats, lambda: pipeline_job(job, region_cfg, work, "region"))
        r = {
            "s_per_frame_unmarked": alone["render"] / alone["frames"],
            "overhead": pipe_r["wall"] / pipe_r["render"],
            "paired_render": pipe_r["wall"] / alone["wall"],
            "paired_composite": pipe_c["wall"] / alone["wall"],
            "paired_region": pipe_g["wall"] / alone["wall"],
            "blender_paired_render": paired_r["wall"] / alone["wall"],
            "blender_paired_region": paired_g["wall"] / alone["wall"],
            "region_frames": paired_g["region_frames"], "region_pixel_share": paired_g["region_pixels"],
            "post_render_share": pipe_r["post"] / pipe_r["wall"],
        }
        jobs = [dict(job, job_id=f"{job['job_id']}-b{i}") for i in range(args.jobs)]
        bare_rate = 3600 / pipe_r["render"]
        rates = {w: throughput(jobs, cfg, work, w) for w in sorted({1, os.cpu_count() or 1})}
        best = max(rates, key=rates.get)
        r.update({"bare_jobs_per_hour": bare_rate, **{f"jobs_per_hour_{w}_workers": v for w, v in rates.items()},
                  "best_workers": best, "parallel_vs_bare": rates[best] / bare_rate})
        if args.memory_jobs:
            mem = memory_series(job, cfg, work, args.memory_jobs)
            results["memory"] = mem
        if args.paper_frames:
            r["s_per_frame_paper"] = paper_frame_cost(job, args.config, work, args.paper_frames)
        if args.orbits:
            print(f"full orbits, marked: region vs the bare render ({args.orbits} jobs):", flush=True)
            results["orbits"] = orbit_costs(args.config, work, args.orbits)
        if args.paper_region_frames:
            results["paper_region"] = paper_region_cost(args.config, args.paper_config, work, args.paper_region_frames)
        results["ratios"] = r
        results["raw"] = {"unmarked_alone": alone, "blender_paired": paired_r, "blender_paired_region": paired_g,
                          "pipeline_render": pipe_r, "pipeline_composite": pipe_c, "pipeline_region": pipe_g}

    rows = [("per-frame cost (unmarked, Blender)", f"{r['s_per_frame_unmarked']:.3f} s", "–"),
            ("overhead: job wall ÷ Blender render time", f"{r['overhead']:.3f}", "≤ 1.05"),
            ("paired, marked: render ÷ unmarked alone", f"{r['paired_render']:.3f}", "≤ 2.0"),
            ("paired, marked: composite ÷ unmarked alone", f"{r['paired_composite']:.3f}", "≤ 1.10"),
            ("paired, marked: region ÷ unmarked alone", f"{r['paired_region']:.3f}", "≤ 1.3"),
            ("  region pass: frames rendered, share of pixels",
             f"{r['region_frames']}/{args.frames}, {100 * r['region_pixel_share']:.1f} %", "–"),
            ("post-render stages ÷ render wall", f"{100 * r['post_render_share']:.2f} %", "≤ 3 %"),
            *[(f"jobs/hour, {w} worker(s)", f"{v:.1f}", "–") for w, v in rates.items()],
            ("best parallel rate ÷ bare-Blender rate", f"{r['parallel_vs_bare']:.3f} ({best} worker(s))", "≥ 0.9")]
    if args.memory_jobs:
        for key, label in (("blender_peak_mb", "Blender peak RSS"), ("worker_rss_mb", "Ray worker RSS")):
            v = results["memory"][key]
            rows.append((f"{label}, job 1 / {len(v)} / max", f"{v[0]:.0f} / {v[-1]:.0f} / {max(v):.0f} MB", "flat"))
    if "s_per_frame_paper" in r:
        rows.append(("per-frame cost, paper profile (1920x1080)", f"{r['s_per_frame_paper']:.1f} s", "–"))
    if "orbits" in results:
        rows.append((f"paired, marked: region, {args.orbits} full orbits", f"{results['orbits']['paired_region_all']:.3f}",
                     "≤ 1.3"))
    if "paper_region" in results:
        pr = results["paper_region"]
        rows += [("paper profile, region: paired cost on in-view frames", f"{pr['paired_region_in_view']:.3f}", "–"),
                 ("  s/frame: unmarked alone / with passes / region",
                  f"{pr['s_unmarked_alone']:.1f} / {pr['s_unmarked_with_passes']:.1f} / {pr['s_region']:.1f}", "–"),
                 ("  region share of pixels; in-view share of the orbit",
                  f"{100 * pr['region_pixel_share']:.1f} %; {100 * pr['in_view_share']:.0f} %", "–")]
    width = max(len(a) for a, _, _ in rows)
    print(f"\n{'measure'.ljust(width)}  {'value':>22}  target")
    for a, b, c in rows:
        print(f"{a.ljust(width)}  {b:>22}  {c}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
