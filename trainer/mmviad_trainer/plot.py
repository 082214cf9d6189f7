"""Training curves of a run (``<run>/{sft,grpo}/log.jsonl``) in one PNG: SFT loss, GRPO reward
components, KL and zero-variance share, and the evaluation rows (Avg and per task) of both stages —
the curves of the MMVIAD paper's Appendix F."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

EVAL_KEYS = ("eval/avg", "eval/q1_acc", "eval/q2_acc", "eval/q3_acc", "eval/q4_miou")


def read_log(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``log.jsonl`` (missing file: no rows)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of the rows that carry ``key``."""
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_run(run_dir: Path, out: Optional[Path] = None) -> Path:
    """Draw the curves of ``run_dir`` to ``out`` (default ``<run_dir>/curves.png``); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    sft, grpo = read_log(run_dir / "sft" / "log.jsonl"), read_log(run_dir / "grpo" / "log.jsonl")
    if not sft and not grpo:
        raise FileNotFoundError(f"{run_dir}: no sft/log.jsonl or grpo/log.jsonl")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    ax.plot(*series(sft, "loss"), label="SFT loss")
    ax.set_title("PS-SFT loss")
    ax.set_xlabel("step")
    ax = axes[0][1]
    for key in sorted({k for r in grpo for k in r if k.startswith("rewards/") and k.endswith("/mean")}):
        ax.plot(*series(grpo, key), label=key.split("/")[1].replace("_reward", ""))
    ax.plot(*series(grpo, "reward"), "k-", lw=2, label="total")
    ax.set_title("VISTA-GRPO rewards (group means)")
    ax.set_xlabel("step")
    ax = axes[1][0]
    ax.plot(*series(grpo, "kl"), label="KL to reference")
    ax.plot(*series(grpo, "frac_reward_zero_std"), label="share of groups with zero advantage")
    ax.set_title("VISTA-GRPO")
    ax.set_xlabel("step")
    ax = axes[1][1]
    for rows, style, stage in ((sft, "-", "SFT"), (grpo, "--", "GRPO")):
        for key in EVAL_KEYS:
            xs, ys = series(rows, key)
            if xs:
                ax.plot(xs, ys, style, marker="o", ms=3, label=f"{stage} {key.split('/')[1]}")
    ax.set_title("evaluation during training (held-out slice)")
    ax.set_xlabel("stage step")
    for a in axes.flat:
        if a.lines:
            a.legend(fontsize=7)
        a.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out or run_dir / "curves.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
