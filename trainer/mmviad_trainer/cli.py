"""``python -m mmviad_trainer`` / ``mmviad-train``: traces, SFT, GRPO and evaluation on an mmviad dataset."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmviad-train", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs" / "cpu-smoke.yaml",
                        help="training config YAML (default: %(default)s)")
        sp.add_argument("--data", type=Path, default=Path("out/default"),
                        help="dataset folder written by `make render` (default: %(default)s)")
        sp.add_argument("--run-dir", type=Path, default=None, help="output folder (default: <data>/train/<config name>)")
        sp.add_argument("--no-progress", action="store_true", help="hide progress bars")

    t = sub.add_parser("train", help="traces → PS-SFT → VISTA-GRPO → eval (skips finished stages, resumes checkpoints)")
    common(t)
    t.add_argument("--stages", default="sft,grpo,eval", help="comma-separated subset of sft,grpo,eval (default: %(default)s)")
    tr = sub.add_parser("traces", help="only draw the SFT/GRPO clip sets and write and filter the PS-SFT traces")
    common(tr)
    cf = sub.add_parser("config", help="list the config fields (type, default, meaning), or check a config file")
    cf.add_argument("--check", type=Path, default=None, metavar="YAML",
                    help="validate this config and print it with every default filled in")
    cf.add_argument("--markdown", action="store_true", help="the field list as a Markdown table (trainer/README.md)")
    pl = sub.add_parser("plot", help="draw a run's training curves (loss, reward components, eval) to a PNG")
    pl.add_argument("--run-dir", type=Path, required=True, help="a run folder written by `train`")
    pl.add_argument("--out", type=Path, default=None, help="PNG path (default: <run-dir>/curves.png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "config":
        return _config_command(args.check, args.markdown)
    if args.cmd == "plot":
        from .plot import plot_run

        print(plot_run(args.run_dir, args.out))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if args.config.name == "cpu-smoke.yaml" else None
    from .config import load_config
    from .runner import prepare_rows, train

    run_dir = args.run_dir
    if args.cmd == "traces":
        cfg = load_config(args.config)
        rows = prepare_rows(cfg, args.data, Path(run_dir or args.data / "train" / cfg.name), not args.no_progress)
        print(f"{len(rows['sft'])} SFT rows with traces, {len(rows['grpo'])} GRPO rows")
        return 0
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    bad = set(stages) - {"sft", "grpo", "eval"}
    if bad:
        print(f"unknown stage(s): {sorted(bad)}", file=sys.stderr)
        return 2
    status = train(args.config, args.data, run_dir, stages, not args.no_progress)
    from . import dist

    if dist.is_main():
        print("done: " + ", ".join(f"{k} {v.get('seconds', '')} s" for k, v in status["stages"].items()))
    return 0


def _config_command(check: Path | None, markdown: bool) -> int:
    """``mmviad-train config``: the fields of :class:`config.TrainConfig`, or one file checked."""
    import yaml

    from .config import explain, explain_markdown, load_config

    if check is not None:
        try:
            cfg = load_config(check)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(yaml.safe_dump(cfg.as_json(), sort_keys=False), end="")
        return 0
    if markdown:
        print(explain_markdown())
        return 0
    rows = explain()
    width = max(len(k) for k, *_ in rows)
    for key, typ, default, help_text in rows:
        print(f"{key:<{width}}  {typ} = {default}\n{'':<{width}}  {help_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
