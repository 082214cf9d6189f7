"""``python -m pipeline.eval ARGS`` is ``mmviad eval ARGS`` — the same parser and handler — without
importing the Blender-side commands, so it runs in the trainer's environment (``.venv-train``: torch
and transformers for ``--runner transformers``, no Blender packages)."""

from __future__ import annotations

import argparse
import sys

from ..commands.common import common_args
from ..commands.eval import eval_args, run
from ..config import ConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.eval", description="mmviad eval: run a baseline or "
                                "model on a QA split and write <out>/eval/<name>/ (see `mmviad eval --help`)")
    common_args(p)
    eval_args(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as e:
        print(f"mmviad eval: config error:\n{e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, RuntimeError, OSError) as e:  # one line, no traceback
        print(f"mmviad eval: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
