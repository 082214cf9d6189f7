"""Run one runner on one protocol/split and write ``<out>/eval/<name>/{report.md,report.json,
predictions.jsonl}`` (name defaults to the runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..grammar import parse_response
from ..io import atomic_write_text, read_jsonl, write_json, write_jsonl
from ..qa import validate_qa_record
from .metrics import evaluate_scores, markdown_report, score_record
from .prompts import SETTINGS, Prompt, build_prompt, load_knowledge, load_template
from .reference import pick_reference
from .runners.base import Runner


def load_split(out: Path, protocol: str, split: str) -> list[dict[str, Any]]:
    """QA records of ``<out>/qa/<protocol>/<split>.jsonl``, validated (file, line and field named)."""
    path = Path(out) / "qa" / protocol / f"{split}.jsonl"
    if not path.exists():
        hint = " (run `mmviad protocols` first)" if protocol == "unseen" else " (run `mmviad qa` first)"
        raise FileNotFoundError(f"{path}: QA file not found{hint}")
    rows = read_jsonl(path)
    for i, r in enumerate(rows, 1):
        problems = validate_qa_record(r)
        if problems:
            raise ValueError(f"{path}:{i}: {'; '.join(problems)}")
    return rows


def prompt_builder(out: Path, setting: str, prompt: str, n_frames: int, pool: list[dict[str, Any]], seed: int):
    """A function record → :class:`Prompt` for ``setting`` (see :mod:`.prompts`)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r} (known: {', '.join(SETTINGS)})")
    template = load_template(prompt)
    knowledge = load_knowledge() if setting == "knowledge" else None
    cache: dict = {}

    def build(rec: dict[str, Any]) -> Prompt:
        ref = pick_reference(rec, pool, setting, out, seed, cache) if setting in ("1-shot", "1-shot+") else None
        return build_prompt(rec, out, template, n_frames, reference=ref, knowledge=knowledge)

    return build


def evaluate(runner: Runner, out: Path, protocol: str = "standard", split: str = "test", name: Optional[str] = None,
             setting: str = "0-shot", prompt: str = "main", n_frames: int = 32, seed: int = 0,
             limit: Optional[int] = None, progress: bool = True) -> dict[str, Any]:
    """Run, parse, score and write the report; return the report dict."""
    out = Path(out)
    records = load_split(out, protocol, split)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise ValueError(f"{out / 'qa' / protocol / (split + '.jsonl')}: no records to evaluate")
    pool = [r for s in ("train", "test") if (out / "qa" / protocol / f"{s}.jsonl").exists()
            for r in read_jsonl(out / "qa" / protocol / f"{s}.jsonl")]
    build = prompt_builder(out, setting, prompt, n_frames, pool, seed) if runner.needs_prompt else None
    preds = runner.run(records, build, progress=progress)
    by_id = {p.clip_id: p for p in preds}
    rows, scores = [], []
    for rec in records:
        p = by_id[rec["clip_id"]]
        parsed = parse_response(p.response, rec["q2"]["options"], rec["q3"]["options"])
        sc = score_record(rec, parsed)
        scores.append(sc)
        rows.append({"clip_id": rec["clip_id"], "response": p.response, "error": p.error, "cached": p.cached,
                     "usage": p.usage, "parsed": parsed.as_dict(),
                     "scores": {k: sc[k] for k in ("q1", "q2", "q3", "iou")}})
    result = evaluate_scores(records, scores)
    name = name or runner.name
    report = {"runner": runner.name, "name": name, "protocol": protocol, "split": split, "setting": setting,
              "prompt": prompt, "n_frames": n_frames, "seed": seed, "errors": sum(p.error is not None for p in preds),
              "runner_summary": runner.summary(), **result}
    folder = out / "eval" / name
    write_jsonl(folder / "predictions.jsonl", rows)
    write_json(folder / "report.json", report)
    title = f"{name} on {protocol}/{split} ({setting}, {prompt} prompt)"
    atomic_write_text(folder / "report.md", markdown_report(title, name, result) + "\n")
    report["markdown"] = markdown_report(title, name, result)
    return report
