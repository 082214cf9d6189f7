"""``mmviad``: the command line. Every command takes ``--config PATH`` and ``--out DIR``."""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = "mmviad: interrupted; finished work is kept (rerun the command to continue)"
EXIT_INTERRUPTED = 130   # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while this module's imports still run (before :func:`main` can catch it): nothing has
    been done yet, so say so in one line and stop."""
    sys.stderr.write(INTERRUPTED + "\n")
    os._exit(EXIT_INTERRUPTED)


if (__name__ == "__main__" or os.path.basename(sys.argv[0]) == "mmviad") \
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Callable, Iterator  # noqa: E402

from .layout import Layout  # noqa: E402  (paths only: no heavy imports)

if TYPE_CHECKING:
    from .config import Config

DEFAULT_CONFIG = Path("manifests/default.yaml")


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style: one line, ``mmviad: error: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"mmviad: error: {self.prog.removeprefix('mmviad ')}: {message} (see {self.prog} --help)\n")


def _count(lo: int) -> Callable[[str], int]:
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


def _out(text: str) -> Any:
    """``--out``: a local folder (a ``Path``) or a store URL (kept as text; see :mod:`pipeline.mirror`)."""
    from .store import is_url, local_path

    return text if is_url(text) else local_path(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="dataset config YAML (default: %(default)s)")
    p.add_argument("--out", type=_out, default=None, help="output folder, or a URL fsspec understands such as "
                   "s3://bucket/dataset (default: out/<config name>)")
    p.add_argument("--cache", type=Path, default=None, help="with a URL --out: the local working copy "
                   "(default: $MMVIAD_CACHE or ~/.cache/mmviad, one folder per URL)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _num_shards_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-shards", type=_count(1), default=None, metavar="N",
                   help="split the jobs into N shards instead of the config's num_shards")


def _shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shard", type=_count(0), default=None, help="only this shard's jobs (0-based; default: all)")
    _num_shards_arg(p)
    p.add_argument("--jobs", type=Path, default=None, metavar="FILE",
                   help="use the jobs in FILE (e.g. a hand-edited jobs.jsonl) instead of re-planning from the config; "
                   "an invalid job fails alone")


def _setup(args: argparse.Namespace) -> tuple[Config, Path]:
    from .config import load_config, with_overrides

    cfg = load_config(args.config)
    n = getattr(args, "num_shards", None)
    if n is not None:  # --num-shards N stands for the config's num_shards in every stage (and the plan)
        cfg = with_overrides(cfg, {"num_shards": n}, f"--num-shards {n}")
    if getattr(args, "workers", None) is not None:
        cfg = with_overrides(cfg, {"render.workers": args.workers}, f"--workers {args.workers}")
    out = args.out or Path("out") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    _check_writable(out)
    return cfg, out


def _check_writable(out: Path) -> None:
    """Fail the command up front, in one line, when ``out`` cannot take a file (a read-only mount),
    instead of failing every job with the same error."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=out, prefix=".mmviad-write-check."):
            pass
    except OSError as e:
        raise OSError(e.errno, f"output folder is not writable ({e.strerror})", str(out)) from None


def _jobs(args: argparse.Namespace, cfg: Config, out: Path, invalid: dict[str, str] | None = None
          ) -> list[dict[str, Any]]:
    """The jobs of this run (a shard of the plan, or of ``--jobs FILE``). With ``invalid``, a job
    that fails :func:`pipeline.plan.check_job` is returned with its one-line error stored there."""
    from .config import ConfigError
    from .plan import load_jobs

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
    return load_jobs(_plan(args, cfg, out), getattr(args, "shard", None), args.num_shards, invalid)


def _plan(args: argparse.Namespace, cfg: Config, out: Path, fresh: bool = False) -> Path:
    """``<out>/jobs.jsonl`` of ``cfg`` (written anew with ``fresh``, else reused while its fingerprint
    matches). An unknown category is a config error naming the file and ``objects.categories``."""
    from .config import ConfigError
    from .objects.sources import catalog
    from .plan import ensure_plan, write_plan

    try:
        catalog(cfg)
    except KeyError as e:
        raise ConfigError(f"{args.config}: objects.categories: {e.args[0]}") from None
    return (write_plan if fresh else ensure_plan)(cfg, out, not args.no_progress)


def _fail_invalid(stage: str, out: Path, invalid: dict[str, str]) -> dict[str, str]:
    """Statuses for jobs rejected by :func:`pipeline.plan.check_job`; the render stage also records
    them like any failed render (``logs/render/<job_id>.{log,error.json}``)."""
    if stage == "render":
        from .render.job import record_failure

        for jid, msg in invalid.items():
            record_failure(out, jid, f"invalid job: {msg}")
    return {jid: f"failed: invalid job: {msg}" for jid, msg in invalid.items()}


def _report(stage: str, status: dict[str, str], out: Path, own_log: bool = False) -> int:
    """Print ``<stage>: N done, M failed, ...`` and one stderr line per failed job with the path to
    its log (``<out>/logs/<stage>/<job_id>.log``); return 1 when any job failed. A stage that does
    not write that log itself (``own_log`` False) gets the failure written there, so every summary
    line has one."""
    from .io import atomic_write_text

    counts: dict[str, int] = {}
    for s in status.values():
        key = "failed" if s.startswith("failed") else s
        counts[key] = counts.get(key, 0) + 1
    print(f"{stage}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else f"{stage}: no jobs")
    failed = {k: v for k, v in status.items() if v.startswith("failed")}
    for jid, msg in failed.items():
        log = Layout(out).log(stage, jid)
        if not own_log:
            try:
                atomic_write_text(log, f"{stage} failed: {msg.removeprefix('failed: ')}\n")
            except OSError:
                pass  # a full or read-only disk: the summary line below still says what failed
        hint = f" (log: {log})"
        print(f"  FAILED {jid}: {msg.removeprefix('failed: ')}{hint}", file=sys.stderr)
    return 1 if failed else 0


def cmd_plan(args: argparse.Namespace) -> int:
    cfg, out = _setup(args)
    path = _plan(args, cfg, out, fresh=True)
    jobs = [json.loads(x) for x in path.read_text().splitlines()]
    n_def = sum(1 for j in jobs if j["defect"])
    frames = len(jobs) * cfg.render.orbit_frames
    from .ids import clip_windows
    clips = len(jobs) * len(clip_windows(cfg.render.orbit_frames, cfg.render.clip_frames))
    print(f"plan: {len(jobs)} jobs ({n_def} defective, {len(jobs) - n_def} normal) in {cfg.num_shards} shard(s), "
          f"{frames} frames per pass, {clips} clips → {path}")
    from .scenery.report import plan_summary
    print(plan_summary(cfg, jobs))
    if getattr(args, "estimate", False):
        from .estimate import calibrate, estimate, format_estimate

        cal = calibrate(cfg, jobs, out, args.calibration_frames, args.calibration_device)
        print(format_estimate(cfg, cal, estimate(cfg, jobs, cal)))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .farm import run_jobs

    cfg, out = _setup(args)
    invalid: dict[str, str] = {}
    jobs = _jobs(args, cfg, out, invalid)
    t0 = time.perf_counter()
    # with a URL --out the tasks publish straight into the store; the working copy then pulls what
    # they published (pipeline/mirror.py)
    mirror = getattr(args, "mirror", None)
    dest = mirror.store.url if mirror is not None else out
    results = run_jobs([j for j in jobs if j["job_id"] not in invalid], cfg, dest, progress=not args.no_progress)
    if mirror is not None:
        mirror.refresh(not args.no_progress)
    done = {r.job_id: r.status if r.status != "failed" else f"failed: {r.error}" for r in results}
    bad = _fail_invalid("render", out, invalid)
    status = {j["job_id"]: done.get(j["job_id"]) or bad[j["job_id"]] for j in jobs}
    rc = _report("render", status, out, own_log=True)
    print(f"render: {time.perf_counter() - t0:.1f} s wall")
    return rc


def cmd_annotate(args: argparse.Namespace) -> int:
    from .annotate import annotate_jobs

    cfg, out = _setup(args)
    invalid: dict[str, str] = {}
    jobs = _jobs(args, cfg, out, invalid)
    ids = [j["job_id"] for j in jobs]
    status = {**annotate_jobs([i for i in ids if i not in invalid], cfg, out, progress=not args.no_progress,
                              force=args.force), **_fail_invalid("annotate", out, invalid)}
    rc = _report("annotate", status, out)
    from .scenery.report import format_agreement, visibility_agreement

    ok = [j for j in jobs if not status[j["job_id"]].startswith("failed")]   # the reports read only sound files
    ids = [j["job_id"] for j in ok]
    vis = visibility_agreement(cfg, ok, out)  # planned (ray-cast) vs rendered visibility
    if vis["jobs"]:
        print(format_agreement(vis) + f" → {Layout(out).reports_dir() / 'visibility.json'}")
    if getattr(args, "report", False):
        from .agreement import write_report

        s = write_report(out, ids)
        fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
        print(f"agreement: mean IoU {fmt(s['mean_iou'])} per orbit, {fmt(s['mean_clip_iou'])} per clip over "
              f"{s['jobs']} jobs; {s['missed']['spans']} missed / {s['spurious']['spans']} spurious spans "
              f"→ {Layout(out).reports_dir() / 'agreement.md'}")
    return rc


def cmd_clips(args: argparse.Namespace) -> int:
    from .clips import clip_jobs, gather_clips

    cfg, out = _setup(args)
    invalid: dict[str, str] = {}
    jobs = _jobs(args, cfg, out, invalid)
    status = clip_jobs([j for j in jobs if j["job_id"] not in invalid], cfg, out, progress=not args.no_progress)
    rc = _report("clips", {**status, **_fail_invalid("clips", out, invalid)}, out)
    print(f"clips: {len(gather_clips(out))} clips indexed in {Layout(out).clips_jsonl()}")
    return rc


def cmd_qa(args: argparse.Namespace) -> int:
    from .clips import gather_clips
    from .plan import load_jobs
    from .qa import build_qa

    cfg, out = _setup(args)
    jobs = load_jobs(_plan(args, cfg, out))
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


def cmd_sheet(args: argparse.Namespace) -> int:
    from .contact_sheet import write_contact_sheet
    from .plan import load_jobs

    cfg, out = _setup(args)
    dest = args.dest or Layout(out).contact_sheet()
    jobs = load_jobs(_plan(args, cfg, out))
    write_contact_sheet(out, jobs, dest, args.columns, args.tile_width)
    print(f"sheet: {dest}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from .card import write_card
    from .plan import load_jobs

    cfg, out = _setup(args)
    print(f"card: {write_card(cfg, out, load_jobs(_plan(args, cfg, out)))}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """All stages in order; later stages still run on whatever finished, and the exit code is
    non-zero if anything failed."""
    rc = 0
    for fn in (cmd_plan, cmd_render, cmd_annotate, cmd_clips):
        rc |= fn(args)
    if args.shard is None:
        rc |= cmd_qa(args)
        from .eval.protocols import ProtocolNotApplicable

        try:
            rc |= cmd_protocols(args)
        except ProtocolNotApplicable as e:   # a valid small dataset: say so and go on to the card
            print(f"protocols: skipped ({e})")
        rc |= cmd_card(args)
    return rc


# ---- eval (issue #6): protocols and eval subcommands --------------------------------------------
def cmd_protocols(args: argparse.Namespace) -> int:
    from .eval.protocols import build_unseen

    cfg, out = _setup(args)
    r = build_unseen(out, cfg)
    print(f"protocols: unseen {r['train']} train / {r['test']} test clips, held out: {', '.join(r['held_out'])} "
          f"→ {Layout(out).qa_dir('unseen')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import os

    from .eval.inputs import EvalInputError, check_positive, check_run_name
    from .eval.run import evaluate, load_split
    from .eval.runners import NoDefectRunner, PriorRunner, RandomRunner

    # bad flags fail before anything is created or sent
    name = check_run_name(args.name or args.runner)
    for flag, value in (("--limit", args.limit), ("--frames", args.frames), ("--batch-size", args.batch_size),
                        ("--max-tokens", args.max_tokens)):
        check_positive(value, flag)
    if args.max_pixels != 0 and args.max_pixels < 32 * 32:
        raise EvalInputError(f"--max-pixels must be 0 (native size) or at least {32 * 32}, got {args.max_pixels}")
    cfg, out = _setup(args)
    seed = cfg.seed if args.seed is None else args.seed
    if args.runner == "random":
        runner = RandomRunner(seed)
    elif args.runner == "prior":
        runner = PriorRunner(load_split(out, args.protocol, "train"))
    elif args.runner == "no-defect":
        runner = NoDefectRunner()
    elif args.runner == "predictions":
        from .eval.runners.predictions import PredictionsRunner

        if not args.predictions:
            raise ValueError("--runner predictions needs --predictions FILE")
        runner = PredictionsRunner(args.predictions)
    elif args.runner == "openai":
        from .eval.runners.openai_compat import OpenAIRunner

        if not args.base_url or not args.model:
            raise ValueError("--runner openai needs --base-url and --model")
        runner = OpenAIRunner(args.base_url, args.model, Layout(out).eval_dir(name) / "cache.jsonl",
                              api_key=os.environ.get(args.api_key_env), concurrency=args.concurrency,
                              retries=args.retries, timeout_s=args.timeout, max_tokens=args.max_tokens,
                              price_in=args.price_in, price_out=args.price_out)
    else:
        from .eval.runners.transformers_local import TransformersRunner

        if not args.model:
            raise ValueError("--runner transformers needs --model (a local path or HF id)")
        runner = TransformersRunner(args.model, max_new_tokens=args.max_tokens, batch_size=args.batch_size,
                                    processor=args.processor)
    rep = evaluate(runner, out, args.protocol, args.split, name=name, setting=args.setting, prompt=args.prompt,
                   n_frames=args.frames, seed=seed, limit=args.limit, progress=not args.no_progress,
                   max_pixels=args.max_pixels or None)
    print(rep["markdown"])
    if rep["runner_summary"]:
        print("runner: " + ", ".join(f"{k}={v}" for k, v in rep["runner_summary"].items()))
    print(f"eval: report → {Layout(out).eval_dir(rep['name'])} (answers not read: unparseable.jsonl)")
    return 1 if rep["errors"] else 0


def _eval_args(e: argparse.ArgumentParser) -> None:
    from .eval.frames import DEFAULT_MAX_PIXELS, EVAL_FRAMES

    e.add_argument("--runner", required=True,
                   choices=("random", "prior", "no-defect", "predictions", "openai", "transformers"),
                   help="baseline, a predictions file, or a model runner")
    e.add_argument("--protocol", default="standard", choices=("standard", "unseen"), help="default: %(default)s")
    e.add_argument("--split", default="test", choices=("train", "test"), help="default: %(default)s")
    e.add_argument("--name", default=None, help="report folder name under <out>/eval/, a plain id (default: the runner)")
    e.add_argument("--setting", default="0-shot", choices=("0-shot", "1-shot", "1-shot+", "knowledge"),
                   help="prompt setting for model runners (default: %(default)s)")
    e.add_argument("--prompt", default="main", choices=("main", "structured"), help="default: %(default)s")
    e.add_argument("--frames", type=int, default=EVAL_FRAMES, help="frames sampled per clip (default: %(default)s, "
                   "as in the paper)")
    e.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="resize each frame, aspect ratio kept, to sides that are multiples of 32 and at most this "
                   "many pixels (Qwen-VL's policy; default: %(default)s; 0 = native size)")
    e.add_argument("--seed", type=int, default=None, help="seed for random choices (default: the config's)")
    e.add_argument("--limit", type=int, default=None, help="only the first N clips (N >= 1)")
    e.add_argument("--predictions", type=Path, default=None,
                   help="--runner predictions: JSONL of {clip_id, response} to score")
    e.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    e.add_argument("--model", default=None, help="model name (openai) or path/HF id (transformers)")
    e.add_argument("--api-key-env", default="OPENAI_API_KEY", help="env var holding the API key (default: %(default)s)")
    e.add_argument("--concurrency", type=int, default=4, help="parallel requests (default: %(default)s)")
    e.add_argument("--retries", type=int, default=3, help="retries per request (default: %(default)s)")
    e.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default: %(default)s)")
    e.add_argument("--max-tokens", type=int, default=1024, help="default: %(default)s")
    e.add_argument("--batch-size", type=int, default=4, help="clips per generate call, transformers runner "
                   "(default: %(default)s)")
    e.add_argument("--processor", default="auto", choices=("auto", "trainer"),
                   help="transformers runner: the checkpoint's own processor, or the trainer's torch-only one "
                   "(for checkpoints of `make train`; needs .venv-train) (default: %(default)s)")
    e.add_argument("--price-in", type=float, default=0.0, help="USD per 1M prompt tokens, for the cost summary")
    e.add_argument("--price-out", type=float, default=0.0, help="USD per 1M completion tokens")
# ---- end eval -------------------------------------------------------------------------------------


def cmd_review_export(args: argparse.Namespace) -> int:
    from .review.export import export_review

    cfg, out = _setup(args)
    jobs = _jobs(args, cfg, out)
    r = export_review(out, cfg.name, jobs, _review_dest(args, cfg, out), args.candidates, args.ls_url_prefix)
    print(f"review export: {r['tasks']} clip(s) with {args.candidates} candidates → {r['html']} (open in a browser), "
          f"{r['tasks_json']} + {r['label_config']} (Label Studio)")
    return 0


def _review_dest(args: argparse.Namespace, cfg: Any, out: Path) -> Path:
    return args.dest or Layout(out).review_dir(cfg.name, args.shard)


def _ls_client(args: argparse.Namespace) -> Any:
    from .review.ls_client import LabelStudioClient

    return LabelStudioClient(args.url, args.token or os.environ.get("LABEL_STUDIO_API_KEY", ""))


def cmd_review_push(args: argparse.Namespace) -> int:
    from .review.labelstudio_sync import push_review

    cfg, out = _setup(args)
    jobs = _jobs(args, cfg, out)
    r = push_review(_ls_client(args), out, cfg.name, jobs, _review_dest(args, cfg, out), args.candidates, args.title,
                    args.new)
    print(f"review push: {r['tasks']} task(s) with {r['predictions']} prediction(s) → "
          f"Label Studio {r['label_studio']} "
          f"project {r['project']}: {r['url']}/projects/{r['project']}/data . When reviewed: `mmviad review pull`.")
    return 0


def cmd_review_pull(args: argparse.Namespace) -> int:
    from .review.labelstudio_sync import pull_review

    cfg, out = _setup(args)
    r = pull_review(_ls_client(args), out, _review_dest(args, cfg, out), args.project, args.by)
    _print_imported(f"review pull: project {r['project']} → {r['file']}; ", r)
    return 0


def _print_imported(prefix: str, r: dict[str, Any], origin: str = "") -> None:
    dec = ", ".join(f"{v} {k}" for k, v in r["decisions"].items()) or "none"
    print(f"{prefix}{r['reviews']} clip review(s){origin} ({dec}) into {r['jobs']} annotation file(s); "
          f"{r['skipped']} task(s) without an annotation skipped. Next: `mmviad clips` and `mmviad qa`.")


def cmd_review_import(args: argparse.Namespace) -> int:
    from .review.importer import import_reviews

    _, out = _setup(args)
    r = import_reviews(args.file, out, args.by)
    _print_imported("review import: ", r, f" from a {r['kind']} file")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mmviad", description=(
        "Render visibility-grounded multi-view defect videos with Blender and build a four-task video QA "
        "benchmark. Stages: plan → render → annotate → clips → qa (build runs them all)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, shard: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        _common(sp)
        if shard:
            _shard_args(sp)
        sp.set_defaults(func=fn)
        return sp

    pl = add("plan", cmd_plan, "resolve every random choice and write <out>/jobs.jsonl", shard=False)
    _num_shards_arg(pl)
    pl.add_argument("--estimate", action="store_true", help="also render a short calibration on this machine and "
                    "print the expected frames, disk and render hours")
    pl.add_argument("--calibration-frames", type=_count(1), default=2, help="frames to time (default: %(default)s)")
    pl.add_argument("--calibration-device", choices=("cpu", "gpu"), default=None,
                    help="override render.device for the calibration (default: the config's)")
    r = add("render", cmd_render, "render a shard's jobs as Ray tasks, one fresh Blender process per job "
            "(local Ray, or the cluster named by RAY_ADDRESS)")
    r.add_argument("--workers", type=_count(0), default=None, help="parallel Blender processes (default: config)")
    a = add("annotate", cmd_annotate, "per-frame mask and diff scores → visible intervals in <out>/annotations/")
    a.add_argument("--force", action="store_true", help="recompute even if up to date")
    a.add_argument("--report", action="store_true", help="also write the diff-vs-mask agreement summary "
                   "(mean IoU, missed/spurious spans, worst jobs) and a plot to <out>/reports/")
    add("clips", cmd_clips, "cut orbits into 2-second H.264 clips and map intervals to clip seconds")
    add("qa", cmd_qa, "write the four questions per clip to <out>/qa/standard/{train,test}.jsonl", shard=False)
    add("card", cmd_card, "write the dataset card <out>/README.md with counts and plots", shard=False)
    sh = add("sheet", cmd_sheet, "contact sheet PNG of unmarked and marked frames around each orbit", shard=False)
    sh.add_argument("--dest", type=Path, default=None, help="PNG path (default: <out>/contact_sheet.png)")
    sh.add_argument("--columns", type=_count(1), default=6, help="frames per row (default: %(default)s)")
    sh.add_argument("--tile-width", type=_count(16), default=240, help="tile width in pixels (default: %(default)s)")
    b = add("build", cmd_build, "plan, render, annotate, clips, qa, protocols and card in order")
    b.add_argument("--workers", type=_count(0), default=None, help="parallel Blender processes (default: config)")
    b.add_argument("--force", action="store_true", help="recompute annotations even if up to date")
    add("protocols", cmd_protocols, "write the Unseen protocol (held-out categories) to <out>/qa/unseen/", shard=False)
    _eval_args(add("eval", cmd_eval, "run a baseline or model on a QA split, print the paper-style table and write "
                   "<out>/eval/<name>/{report.md,report.json,predictions.jsonl}", shard=False))
    from .objects.commands import register as register_objects
    register_objects(sub)
    rv = sub.add_parser("review", help="export candidate intervals for annotators; import their corrections",
                        description="The review loop: `review export` writes a Label Studio project and a "
                        "standalone HTML page; `review import FILE` stores the reviewed intervals.")
    rsub = rv.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    ex = rsub.add_parser("export", help="Label Studio project + standalone HTML review page for encoded clips",
                         description="Write <dest>/labelstudio/{label_config.xml,tasks.json} and <dest>/review.html "
                         "for every encoded clip (of one shard with --shard).")
    _common(ex)
    _shard_args(ex)
    ex.add_argument("--dest", type=Path, default=None, help="output folder (default: <out>/review/<name>[-shard<k>])")
    ex.add_argument("--candidates", choices=("diff", "mask"), default="diff",
                    help="which automatic intervals to propose (default: %(default)s)")
    ex.add_argument("--ls-url-prefix", default="/data/local-files/?d=",
                    help="prefix for clip paths (relative to <out>) in Label Studio tasks (default: %(default)s; "
                    "start Label Studio with LOCAL_FILES_DOCUMENT_ROOT=<out>)")
    ex.set_defaults(func=cmd_review_export)
    for name, fn, text in (
            ("push", cmd_review_push, "export, then create a project in a running Label Studio, connect <out>/clips as "
             "Local Storage and import the tasks with their candidate intervals as predictions (Label Studio must "
             "run with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<out>)"),
            ("pull", cmd_review_pull, "fetch the project's full JSON export into <dest>/labelstudio/ and import it "
             "(as `review import FILE`)")):
        sp = rsub.add_parser(name, help=text.split(" (")[0], description=text)
        _common(sp)
        _shard_args(sp)
        sp.add_argument("--dest", type=Path, default=None, help="review folder (default: <out>/review/<name>[-shard<k>])")
        sp.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL", "http://localhost:8080"),
                        help="Label Studio URL (default: $LABEL_STUDIO_URL or %(default)s)")
        sp.add_argument("--token", default=None, help="API token (default: $LABEL_STUDIO_API_KEY); a personal "
                        "access token or a legacy token")
        if name == "push":
            sp.add_argument("--candidates", choices=("diff", "mask"), default="diff",
                            help="which automatic intervals to propose (default: %(default)s)")
            sp.add_argument("--title", default=None, help="project title (default: mmviad <dest folder name>)")
            sp.add_argument("--new", action="store_true", help="create another project even though <dest> "
                            "records one that still exists")
        else:
            sp.add_argument("--project", type=int, default=None,
                            help="project id (default: the one `review push` recorded in <dest>/labelstudio/project.json)")
            sp.add_argument("--by", default=None, help="reviewer name where the export does not name one")
        sp.set_defaults(func=fn)
    im = rsub.add_parser("import", help="store reviewed intervals from a Label Studio JSON export or the page's JSON",
                         description="Validate FILE completely (nothing is written if any task is bad), then store "
                         "the reviewed intervals with who/when in <out>/annotations/<job_id>.json.")
    im.add_argument("file", type=Path, metavar="FILE", help="Label Studio JSON export or the review page's download")
    _common(im)
    im.add_argument("--by", default=None, help="reviewer name when FILE does not carry one")
    im.set_defaults(func=cmd_review_import)
    return p


def _one_line(e: BaseException) -> str:
    """The message of an expected failure as one line (a KeyError's text without its quotes)."""
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(text):
        text = f"{e.filename}: {text}"
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return "; ".join(lines) or type(e).__name__


#: failures a user can cause and fix (bad input, a missing or unwritable file, a failed service);
#: anything else is a bug and keeps its traceback
EXPECTED = (ValueError, KeyError, RuntimeError, OSError)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C back while the heavy modules are imported; it is delivered right after. trimesh's
    optional imports catch ``BaseException``, so an interrupt landing there would be swallowed and
    the command would run on."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Expected failures print one line and exit 2; Ctrl-C prints one line and
    exits 130 (finished work is kept: every output is written atomically); bugs keep their traceback."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)   # from here on: KeyboardInterrupt
    try:
        with _ctrl_c_held():
            import trimesh  # noqa: F401  (the parser's `objects` commands import it anyway)

            from . import config  # noqa: F401
            parser = build_parser()
        args = parser.parse_args(argv)
        from .mirror import dataset_folder

        with dataset_folder(args, progress=not getattr(args, "no_progress", False)):
            return args.func(args)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED as e:  # ReviewError, RecordError, DataError, ValidationError are ValueErrors
        from .config import ConfigError

        kind = "config error" if isinstance(e, ConfigError) else "error"
        print(f"mmviad: {kind}: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
