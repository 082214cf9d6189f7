"""``mmviad annotate``: per-frame mask and diff scores → visible intervals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..layout import Layout
from .common import add_command, fail_invalid, report, select_jobs, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "per-frame mask and diff scores → visible intervals in <out>/annotations/"


def register(sub: Any) -> None:
    a = add_command(sub, "annotate", run, HELP)
    a.add_argument("--force", action="store_true", help="recompute even if up to date")
    a.add_argument("--report", action="store_true", help="also write the diff-vs-mask agreement summary "
                   "(mean IoU, missed/spurious spans, worst jobs) and a plot to <out>/reports/")


def run(args: argparse.Namespace) -> int:
    cfg, out = setup(args)
    invalid: dict[str, str] = {}
    return annotate(args, cfg, out, select_jobs(args, cfg, out, invalid), invalid)


def annotate(args: argparse.Namespace, cfg: Config, out: Path, jobs: list[dict[str, Any]],
             invalid: dict[str, str]) -> int:
    """Annotate ``jobs`` (those in ``invalid`` fail), report, and print the visibility agreement
    (and with ``--report`` the diff-vs-mask agreement); the exit code."""
    from ..annotate import annotate_jobs

    ids = [j["job_id"] for j in jobs]
    outcomes = {**annotate_jobs([i for i in ids if i not in invalid], cfg, out, progress=not args.no_progress,
                                force=args.force), **fail_invalid("annotate", out, invalid)}
    rc = report("annotate", outcomes, out)
    from ..scenery.report import format_agreement, visibility_agreement

    ok = [j for j in jobs if not outcomes[j["job_id"]].failed]   # the reports read only sound files
    ids = [j["job_id"] for j in ok]
    vis = visibility_agreement(cfg, ok, out)  # planned (ray-cast) vs rendered visibility
    if vis["jobs"]:
        print(format_agreement(vis) + f" → {Layout(out).reports_dir() / 'visibility.json'}")
    if getattr(args, "report", False):
        from ..agreement import write_report

        s = write_report(out, ids)
        fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
        print(f"agreement: mean IoU {fmt(s['mean_iou'])} per orbit, {fmt(s['mean_clip_iou'])} per clip over "
              f"{s['jobs']} jobs; {s['missed']['spans']} missed / {s['spurious']['spans']} spurious spans "
              f"→ {Layout(out).reports_dir() / 'agreement.md'}")
    return rc
