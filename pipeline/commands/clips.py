"""``mmviad clips``: cut orbits into 2-second H.264 clips and index them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..layout import Layout
from .common import add_command, fail_invalid, report, select_jobs, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "cut orbits into 2-second H.264 clips and map intervals to clip seconds"


def register(sub: Any) -> None:
    add_command(sub, "clips", run, HELP)


def run(args: argparse.Namespace) -> int:
    cfg, out = setup(args)
    invalid: dict[str, str] = {}
    return clips(args, cfg, out, select_jobs(args, cfg, out, invalid), invalid)


def clips(args: argparse.Namespace, cfg: Config, out: Path, jobs: list[dict[str, Any]],
          invalid: dict[str, str]) -> int:
    """Encode the clips of ``jobs`` (those in ``invalid`` fail), report, and write ``clips.jsonl``."""
    from ..clips import clip_jobs, gather_clips

    outcomes = clip_jobs([j for j in jobs if j["job_id"] not in invalid], cfg, out, progress=not args.no_progress)
    rc = report("clips", {**outcomes, **fail_invalid("clips", out, invalid)}, out)
    print(f"clips: {len(gather_clips(out))} clips indexed in {Layout(out).clips_jsonl()}")
    return rc
