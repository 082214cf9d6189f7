"""Evaluation inputs, checked before anything runs: QA rows as the evaluator reads them, predictions
rows, and the run's name. Every problem is one line naming the file, the line and the field.

The evaluator's own checks (types, nulls, missing fields, duplicated clip ids) run first; then the
dataset contract, :class:`pipeline.records.QARecord` (what ``mmviad qa`` checks before writing and
the trainer checks before training). It needs only pydantic, so it runs in the trainer's
environment too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from ..ids import validate_id
from ..records import QARecord, check


class EvalInputError(ValueError):
    """A bad evaluation input (the CLI prints it as one line)."""


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def rows_with_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded value)`` for every non-blank line of a JSONL file."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise EvalInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise EvalInputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _choice_problem(rec: dict[str, Any], q: str) -> Optional[tuple[str, str]]:
    block = rec.get(q)
    if block is None:
        return q, "missing" if q not in rec else "null"
    if not isinstance(block, dict):
        return q, f"expected an object, got {type(block).__name__}"
    if not isinstance(block.get("question"), str):
        return f"{q}.question", _what(block, "question", "a string")
    opts = block.get("options")
    if not isinstance(opts, dict) or not opts or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in opts.items()):
        return f"{q}.options", _what(block, "options", "a non-empty object of letter → text")
    if not isinstance(block.get("answer"), str) or block["answer"] not in opts:
        return f"{q}.answer", (_what(block, "answer", "a string") if not isinstance(block.get("answer"), str)
                               else f"{block['answer']!r} is not one of {sorted(opts)}")
    return None


def _what(obj: dict[str, Any], key: str, want: str) -> str:
    if key not in obj:
        return "missing"
    if obj[key] is None:
        return "null"
    return f"expected {want}, got {type(obj[key]).__name__}"


def qa_row_problem(rec: Any) -> Optional[tuple[str, str]]:
    """``(field, problem)`` for the first field the evaluator cannot use, else ``None``."""
    if not isinstance(rec, dict):
        return "(row)", f"expected a JSON object, got {type(rec).__name__}"
    for key in ("clip_id", "video", "category", "group"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            return key, _what(rec, key, "a non-empty string") if rec.get(key) != "" else "empty"
    if not _is_num(rec.get("duration")) or rec["duration"] <= 0:
        return "duration", _what(rec, "duration", "a number") if not _is_num(rec.get("duration")) else "must be > 0"
    vis = rec.get("visible_intervals")
    if not isinstance(vis, list):
        return "visible_intervals", _what(rec, "visible_intervals", "a list")
    for i, iv in enumerate(vis):
        if not (isinstance(iv, list) and len(iv) == 2 and all(_is_num(x) for x in iv) and 0 <= iv[0] <= iv[1]):
            return f"visible_intervals[{i}]", f"expected [start, end] seconds, got {iv!r}"
    for q in ("q1", "q2", "q3"):
        p = _choice_problem(rec, q)
        if p:
            return p
    if not isinstance(rec.get("q4"), dict):
        return "q4", _what(rec, "q4", "an object")
    if not isinstance(rec["q4"].get("question"), str):
        return "q4.question", _what(rec["q4"], "question", "a string")
    for key in ("job_id", "split", "defect", "environment", "material"):  # optional, but typed
        if key in rec and rec[key] is not None and not isinstance(rec[key], str):
            return key, f"expected a string, got {type(rec[key]).__name__}"
    return None


def load_qa_rows(path: Path) -> list[dict[str, Any]]:
    """QA rows of one JSONL file, checked: a null, wrong-typed or missing field, a row that breaks
    the dataset contract, or a clip id seen twice raises :class:`EvalInputError` naming
    ``path:line`` and the field."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, rec in rows_with_lines(path):
        where = f"{path}:{lineno}"
        bad = qa_row_problem(rec)
        if bad:
            raise EvalInputError(f"{where}: field {bad[0]!r}: {bad[1]}")
        problems = check(QARecord, rec)[1]
        if problems:
            raise EvalInputError(f"{where}: {'; '.join(problems)}")
        if rec["clip_id"] in seen:
            raise EvalInputError(f"{where}: field 'clip_id': {rec['clip_id']!r} duplicates line {seen[rec['clip_id']]}")
        seen[rec["clip_id"]] = lineno
        rows.append(rec)
    return rows


def load_predictions(path: Path, clip_ids: list[str]) -> dict[str, str]:
    """``{clip_id: response}`` from a predictions JSONL (``{"clip_id": str, "response": str}`` per
    line, as ``predictions.jsonl`` of a run, the trainer or the lmms-eval task writes it). Every
    clip in ``clip_ids`` needs exactly one row; rows for other clips are an error too (a file from
    another split)."""
    if not Path(path).exists():
        raise EvalInputError(f"{path}: predictions file not found")
    wanted = set(clip_ids)
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, row in rows_with_lines(Path(path)):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise EvalInputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for key in ("clip_id", "response"):
            if not isinstance(row.get(key), str):
                raise EvalInputError(f"{where}: field {key!r}: {_what(row, key, 'a string')}")
        cid = row["clip_id"]
        if cid in out:
            raise EvalInputError(f"{where}: field 'clip_id': {cid!r} duplicates line {lines[cid]}")
        if cid not in wanted:
            raise EvalInputError(f"{where}: field 'clip_id': {cid!r} is not a clip of the evaluated split")
        out[cid], lines[cid] = row["response"], lineno
    missing = [c for c in clip_ids if c not in out]
    if missing:
        raise EvalInputError(f"{path}: no prediction for {len(missing)} clip(s) of the split (first: {missing[0]})")
    return out


def check_run_name(name: str) -> str:
    """A report folder name must be a plain id (no ``/``, ``..`` or absolute path)."""
    try:
        return validate_id(name, "--name")
    except ValueError as e:
        raise EvalInputError(str(e)) from None


def check_positive(value: Optional[int], flag: str) -> Optional[int]:
    if value is not None and value < 1:
        raise EvalInputError(f"{flag} must be at least 1, got {value}")
    return value
