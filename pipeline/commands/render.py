"""``mmviad render``: a shard's jobs as Ray tasks, one fresh Blender process per job."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import add_command, count, fail_invalid, report, select_jobs, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = ("render a shard's jobs as Ray tasks, one fresh Blender process per job "
        "(local Ray, or the cluster named by RAY_ADDRESS)")


def register(sub: Any) -> None:
    r = add_command(sub, "render", run, HELP)
    r.add_argument("--workers", type=count(0), default=None, help="parallel Blender processes (default: config)")


def run(args: argparse.Namespace) -> int:
    cfg, out = setup(args)
    invalid: dict[str, str] = {}
    return render(args, cfg, out, select_jobs(args, cfg, out, invalid), invalid)


def render(args: argparse.Namespace, cfg: Config, out: Path, jobs: list[dict[str, Any]],
           invalid: dict[str, str]) -> int:
    """Render ``jobs`` (those in ``invalid`` fail without rendering) and report; the exit code."""
    from ..farm import run_jobs

    t0 = time.perf_counter()
    # with a URL --out the tasks publish straight into the store; the working copy then pulls what
    # they published (pipeline/mirror.py)
    mirror = getattr(args, "mirror", None)
    dest = mirror.store.url if mirror is not None else out
    results = run_jobs([j for j in jobs if j["job_id"] not in invalid], cfg, dest, progress=not args.no_progress)
    if mirror is not None:
        mirror.refresh(not args.no_progress)
    done = {r.job_id: r for r in results}
    bad = fail_invalid("render", out, invalid)
    rc = report("render", {j["job_id"]: done.get(j["job_id"]) or bad[j["job_id"]] for j in jobs}, out, own_log=True)
    print(f"render: {time.perf_counter() - t0:.1f} s wall")
    return rc
