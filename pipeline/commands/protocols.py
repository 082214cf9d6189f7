"""``mmviad protocols``: the Unseen protocol (held-out categories) in ``<out>/qa/unseen/``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..layout import Layout
from .common import add_command, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "write the Unseen protocol (held-out categories) to <out>/qa/unseen/"


def register(sub: Any) -> None:
    add_command(sub, "protocols", run, HELP, shard=False)


def run(args: argparse.Namespace) -> int:
    cfg, out = setup(args)
    return protocols(cfg, out)


def protocols(cfg: Config, out: Path) -> int:
    """Write the Unseen splits; raises :class:`~pipeline.eval.protocols.ProtocolNotApplicable` for a
    dataset too small to hold categories out."""
    from ..eval.protocols import build_unseen

    r = build_unseen(out, cfg)
    print(f"protocols: unseen {r['train']} train / {r['test']} test clips, held out: {', '.join(r['held_out'])} "
          f"→ {Layout(out).qa_dir('unseen')}")
    return 0
