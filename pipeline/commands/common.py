"""What the commands share: the common flags, loading the config (:func:`setup`), choosing this run's
jobs (:func:`select_jobs`, :func:`plan_path`) and the per-stage report (:func:`report`).

Imports stay light (argparse, paths): the parser is built before any command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..layout import Layout

if TYPE_CHECKING:
    from ..config import Config
    from ..outcome import JobOutcome

DEFAULT_CONFIG = Path("manifests/default.yaml")

#: what a command runs: parsed arguments in, exit code out
Run = Callable[[argparse.Namespace], int]


def count(lo: int) -> Callable[[str], int]:
    """An argparse type: a whole number ``>= lo``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v
    parse.__name__ = f"whole number >= {lo}"
    return parse


def out_arg(text: str) -> Any:
    """``--out``: a local folder (a ``Path``) or a store URL (kept as text; see :mod:`pipeline.mirror`)."""
    from ..store import is_url, local_path

    return text if is_url(text) else local_path(text)


def common_args(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--out``, ``--cache``, ``--no-progress``: every dataset command takes them."""
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="dataset config YAML (default: %(default)s)")
    p.add_argument("--out", type=out_arg, default=None, help="output folder, or a URL fsspec understands such as "
                   "s3://bucket/dataset (default: out/<config name>)")
    p.add_argument("--cache", type=Path, default=None, help="with a URL --out: the local working copy "
                   "(default: $MMVIAD_CACHE or ~/.cache/mmviad, one folder per URL)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def num_shards_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-shards", type=count(1), default=None, metavar="N",
                   help="split the jobs into N shards instead of the config's num_shards")


def shard_args(p: argparse.ArgumentParser) -> None:
    """``--shard``, ``--num-shards``, ``--jobs FILE``: the commands that work on a shard's jobs."""
    p.add_argument("--shard", type=count(0), default=None, help="only this shard's jobs (0-based; default: all)")
    num_shards_arg(p)
    p.add_argument("--jobs", type=Path, default=None, metavar="FILE",
                   help="use the jobs in FILE (e.g. a hand-edited jobs.jsonl) instead of re-planning from the config; "
                   "an invalid job fails alone")


def add_command(sub: Any, name: str, run: Run, help_: str, shard: bool = True) -> argparse.ArgumentParser:
    """A subcommand ``name`` with the common flags (and the shard flags with ``shard``) that runs ``run``."""
    sp = sub.add_parser(name, help=help_, description=help_)
    common_args(sp)
    if shard:
        shard_args(sp)
    sp.set_defaults(func=run)
    return sp


def setup(args: argparse.Namespace) -> tuple[Config, Path]:
    """The config (with ``--num-shards`` and ``--workers`` applied) and the output folder, created
    and checked writable. ``mmviad build`` calls this once for all its stages."""
    from ..config import load_config, with_overrides

    cfg = load_config(args.config)
    n = getattr(args, "num_shards", None)
    if n is not None:  # --num-shards N stands for the config's num_shards in every stage (and the plan)
        cfg = with_overrides(cfg, {"num_shards": n}, f"--num-shards {n}")
    if getattr(args, "workers", None) is not None:
        cfg = with_overrides(cfg, {"render.workers": args.workers}, f"--workers {args.workers}")
    out = args.out or Path("out") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out)
    return cfg, out


def check_writable(out: Path) -> None:
    """Fail the command up front, in one line, when ``out`` cannot take a file (a read-only mount),
    instead of failing every job with the same error."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=out, prefix=".mmviad-write-check."):
            pass
    except OSError as e:
        raise OSError(e.errno, f"output folder is not writable ({e.strerror})", str(out)) from None


def plan_path(args: argparse.Namespace, cfg: Config, out: Path, fresh: bool = False) -> Path:
    """``<out>/jobs.jsonl`` of ``cfg`` (written anew with ``fresh``, else reused while its fingerprint
    matches). An unknown category is a config error naming the file and ``objects.categories``."""
    from ..config import ConfigError
    from ..objects.sources import catalog
    from ..plan import ensure_plan, write_plan

    try:
        catalog(cfg)
    except KeyError as e:
        raise ConfigError(f"{args.config}: objects.categories: {e.args[0]}") from None
    return (write_plan if fresh else ensure_plan)(cfg, out, not args.no_progress)


def select_jobs(args: argparse.Namespace, cfg: Config, out: Path, invalid: dict[str, str] | None = None,
                plan: Path | None = None) -> list[dict[str, Any]]:
    """The jobs of this run (a shard of the plan, or of ``--jobs FILE``). With ``invalid``, a job
    that fails :func:`pipeline.plan.check_job` is returned with its one-line error stored there.
    ``plan`` is a plan this run already made (``mmviad build``); without it the plan is reused
    while its fingerprint matches, else made again (:func:`plan_path`)."""
    from ..config import ConfigError
    from ..plan import load_jobs

    n = args.num_shards or cfg.num_shards
    if args.shard is not None and not (0 <= args.shard < n):
        raise ConfigError(f"--shard {args.shard} is out of range for {n} shard(s)")
    if getattr(args, "jobs", None) is not None:
        if not args.jobs.exists():
            raise FileNotFoundError(f"{args.jobs}: jobs file not found")
        jobs = load_jobs(args.jobs, None, args.num_shards, invalid)
        if not jobs:   # an empty file is a mistake, not "nothing to do"
            raise ValueError(f"{args.jobs}: no jobs in the file (expected one job object per line)")
        return [j for j in jobs if args.shard is None or j.get("shard") == args.shard]
    # re-plans only when the config or the object sources changed
    return load_jobs(plan or plan_path(args, cfg, out), getattr(args, "shard", None), args.num_shards, invalid)


def fail_invalid(stage: str, out: Path, invalid: dict[str, str]) -> dict[str, JobOutcome]:
    """Outcomes for jobs rejected by :func:`pipeline.plan.check_job`; the render stage also records
    them like any failed render (``logs/render/<job_id>.{log,error.json}``)."""
    from ..outcome import JobOutcome

    if stage == "render":
        from ..render.job import record_failure

        for jid, msg in invalid.items():
            record_failure(out, jid, f"invalid job: {msg}")
    return {jid: JobOutcome.failure(jid, f"invalid job: {msg}") for jid, msg in invalid.items()}


def report(stage: str, outcomes: dict[str, JobOutcome], out: Path, own_log: bool = False) -> int:
    """Print ``<stage>: N done, M failed, ...`` and one stderr line per failed job with the path to
    its log (``<out>/logs/<stage>/<job_id>.log``); return 1 when any job failed. A stage that does
    not write that log itself (``own_log`` False) gets the failure written there, so every summary
    line has one."""
    from ..io import atomic_write_text

    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[o.state.value] = counts.get(o.state.value, 0) + 1
    print(f"{stage}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else f"{stage}: no jobs")
    failed = {k: o for k, o in outcomes.items() if o.failed}
    for jid, o in failed.items():
        log = Layout(out).log(stage, jid)
        if not own_log:
            try:
                atomic_write_text(log, f"{stage} failed: {o.error}\n")
            except OSError:
                pass  # a full or read-only disk: the summary line below still says what failed
        print(f"  FAILED {jid}: {o.error} (log: {log})", file=sys.stderr)
    return 1 if failed else 0
