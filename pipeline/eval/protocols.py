"""Protocols beyond Standard. Unseen: held-out categories form the test split, every other
category the train split, so no category — and hence no orbit — is in both.
Written as ``<out>/qa/unseen/{train,test}.jsonl`` from the Standard files (records unchanged but
``split``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..io import read_jsonl, write_jsonl
from ..layout import Layout
from ..seeds import derive_seed


class ProtocolNotApplicable(ValueError):
    """The dataset cannot form this protocol (e.g. Unseen with a single category)."""


def unseen_categories(categories: list[str], cfg: Config) -> list[str]:
    """The configured list, else a seeded ``round(fraction * n)`` of ``categories`` (1 ≤ k ≤ n − 1)."""
    cats = sorted(set(categories))
    if cfg.qa.unseen_categories:
        missing = [c for c in cfg.qa.unseen_categories if c not in cats]
        if missing:
            raise ValueError(f"qa.unseen_categories {missing} have no clips in the Standard QA files")
        return sorted(cfg.qa.unseen_categories)
    if len(cats) < 2:
        raise ProtocolNotApplicable(f"the Unseen protocol needs at least 2 categories with clips, found {cats}")
    k = min(max(int(round(cfg.qa.unseen_fraction * len(cats))), 1), len(cats) - 1)
    return sorted(sorted(cats, key=lambda c: derive_seed(cfg.seed, c, "unseen"))[:k])


def build_unseen(out: Path, cfg: Config) -> dict[str, Any]:
    """Write the Unseen protocol; return counts and the held-out categories."""
    layout = Layout(out)
    rows: list[dict[str, Any]] = []
    for s in ("train", "test"):
        p = layout.qa_file("standard", s)
        if not p.exists():
            raise FileNotFoundError(f"{p}: Standard QA file missing; run `mmviad qa` first")
        rows += read_jsonl(p)
    held = set(unseen_categories([r["category"] for r in rows], cfg))
    split = {"train": [], "test": []}  # type: dict[str, list[dict[str, Any]]]
    for r in sorted(rows, key=lambda r: r["clip_id"]):
        s = "test" if r["category"] in held else "train"
        split[s].append({**r, "split": s})
    jobs = {s: {r["job_id"] for r in v} for s, v in split.items()}
    if jobs["train"] & jobs["test"]:  # cannot happen by construction; guard the contract anyway
        raise AssertionError(f"orbits in both splits: {sorted(jobs['train'] & jobs['test'])[:5]}")
    for s, v in split.items():
        write_jsonl(layout.qa_file("unseen", s), v)
    return {"train": len(split["train"]), "test": len(split["test"]), "held_out": sorted(held)}
