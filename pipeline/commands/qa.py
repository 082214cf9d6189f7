"""``mmviad qa``: the four questions per clip in ``<out>/qa/standard/{train,test}.jsonl``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..layout import Layout
from .common import add_command, plan_path, setup

if TYPE_CHECKING:
    from ..config import Config

HELP = "write the four questions per clip to <out>/qa/standard/{train,test}.jsonl"


def register(sub: Any) -> None:
    add_command(sub, "qa", run, HELP, shard=False)


def run(args: argparse.Namespace) -> int:
    from ..plan import load_jobs

    cfg, out = setup(args)
    return qa(cfg, out, load_jobs(plan_path(args, cfg, out)))


def qa(cfg: Config, out: Path, jobs: list[dict[str, Any]]) -> int:
    """Write the standard QA splits for the clips of the plan's ``jobs``; 1 (with one line per job)
    when a job has no clips yet."""
    from ..clips import gather_clips
    from ..qa import build_qa

    clips = gather_clips(out)
    counts = build_qa(clips, jobs, cfg, out)
    done = {c["job_id"] for c in clips}
    missing = [j["job_id"] for j in jobs if j["job_id"] not in done]
    print(f"qa: {counts['train']} train / {counts['test']} test clips → {Layout(out).qa_dir('standard')}")
    if missing:
        print(f"qa: {len(missing)} job(s) have no clips yet (not rendered, or failed): {', '.join(missing[:5])}"
              f"{' …' if len(missing) > 5 else ''}", file=sys.stderr)
        for jid in missing:
            logs = [p for st in ("render", "annotate", "clips") for p in (Layout(out).log(st, jid),) if p.exists()]
            print(f"  MISSING {jid}: " + (f"(log: {logs[-1]})" if logs else "no log: not rendered yet"),
                  file=sys.stderr)
        return 1
    return 0
