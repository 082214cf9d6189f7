"""qa: four aligned questions per clip (docs/architecture.md) → ``<out>/qa/<protocol>/{train,test}.jsonl``.

Label policy: Q1 is "Yes" exactly when the clip's visible-interval set is non-empty; then Q2 is the
object's defect type, otherwise "good". Normal objects always give "No" / "good" / ``[]``.
Intervals come from a reviewer where one exists, else from the configured ``label_source``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from .config import Config
from .grammar import LETTERS, Q1_OPTIONS, Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT, format_intervals
from .ids import GOOD, label_of
from .io import write_jsonl
from .layout import Layout
from .objects import ObjectLibrary
from .records import Q2_CHOICES, QARecord, RecordError, check
from .seeds import derive_seed, rng_for


def split_jobs(jobs: list[dict[str, Any]], test_fraction: float, seed: int) -> dict[str, str]:
    """Orbit-level (leak-free) split, stratified by defect label: jobs are ordered by a seeded hash
    within each label, labels are interleaved, and the first ``round(test_fraction * n)`` are test."""
    by_label: dict[str, list[str]] = {}
    for j in jobs:
        by_label.setdefault(label_of(j["defect"]), []).append(j["job_id"])
    queues = [sorted(ids, key=lambda jid: derive_seed(seed, jid, "split")) for _, ids in sorted(by_label.items())]
    order: list[str] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    n_test = int(round(test_fraction * len(order)))
    return {jid: ("test" if i < n_test else "train") for i, jid in enumerate(order)}


def _choice(options: list[str], answer: str) -> tuple[dict[str, str], str]:
    opts = {LETTERS[i]: o for i, o in enumerate(options)}
    return opts, next(k for k, v in opts.items() if v == answer)


def qa_record(clip: dict[str, Any], job: dict[str, Any], groups: list[str], label_source: str, split: str,
              seed: int) -> dict[str, Any]:
    """One QA line for one clip (the QA record of docs/formats.md, plus scene metadata)."""
    if "reviewed" in clip["intervals"]:
        provenance, visible = "reviewed", clip["intervals"]["reviewed"]
    elif label_source not in clip["intervals"]:
        raise ValueError(f"clip {clip['clip_id']}: intervals.{label_source}: missing (qa.label_source needs "
                         "annotate.evidence: twin; annotate and cut the clips again)")
    else:
        provenance, visible = label_source, clip["intervals"][label_source]
    if job["defect"] is None:
        visible = []  # a normal object has nothing to see, whatever a noisy diff says
    has = bool(visible)
    rng = rng_for(seed, clip["clip_id"], "qa")
    q2_opts, q2_ans = _choice([str(x) for x in rng.permutation(Q2_CHOICES)], job["defect"] if has else GOOD)
    distractors = [g for g in groups if g != job["group"]]
    if len(distractors) < 3:
        raise ValueError(f"Q3 needs 3 distractor groups besides {job['group']!r}; the library has {groups}")
    picked = [str(x) for x in rng.choice(distractors, size=3, replace=False)] + [job["group"]]
    q3_opts, q3_ans = _choice([picked[i] for i in rng.permutation(4)], job["group"])
    return {
        "clip_id": clip["clip_id"], "job_id": clip["job_id"], "clip_index": clip["clip_index"],
        "video": clip["video"], "video_marked": clip["video_marked"],
        "fps": clip["fps"], "num_frames": clip["num_frames"], "duration": float(clip["duration"]),
        # "good" rather than null for a normal object: a column that is all-null in one split file
        # makes datasets.load_dataset("json") infer a null type and then fail on the other split.
        "category": job["category"], "group": job["group"], "defect": label_of(job["defect"]),
        "visible_intervals": [[float(a), float(b)] for a, b in visible],
        "provenance": provenance, "split": split,
        "material": job["material"]["name"], "environment": job["environment"].get("name", job["environment"]["kind"]),
        "q1": {"question": Q1_TEXT, "options": dict(Q1_OPTIONS), "answer": "A" if has else "B"},
        "q2": {"question": Q2_TEXT, "options": q2_opts, "answer": q2_ans},
        "q3": {"question": Q3_TEXT, "options": q3_opts, "answer": q3_ans},
        "q4": {"question": Q4_TEXT, "answer": format_intervals(visible)},
        **({"evidence": clip["evidence"]} if "evidence" in clip else {}),
    }


def build_qa(clips: list[dict[str, Any]], jobs: list[dict[str, Any]], cfg: Config, out: Path) -> dict[str, int]:
    """Write the Standard protocol's train/test files for every clip; return counts per split."""
    by_id = {j["job_id"]: j for j in jobs}
    lib = ObjectLibrary(cfg.objects.source.library)
    groups = sorted({lib.get(c).group for c in lib.categories})
    split = split_jobs([by_id[j] for j in sorted({c["job_id"] for c in clips})], cfg.qa.test_fraction, cfg.seed)
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for c in clips:
        s = split[c["job_id"]]
        rec = qa_record(c, by_id[c["job_id"]], groups, cfg.qa.label_source, s, cfg.seed)
        problems = validate_qa_record(rec)   # never write a line that the readers would reject
        if problems:
            raise RecordError(f"clip {c['clip_id']}: QA record: {problems[0]}")
        rows[s].append(rec)
    layout = Layout(out)
    for s, r in rows.items():
        write_jsonl(layout.qa_file("standard", s), r)
    return {s: len(r) for s, r in rows.items()}


def validate_qa_record(rec: Any) -> list[str]:
    """Contract checks on one QA line (:class:`pipeline.records.QARecord`): the problems found as
    ``field: problem`` strings, empty when valid. Never raises, whatever ``rec`` is."""
    return check(QARecord, rec)[1]
