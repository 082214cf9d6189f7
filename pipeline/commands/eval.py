"""``mmviad eval``: run a baseline or a model on a QA split and write its report."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..layout import Layout
from .common import add_command, setup

HELP = ("run a baseline or model on a QA split, print the paper-style table and write "
        "<out>/eval/<name>/{report.md,report.json,predictions.jsonl}")


def register(sub: Any) -> None:
    eval_args(add_command(sub, "eval", run, HELP, shard=False))


def run(args: argparse.Namespace) -> int:
    """Score a runner on a QA split; 1 when some answers could not be scored."""
    from ..eval.inputs import EvalInputError, check_positive, check_run_name
    from ..eval.run import evaluate, load_split
    from ..eval.runners import NoDefectRunner, PriorRunner, RandomRunner

    # bad flags fail before anything is created or sent
    name = check_run_name(args.name or args.runner)
    for flag, value in (("--limit", args.limit), ("--frames", args.frames), ("--batch-size", args.batch_size),
                        ("--max-tokens", args.max_tokens)):
        check_positive(value, flag)
    if args.max_pixels != 0 and args.max_pixels < 32 * 32:
        raise EvalInputError(f"--max-pixels must be 0 (native size) or at least {32 * 32}, got {args.max_pixels}")
    cfg, out = setup(args)
    seed = cfg.seed if args.seed is None else args.seed
    if args.runner == "random":
        runner = RandomRunner(seed)
    elif args.runner == "prior":
        runner = PriorRunner(load_split(out, args.protocol, "train"))
    elif args.runner == "no-defect":
        runner = NoDefectRunner()
    elif args.runner == "predictions":
        from ..eval.runners.predictions import PredictionsRunner

        if not args.predictions:
            raise ValueError("--runner predictions needs --predictions FILE")
        runner = PredictionsRunner(args.predictions)
    elif args.runner == "openai":
        from ..eval.runners.openai_compat import OpenAIRunner

        if not args.base_url or not args.model:
            raise ValueError("--runner openai needs --base-url and --model")
        runner = OpenAIRunner(args.base_url, args.model, Layout(out).eval_dir(name) / "cache.jsonl",
                              api_key=os.environ.get(args.api_key_env), concurrency=args.concurrency,
                              retries=args.retries, timeout_s=args.timeout, max_tokens=args.max_tokens,
                              price_in=args.price_in, price_out=args.price_out)
    else:
        from ..eval.runners.transformers_local import TransformersRunner

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


def eval_args(e: argparse.ArgumentParser) -> None:
    """The flags of ``mmviad eval`` (also ``python -m pipeline.eval``)."""
    from ..eval.frames import DEFAULT_MAX_PIXELS, EVAL_FRAMES

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
