"""Does the trainer learn from the video? A benchmark, not a test (it takes minutes).

The prompt is made identical for every clip (the same question text, the Q2 and Q3 options in one
fixed order), so the only thing that differs between clips is the video. A tiny random Qwen3-VL is
trained with PS-SFT (the trainer's own ``train`` stage, template-teacher traces) on the clips of a
dataset that ``mmviad build`` rendered, and every ``--eval-every`` steps it answers every training
clip (the trainer's evaluation during training). Pass: Q1 and Q3 training accuracy reach
``--target`` (0.9) where the majority answer gives at most 0.6, while the same run with every frame
black (``data.blank_video``) stays at most at the majority share: with identical prompts and blank
frames the model's answer cannot depend on the clip.

    .venv/bin/mmviad build --config trainer/bench/learn_data.yaml --out out/learn          # once, ~3 min
    .venv-train/bin/python trainer/bench/learn_from_video.py --data out/learn --out out/learn-bench

Writes ``<out>/report.json`` (accuracies per evaluation, majority shares, minutes, verdict) and
``<out>/curves.png``; exits 1 when the check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline.grammar import LETTERS  # noqa: E402

from mmviad_trainer.prompts import question_text  # noqa: E402
from mmviad_trainer.records import load_split  # noqa: E402

Q2_FIXED = ("hole", "bulge", "crack", "scratch", "good", "concavity", "broken")


def fixed_options(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with Q2's seven options and Q3's options (every group of the dataset, sorted) in
    one fixed order, answers re-lettered; everything else unchanged."""
    groups = sorted({r["group"] for r in records})
    if len(groups) > len(LETTERS):
        raise ValueError(f"{len(groups)} groups do not fit the {len(LETTERS)} option letters")
    q2 = {LETTERS[i]: v for i, v in enumerate(Q2_FIXED)}
    q3 = {LETTERS[i]: v for i, v in enumerate(groups)}
    out = []
    for r in records:
        r = json.loads(json.dumps(r))
        r["q2"]["answer"] = next(k for k, v in q2.items() if v == r["q2"]["options"][r["q2"]["answer"]])
        r["q2"]["options"] = dict(q2)
        r["q3"]["answer"] = next(k for k, v in q3.items() if v == r["q3"]["options"][r["q3"]["answer"]])
        r["q3"]["options"] = dict(q3)
        out.append(r)
    return out


def write_bench_data(src: Path, dst: Path) -> list[dict[str, Any]]:
    """All clips of ``src`` (Standard train + test) with fixed options as the ``train`` and the
    ``test`` split of ``dst`` (test = train: the check measures training accuracy)."""
    records = fixed_options(load_split(src, "train") + load_split(src, "test"))
    qa = dst / "qa" / "standard"
    qa.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    for split in ("train", "test"):
        (qa / f"{split}.jsonl").write_text(text, encoding="utf-8")
    if not (dst / "clips").exists():
        (dst / "clips").symlink_to((src / "clips").resolve())
    return records


def majority(records: list[dict[str, Any]], q: str) -> tuple[str, float]:
    """The most frequent answer letter of ``q`` and its share."""
    letter, n = Counter(r[q]["answer"] for r in records).most_common(1)[0]
    return letter, n / len(records)


def bench_config(args: argparse.Namespace, n_clips: int, blank: bool) -> dict[str, Any]:
    """A trainer config: PS-SFT only, the tiny model, evaluation on all clips every ``eval_every``."""
    return {
        "name": "learn-blank" if blank else "learn-video",
        "seed": args.seed,
        "data": {"num_frames": args.frames, "frame_size": list(args.frame_size), "sft_clips": n_clips,
                 "blank_video": blank},
        "model": {"tiny": True, "tiny_size": {"hidden": args.hidden, "intermediate": 4 * args.hidden,
                                              "layers": args.layers, "vision_hidden": args.vision_hidden,
                                              "vision_depth": 2}},
        "prompt": {"domain_knowledge": False},
        "teacher": {"kind": "template"},
        "sft": {"finetune": "full", "args": {"max_steps": args.steps, "per_device_train_batch_size": args.batch,
                                             "learning_rate": args.lr, "lr_scheduler_type": "cosine",
                                             "warmup_steps": 20, "save_strategy": "no", "logging_steps": 10}},
        "grpo": {"enabled": False},
        "eval": {"enabled": False, "every_steps": args.eval_every, "during_clips": n_clips,
                 "max_new_tokens": args.max_new_tokens, "batch_size": args.eval_batch},
    }


def eval_rows(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "sft" / "log.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if "eval/q1_acc" in r]


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, q in zip(axes, ("q1", "q3")):
        for name, style in (("video", "-o"), ("blank", "--s")):
            curve = report["runs"][name]["curve"]
            ax.plot([c["step"] for c in curve], [c[f"{q}_acc"] for c in curve], style, ms=3, label=f"{name} frames")
        ax.axhline(report["majority"][q]["share"], color="grey", ls=":", label="majority answer")
        ax.axhline(report["target"], color="green", ls=":", lw=0.8, label="target")
        ax.set_title(f"{q.upper()} training accuracy ({report['n_clips']} clips, identical prompts)")
        ax.set_xlabel("SFT step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a dataset written by `mmviad build` (≥ 24 clips)")
    p.add_argument("--out", type=Path, default=Path("out/learn-bench"), help="work and report folder")
    p.add_argument("--steps", type=int, default=1000, help="SFT steps per run (default: %(default)s)")
    p.add_argument("--eval-every", type=int, default=100, help="evaluate every N steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine decay (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=128, help="tiny model width (default: %(default)s)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vision-hidden", type=int, default=64)
    p.add_argument("--frames", type=int, default=8, help="frames per clip (default: %(default)s)")
    p.add_argument("--frame-size", type=int, nargs=2, default=(128, 64), metavar=("W", "H"))
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--eval-batch", type=int, default=36)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--max-majority", type=float, default=0.6)
    p.add_argument("--runs", default="video,blank", help="which runs (default: %(default)s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mmviad_trainer.runner import train

    data = args.out / "data"
    records = write_bench_data(args.data, data)
    prompts = {question_text(r, False) for r in records}
    assert len(prompts) == 1, "the prompts differ between clips"
    maj = {q: dict(zip(("answer", "share"), majority(records, q))) for q in ("q1", "q3")}
    print(f"{len(records)} clips, one prompt; majority Q1 {maj['q1']}, Q3 {maj['q3']}", flush=True)
    report: dict[str, Any] = {"n_clips": len(records), "majority": maj, "target": args.target,
                              "max_majority": args.max_majority, "args": {k: (list(v) if isinstance(v, tuple) else v)
                                                                          for k, v in vars(args).items()
                                                                          if not isinstance(v, Path)},
                              "runs": {}}
    for name in [r.strip() for r in args.runs.split(",") if r.strip()]:
        cfg = bench_config(args, len(records), blank=(name == "blank"))
        cfg_path = args.out / f"{name}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        run_dir = args.out / f"run-{name}"
        t = time.time()
        train(cfg_path, data, run_dir, stages=("sft",), progress=False)
        curve = [{"step": r["step"], "q1_acc": r["eval/q1_acc"] / 100, "q3_acc": r["eval/q3_acc"] / 100}  # percent
                 for r in eval_rows(run_dir)]
        report["runs"][name] = {"minutes": round((time.time() - t) / 60, 1), "curve": curve, "final": curve[-1]}
        print(f"{name}: {report['runs'][name]['final']} in {report['runs'][name]['minutes']} min", flush=True)
    ok = all(m["share"] <= args.max_majority for m in maj.values()) and len(records) >= 24
    if "video" in report["runs"]:
        f = report["runs"]["video"]["final"]
        ok = ok and f["q1_acc"] >= args.target and f["q3_acc"] >= args.target
    if "blank" in report["runs"]:
        f = report["runs"]["blank"]["final"]
        ok = ok and all(f[f"{q}_acc"] <= maj[q]["share"] + 1e-9 for q in ("q1", "q3"))
    report["passed"] = bool(ok)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if {"video", "blank"} <= set(report["runs"]):
        plot(report, args.out / "curves.png")
    print(("PASS" if ok else "FAIL") + f": report in {args.out / 'report.json'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
