"""``mmviad build``: every stage in order on one loaded config and one plan."""

from __future__ import annotations

import argparse
from typing import Any

from . import annotate, card, clips, plan, protocols, qa, render
from .common import add_command, count, select_jobs, setup

HELP = "plan, render, annotate, clips, qa, protocols and card in order"


def register(sub: Any) -> None:
    b = add_command(sub, "build", run, HELP)
    b.add_argument("--workers", type=count(0), default=None, help="parallel Blender processes (default: config)")
    b.add_argument("--force", action="store_true", help="recompute annotations even if up to date")


def run(args: argparse.Namespace) -> int:
    """All stages in order; later stages still run on whatever finished, and the exit code is
    non-zero if anything failed. The config is loaded once and planned once: every stage gets the
    loaded config and the jobs of that plan (of ``--jobs FILE`` for render, annotate and clips)."""
    from ..plan import load_jobs

    cfg, out = setup(args)
    path = plan.plan(args, cfg, out)
    invalid: dict[str, str] = {}
    jobs = select_jobs(args, cfg, out, invalid, plan=path)
    rc = 0
    for stage in (render.render, annotate.annotate, clips.clips):
        rc |= stage(args, cfg, out, jobs, invalid)
    if args.shard is None:
        everything = load_jobs(path)   # qa and the card cover the whole plan, whatever --jobs says
        rc |= qa.qa(cfg, out, everything)
        from ..eval.protocols import ProtocolNotApplicable

        try:
            rc |= protocols.protocols(cfg, out)
        except ProtocolNotApplicable as e:   # a valid small dataset: say so and go on to the card
            print(f"protocols: skipped ({e})")
        rc |= card.card(cfg, out, everything)
    return rc
