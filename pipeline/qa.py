"""qa: four aligned questions per clip (DESIGN §4) → ``<out>/qa/<protocol>/{train,test}.jsonl``.

Label policy: Q1 is "Yes" exactly when the clip's visible-interval set is non-empty; then Q2 is the
object's defect type, otherwise "good". Normal objects always give "No" / "good" / ``[]``.
Intervals come from a reviewer where one exists, else from the configured ``label_source``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from .config import Config
from .grammar import LETTERS, Q1_OPTIONS, Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT, format_intervals
from .ids import DEFECT_TYPES, GOOD
from .io import write_jsonl
from .objects import ObjectLibrary
from .seeds import derive_seed, rng_for

Q2_CHOICES = (*DEFECT_TYPES, GOOD)


def split_jobs(jobs: list[dict[str, Any]], test_fraction: float, seed: int) -> dict[str, str]:
    """Orbit-level (leak-free) split, stratified by defect label: jobs are ordered by a seeded hash
    within each label, labels are interleaved, and the first ``round(test_fraction * n)`` are test."""
    by_label: dict[str, list[str]] = {}
    for j in jobs:
        by_label.setdefault(j["defect"] or GOOD, []).append(j["job_id"])
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
    """One QA line for one clip (the DESIGN §4 record, plus scene metadata)."""
    if "reviewed" in clip["intervals"]:
        provenance, visible = "reviewed", clip["intervals"]["reviewed"]
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
        "category": job["category"], "group": job["group"], "defect": job["defect"] or GOOD,
        "visible_intervals": [[float(a), float(b)] for a, b in visible],
        "provenance": provenance, "split": split,
        "material": job["material"]["name"], "environment": job["environment"].get("name", job["environment"]["kind"]),
        "q1": {"question": Q1_TEXT, "options": dict(Q1_OPTIONS), "answer": "A" if has else "B"},
        "q2": {"question": Q2_TEXT, "options": q2_opts, "answer": q2_ans},
        "q3": {"question": Q3_TEXT, "options": q3_opts, "answer": q3_ans},
        "q4": {"question": Q4_TEXT, "answer": format_intervals(visible)},
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
        rows[s].append(qa_record(c, by_id[c["job_id"]], groups, cfg.qa.label_source, s, cfg.seed))
    folder = Path(out) / "qa" / "standard"
    for s, r in rows.items():
        write_jsonl(folder / f"{s}.jsonl", r)
    return {s: len(r) for s, r in rows.items()}


def validate_qa_record(rec: dict[str, Any]) -> list[str]:
    """Contract checks on one QA line; returns the problems found (empty when valid)."""
    from .grammar import parse_intervals

    problems = []
    for k, t in (("clip_id", str), ("job_id", str), ("video", str), ("fps", int), ("num_frames", int),
                 ("duration", float), ("category", str), ("group", str), ("visible_intervals", list),
                 ("provenance", str), ("split", str)):
        if not isinstance(rec.get(k), t):
            problems.append(f"{k}: expected {t.__name__}")
    if rec.get("provenance") not in ("mask", "diff", "reviewed"):
        problems.append("provenance: not mask|diff|reviewed")
    if rec.get("q1", {}).get("options") != Q1_OPTIONS:
        problems.append("q1.options")
    q2 = rec.get("q2", {})
    if sorted(q2.get("options", {}).values()) != sorted(Q2_CHOICES) or q2.get("answer") not in q2.get("options", {}):
        problems.append("q2: options must be the six defect types and good; answer a letter among them")
    q3 = rec.get("q3", {})
    if len(q3.get("options", {})) != 4 or q3.get("options", {}).get(q3.get("answer")) != rec.get("group"):
        problems.append("q3: four options and the answer must be the true group")
    vis = rec.get("visible_intervals", [])
    parsed = parse_intervals(rec.get("q4", {}).get("answer", ""))
    if parsed is None or [[round(a, 2), round(b, 2)] for a, b in vis] != parsed:
        problems.append("q4.answer does not match visible_intervals")
    has = bool(vis)
    if rec.get("q1", {}).get("answer") != ("A" if has else "B"):
        problems.append("q1.answer contradicts visible_intervals")
    if rec.get("defect") not in (*DEFECT_TYPES, GOOD):
        problems.append("defect: not a defect type or good")
    want = rec.get("defect") if has else GOOD
    if q2.get("options", {}).get(q2.get("answer")) != want:
        problems.append("q2.answer contradicts the label policy")
    if any(not (0 <= a < b <= rec.get("duration", 0) + 1e-6) for a, b in vis):
        problems.append("visible_intervals out of the clip")
    return problems
