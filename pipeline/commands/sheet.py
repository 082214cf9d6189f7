"""``mmviad sheet``: a contact sheet PNG of unmarked and marked frames around each orbit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..layout import Layout
from .common import add_command, count, plan_path, setup

HELP = "contact sheet PNG of unmarked and marked frames around each orbit"


def register(sub: Any) -> None:
    sh = add_command(sub, "sheet", run, HELP, shard=False)
    sh.add_argument("--dest", type=Path, default=None, help="PNG path (default: <out>/contact_sheet.png)")
    sh.add_argument("--columns", type=count(1), default=6, help="frames per row (default: %(default)s)")
    sh.add_argument("--tile-width", type=count(16), default=240, help="tile width in pixels (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..contact_sheet import write_contact_sheet
    from ..plan import load_jobs

    cfg, out = setup(args)
    dest = args.dest or Layout(out).contact_sheet()
    jobs = load_jobs(plan_path(args, cfg, out))
    write_contact_sheet(out, jobs, dest, args.columns, args.tile_width)
    print(f"sheet: {dest}")
    return 0
