"""``mmviad card``: the dataset card ``<out>/README.md``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import add_command, plan_path, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "write the dataset card <out>/README.md with counts and plots"


def register(sub: Any) -> None:
    add_command(sub, "card", run, HELP, shard=False)


def run(args: argparse.Namespace) -> int:
    from ..plan import load_jobs

    cfg, out = setup(args)
    return card(cfg, out, load_jobs(plan_path(args, cfg, out)))


def card(cfg: Config, out: Path, jobs: list[dict[str, Any]]) -> int:
    """Write the card for the plan's ``jobs``."""
    from ..card import write_card

    print(f"card: {write_card(cfg, out, jobs)}")
    return 0
