"""``mmviad``: the command line. Every command takes ``--config PATH`` and ``--out DIR``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .config import Config, ConfigError, load_config

DEFAULT_CONFIG = Path("manifests/default.yaml")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="dataset config YAML (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: out/<config name>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shard", type=int, default=None, help="only this shard's jobs (0-based; default: all)")
    p.add_argument("--num-shards", type=int, default=None, help="re-shard into N shards (default: the config's)")


def _setup(args: argparse.Namespace) -> tuple[Config, Path]:
    cfg = load_config(args.config)
    out = args.out or Path("out") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    return cfg, out


def _jobs(args: argparse.Namespace, cfg: Config, out: Path) -> list[dict[str, Any]]:
    from .plan import load_jobs, write_plan

    path = write_plan(cfg, out)  # cheap and idempotent: every stage sees the plan it was configured with
    n = args.num_shards or cfg.num_shards
    if args.shard is not None and not (0 <= args.shard < n):
        raise ConfigError(f"--shard {args.shard} is out of range for {n} shard(s)")
    return load_jobs(path, getattr(args, "shard", None), args.num_shards)


def _report(stage: str, status: dict[str, str], out: Path, log_hint: str | None = None) -> int:
    counts: dict[str, int] = {}
    for s in status.values():
        key = "failed" if s.startswith("failed") else s
        counts[key] = counts.get(key, 0) + 1
    print(f"{stage}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else f"{stage}: no jobs")
    failed = {k: v for k, v in status.items() if v.startswith("failed")}
    for jid, msg in failed.items():
        hint = f" (log: {out / log_hint.format(job_id=jid)})" if log_hint else ""
        print(f"  FAILED {jid}: {msg.removeprefix('failed: ')}{hint}", file=sys.stderr)
    return 1 if failed else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan import write_plan

    cfg, out = _setup(args)
    path = write_plan(cfg, out)
    jobs = [json.loads(x) for x in path.read_text().splitlines()]
    n_def = sum(1 for j in jobs if j["defect"])
    frames = len(jobs) * cfg.render.orbit_frames
    print(f"plan: {len(jobs)} jobs ({n_def} defective, {len(jobs) - n_def} normal) in {cfg.num_shards} shard(s), "
          f"{frames} frames per pass, {len(jobs) * (cfg.render.orbit_frames // cfg.render.clip_frames)} clips → {path}")
    from .scenery.report import plan_summary
    print(plan_summary(cfg, jobs))
    if getattr(args, "estimate", False):
        from .estimate import calibrate, estimate, format_estimate

        cal = calibrate(cfg, jobs, out, args.calibration_frames, args.calibration_device)
        print(format_estimate(cfg, cal, estimate(cfg, jobs, cal)))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render.runner import render_jobs

    cfg, out = _setup(args)
    if args.workers is not None:
        cfg = Config.model_validate({**cfg.model_dump(), "render": {**cfg.render.model_dump(), "workers": args.workers}})
    jobs = _jobs(args, cfg, out)
    t0 = time.perf_counter()
    results = render_jobs(jobs, cfg, out, progress=not args.no_progress)
    status = {r.job_id: r.status if r.status != "failed" else f"failed: {r.error}" for r in results}
    rc = _report("render", status, out, "logs/render/{job_id}.log")
    print(f"render: {time.perf_counter() - t0:.1f} s wall")
    return rc


def cmd_annotate(args: argparse.Namespace) -> int:
    from .annotate import annotate_jobs

    cfg, out = _setup(args)
    jobs = _jobs(args, cfg, out)
    status = annotate_jobs([j["job_id"] for j in jobs], cfg, out, progress=not args.no_progress, force=args.force)
    from .scenery.report import format_agreement, visibility_agreement
    agreement = visibility_agreement(cfg, jobs, out)
    if agreement["jobs"]:
        print(format_agreement(agreement) + f" → {out / 'reports' / 'visibility.json'}")
    return _report("annotate", status, out)


def cmd_clips(args: argparse.Namespace) -> int:
    from .clips import clip_jobs, gather_clips

    cfg, out = _setup(args)
    jobs = _jobs(args, cfg, out)
    rc = _report("clips", clip_jobs(jobs, cfg, out, progress=not args.no_progress), out)
    print(f"clips: {len(gather_clips(out))} clips indexed in {out / 'clips.jsonl'}")
    return rc


def cmd_qa(args: argparse.Namespace) -> int:
    from .clips import gather_clips
    from .plan import load_jobs, write_plan
    from .qa import build_qa

    cfg, out = _setup(args)
    jobs = load_jobs(write_plan(cfg, out))
    clips = gather_clips(out)
    counts = build_qa(clips, jobs, cfg, out)
    done = {c["job_id"] for c in clips}
    missing = [j["job_id"] for j in jobs if j["job_id"] not in done]
    print(f"qa: {counts['train']} train / {counts['test']} test clips → {out / 'qa' / 'standard'}")
    if missing:
        print(f"qa: {len(missing)} job(s) have no clips yet (not rendered, or failed): {', '.join(missing[:5])}"
              f"{' …' if len(missing) > 5 else ''}", file=sys.stderr)
        return 1
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    from .contact_sheet import write_contact_sheet
    from .plan import load_jobs, write_plan

    cfg, out = _setup(args)
    dest = args.dest or out / "contact_sheet.png"
    write_contact_sheet(out, load_jobs(write_plan(cfg, out)), dest, args.columns, args.tile_width)
    print(f"sheet: {dest}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """All stages in order; later stages still run on whatever finished, and the exit code is
    non-zero if anything failed."""
    rc = 0
    for fn in (cmd_plan, cmd_render, cmd_annotate, cmd_clips):
        rc |= fn(args)
    if args.shard is None:
        rc |= cmd_qa(args)
    return rc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmviad", description=(
        "Render visibility-grounded multi-view defect videos with Blender and build a four-task video QA "
        "benchmark. Stages: plan → render → annotate → clips → qa (build runs them all)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, shard: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        _common(sp)
        if shard:
            _shard_args(sp)
        sp.set_defaults(func=fn)
        return sp

    pl = add("plan", cmd_plan, "resolve every random choice and write <out>/jobs.jsonl", shard=False)
    pl.add_argument("--estimate", action="store_true", help="also render a short calibration on this machine and "
                    "print the expected frames, disk and render hours")
    pl.add_argument("--calibration-frames", type=int, default=2, help="frames to time (default: %(default)s)")
    pl.add_argument("--calibration-device", choices=("cpu", "gpu"), default=None,
                    help="override render.device for the calibration (default: the config's)")
    r = add("render", cmd_render, "render a shard's jobs as Ray tasks, one fresh Blender process per job "
            "(local Ray, or the cluster named by RAY_ADDRESS)")
    r.add_argument("--workers", type=int, default=None, help="parallel Blender processes (default: config)")
    a = add("annotate", cmd_annotate, "per-frame mask and diff scores → visible intervals in <out>/annotations/")
    a.add_argument("--force", action="store_true", help="recompute even if up to date")
    add("clips", cmd_clips, "cut orbits into 2-second H.264 clips and map intervals to clip seconds")
    add("qa", cmd_qa, "write the four questions per clip to <out>/qa/standard/{train,test}.jsonl", shard=False)
    sh = add("sheet", cmd_sheet, "contact sheet PNG of unmarked and marked frames around each orbit", shard=False)
    sh.add_argument("--dest", type=Path, default=None, help="PNG path (default: <out>/contact_sheet.png)")
    sh.add_argument("--columns", type=int, default=6, help="frames per row (default: %(default)s)")
    sh.add_argument("--tile-width", type=int, default=240, help="tile width in pixels (default: %(default)s)")
    b = add("build", cmd_build, "plan, render, annotate, clips and qa in order")
    b.add_argument("--workers", type=int, default=None, help="parallel Blender processes (default: config)")
    b.add_argument("--force", action="store_true", help="recompute annotations even if up to date")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"mmviad: config error:\n{e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        print(f"mmviad: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
