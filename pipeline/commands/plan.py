"""``mmviad plan``: resolve every random choice and write ``<out>/jobs.jsonl``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import add_command, count, num_shards_arg, plan_path, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "resolve every random choice and write <out>/jobs.jsonl"


def register(sub: Any) -> None:
    pl = add_command(sub, "plan", run, HELP, shard=False)
    num_shards_arg(pl)
    pl.add_argument("--estimate", action="store_true", help="also render a short calibration on this machine and "
                    "print the expected frames, disk and render hours")
    pl.add_argument("--calibration-frames", type=count(1), default=2, help="frames to time (default: %(default)s)")
    pl.add_argument("--calibration-device", choices=("cpu", "gpu"), default=None,
                    help="override render.device for the calibration (default: the config's)")


def run(args: argparse.Namespace) -> int:
    cfg, out = setup(args)
    plan(args, cfg, out)
    return 0


def plan(args: argparse.Namespace, cfg: Config, out: Path) -> Path:
    """Write the plan anew, print its summary (and with ``--estimate`` the calibrated estimate);
    return the path of ``jobs.jsonl``."""
    path = plan_path(args, cfg, out, fresh=True)
    jobs = [json.loads(x) for x in path.read_text().splitlines()]
    n_def = sum(1 for j in jobs if j["defect"])
    frames = len(jobs) * cfg.render.orbit_frames
    from ..ids import clip_windows
    clips = len(jobs) * len(clip_windows(cfg.render.orbit_frames, cfg.render.clip_frames))
    print(f"plan: {len(jobs)} jobs ({n_def} defective, {len(jobs) - n_def} normal) in {cfg.num_shards} shard(s), "
          f"{frames} frames per pass, {clips} clips → {path}")
    from ..scenery.report import plan_summary
    print(plan_summary(cfg, jobs))
    if getattr(args, "estimate", False):
        from ..estimate import calibrate, estimate, format_estimate

        cal = calibrate(cfg, jobs, out, args.calibration_frames, args.calibration_device)
        print(format_estimate(cfg, cal, estimate(cfg, jobs, cal)))
    return path
