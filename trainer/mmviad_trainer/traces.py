"""PS-SFT trace synthesis and filtering.

A trace is kept only if it has the four sections once each, non-empty, in order
(:mod:`structure`), *and* :func:`pipeline.grammar.parse_response` reads back exactly the ground
truth for Q1–Q4, with Q1–Q3 written as option letters (a trace that names the option text instead
teaches a form the rewards and the benchmark only accept as a fallback). Discards are counted by
reason and written beside the traces. Synthesis can be sharded over ranks (:mod:`dist`) and run
several requests at once (``workers``, for remote teachers).
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Optional

from tqdm import tqdm

from pipeline.grammar import parse_response
from pipeline.io import atomic_write_text, write_json

from . import dist
from .records import ground_truth
from .structure import structure_problem
from .teacher import Teacher


def check_trace(trace: str, rec: dict[str, Any]) -> Optional[str]:
    """``None`` when the trace is usable for ``rec``; otherwise the discard reason."""
    problem = structure_problem(trace)
    if problem is not None:
        if problem.startswith("missing"):
            return "missing_section"
        if "order" in problem:
            return "wrong_order"
        return "malformed"
    gt = ground_truth(rec)
    p = parse_response(trace, gt.q2_options, gt.q3_options)
    if p.errors:
        return "unparseable_answer"
    if p.by_text:
        return "answer_not_letter"
    if (p.q1, p.q2, p.q3) != (gt.q1, gt.q2, gt.q3):
        return "answer_mismatch"
    if [[round(a, 2), round(b, 2)] for a, b in (p.q4 or [])] != gt.intervals:
        return "answer_mismatch"
    return None


def _write_one(teacher: Teacher, rec: dict[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """``(trace, None)`` or ``(None, error message)``."""
    try:
        return teacher.write(rec), None
    except RuntimeError as e:
        return None, str(e)


def synthesize(records: Iterable[dict[str, Any]], teacher: Teacher, progress: bool = True, workers: int = 1
               ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Write a trace per record and filter; returns kept rows ``{clip_id, trace, teacher}`` (in record
    order) and counts by outcome. ``workers`` > 1 runs that many teacher requests at once."""
    kept, counts = [], Counter()
    recs = list(records)
    bar = tqdm(total=len(recs), desc=f"traces ({teacher.name})", unit="clip", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for rec, (trace, err) in zip(recs, pool.map(lambda r: _write_one(teacher, r), recs)):
            bar.update(1)
            if err is not None:
                counts["teacher_error"] += 1
                tqdm.write(f"warning: {err}")
                continue
            reason = check_trace(trace, rec)
            if reason is None:
                kept.append({"clip_id": rec["clip_id"], "trace": trace, "teacher": teacher.name})
                counts["kept"] += 1
            else:
                counts[reason] += 1
    bar.close()
    counts["total"] = len(recs)
    counts["discarded"] = counts["total"] - counts["kept"]
    return kept, dict(counts)


def synthesize_sharded(records: list[dict[str, Any]], teacher: Teacher, progress: bool = True, workers: int = 1
                       ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """:func:`synthesize` with the records split over the launched ranks; every rank gets the merged
    result (kept rows in record order, counts summed)."""
    mine = [r for _, r in dist.shard(records)]
    kept, counts = synthesize(mine, teacher, progress and dist.is_main(), workers)
    parts = dist.gather((kept, counts))
    by_id = {row["clip_id"]: row for k, _ in parts for row in k}
    total: Counter = Counter()
    for _, c in parts:
        total.update(c)
    out = dict(total)
    out["per_rank"] = [c.get("total", 0) for _, c in parts]  # clips each rank's teacher wrote
    return [by_id[r["clip_id"]] for r in records if r["clip_id"] in by_id], out


def write_traces(rows: list[dict[str, Any]], counts: dict[str, int], out_dir: Path) -> Path:
    """``traces.jsonl`` and ``trace_counts.json`` in ``out_dir`` (atomic); returns the JSONL path."""
    out_dir = Path(out_dir)
    path = out_dir / "traces.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    write_json(out_dir / "trace_counts.json", counts)
    return path


def read_traces(path: Path) -> dict[str, str]:
    """``clip_id → trace`` from a ``traces.jsonl``."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    out[row["clip_id"]] = row["trace"]
                except (json.JSONDecodeError, KeyError) as e:
                    raise ValueError(f"{path}:{lineno}: bad trace row ({e})") from None
    return out
