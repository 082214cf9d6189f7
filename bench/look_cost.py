"""Per-frame render cost of each look (environment, floor, material) of a config.

For every job of the config (or the first ``--jobs``), Blender renders ``--frames`` unmarked frames
spread evenly over the orbit (mask pass on, no marked pass), in one process per job, and the script
prints the median seconds per frame (the first frame, which also compiles shaders and builds the
BVH, is reported apart). ``--environments`` renders every job once per named environment instead
of its own, so environment kinds can be compared on the same objects and framing. It reports; it
never passes or fails on time. ``--keep DIR`` keeps the rendered frames (for looking at them).

    .venv/bin/python bench/look_cost.py --config manifests/default.yaml --frames 6 --json before.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_config  # noqa: E402
from pipeline.io import read_json, write_json  # noqa: E402
from pipeline.plan import plan_jobs  # noqa: E402
from pipeline.render.blender import run_blender  # noqa: E402
from pipeline.render.scene import build_mesh, scene_spec  # noqa: E402


def _environment(cfg, job: dict[str, Any], name: str) -> dict[str, Any]:
    """The job's environment redrawn as ``name`` (same per-job seed, so the same across runs)."""
    from pipeline.scenery.catalog import load_catalog
    from pipeline.scenery.looks import sample_environment
    from pipeline.seeds import rng_for

    s = cfg.scene
    return sample_environment(rng_for(cfg.seed, job["job_id"], "environment"), load_catalog(s.assets), [name],
                              s.hdri_dir, 0.0, s.hdri_strength)


def render_frames(job: dict[str, Any], cfg, work: Path, frames: int, tag: str) -> dict[str, Any]:
    """Render ``frames`` evenly spaced unmarked frames of ``job``; return its per-frame times."""
    stage = work / f"{job['job_id']}-{tag}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    mesh = build_mesh(job, cfg)
    mesh.save(stage / "object.npz")
    spec = scene_spec(job, cfg, mesh, stage / "object.npz", stage)
    all_frames = spec["camera"]["frames"]
    step = max(1, len(all_frames) // frames)
    spec["camera"]["frames"] = all_frames[::step][:frames]
    spec.update({"marked": "composite"})
    write_json(stage / "scene.json", spec)
    t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    code = run_blender(stage / "scene.json", stage / "blender.log", 3600)
    wall, ru1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if code != 0:
        raise RuntimeError(f"Blender failed ({code}); see {stage / 'blender.log'}")
    meta = read_json(stage / "meta.json")
    t = meta["timings"]["unmarked_s"]
    return {"job": job["job_id"], "tag": tag, "environment": spec["environment"]["name"],
            "env_kind": spec["environment"]["kind"], "floor": spec["floor"]["name"],
            "material": spec["material"]["name"], "first_s": t[0],
            "median_s": statistics.median(t[1:] if len(t) > 1 else t), "frames": len(t), "wall_s": wall,
            "cpu_s": cpu, "cpu_s_per_frame": cpu / len(t),
            "setup_s": meta["timings"]["setup_s"], "dir": str(stage)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "manifests" / "default.yaml")
    p.add_argument("--frames", type=int, default=6, help="frames per job, spread over the orbit (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=0, help="only the first N jobs (0: all)")
    p.add_argument("--environments", nargs="*", default=None,
                   help="render every job once per named environment instead of its own")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                   help="override a config value, e.g. render.samples=16 (repeatable)")
    p.add_argument("--keep", type=Path, default=None, help="keep the rendered frames under this folder")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)

    cfg = load_config(args.config)
    if args.set:
        d = cfg.model_dump(mode="json")
        for item in args.set:
            key, _, value = item.partition("=")
            section, _, name = key.partition(".")
            d[section][name] = json.loads(value)
        cfg = type(cfg).model_validate(d)
    jobs = plan_jobs(cfg, progress=False)
    if args.jobs:
        jobs = jobs[: args.jobs]
    rows = []
    work_ctx = tempfile.TemporaryDirectory(prefix="mmviad-look-") if args.keep is None else None
    work = Path(work_ctx.name) if work_ctx else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        for job in jobs:
            variants = [(job, "own")]
            if args.environments:
                variants = [(dict(job, environment=_environment(cfg, job, e)), e) for e in args.environments]
            for j, tag in variants:
                r = render_frames(j, cfg, work, args.frames, tag)
                rows.append(r)
                print(f"{r['job']:<28} {r['environment']:<26} {r['env_kind']:<7} {r['floor']:<13} "
                      f"{r['material']:<22} first {r['first_s']:6.3f} s  median {r['median_s']:6.3f} s/frame  "
                      f"CPU {r['cpu_s_per_frame']:6.3f} s/frame (process, incl. start-up)",
                      flush=True)
    finally:
        if work_ctx:
            work_ctx.cleanup()
    med = statistics.median(r["median_s"] for r in rows)
    cpu = statistics.median(r["cpu_s_per_frame"] for r in rows)
    print(f"all: median {med:.3f} s/frame (wall), {cpu:.3f} CPU-s/frame, over {len(rows)} render(s) at "
          f"{cfg.render.width}x{cfg.render.height}, {cfg.render.samples} spp, denoise {cfg.render.denoise}")
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(r["env_kind"], []).append(r)
    for k, v in sorted(by_kind.items()):
        print(f"  {k:<8} median {statistics.median(r['median_s'] for r in v):.3f} s/frame, "
              f"{statistics.median(r['cpu_s_per_frame'] for r in v):.3f} CPU-s/frame ({len(v)} render(s))")
    if args.json:
        args.json.write_text(json.dumps({"settings": cfg.render.model_dump(mode="json"), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
