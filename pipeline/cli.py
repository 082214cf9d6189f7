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
# json loads the C module _json: the moment tests/test_crash_safety.py waits for to interrupt this
# module's own imports, while the start-up handler above is armed
import json  # noqa: E402, F401
from typing import Iterator  # noqa: E402


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style: one line, ``mmviad: error: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"mmviad: error: {self.prog.removeprefix('mmviad ')}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``mmviad`` parser: each module of :mod:`pipeline.commands` registers its command, in the
    order ``mmviad --help`` lists them (:mod:`pipeline.objects.commands` the ``objects`` commands)."""
    from .commands import annotate, build, card, clips, plan, protocols, qa, render, review, sheet
    from .commands import eval as eval_
    from .objects import commands as objects

    p = _Parser(prog="mmviad", description=(
        "Render visibility-grounded multi-view defect videos with Blender and build a four-task video QA "
        "benchmark. Stages: plan → render → annotate → clips → qa (build runs them all)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (plan, render, annotate, clips, qa, card, sheet, build, protocols, eval_, objects, review):
        command.register(sub)
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
