"""Run one runner on one protocol/split and write ``<out>/eval/<name>/{report.md, report.json,
predictions.jsonl, unparseable.jsonl}`` (name defaults to the runner).

:func:`evaluate_records` is the one evaluation path: ``mmviad eval`` (through :func:`evaluate`) and
the trainer's final evaluation (``mmviad_trainer.evaluate.evaluate_model``) both call it, so both
sample the same frames at the same resolution, send the same prompt and score with the same
grammar and metrics. It imports nothing beyond PyAV, numpy and PyYAML unless a 1-shot setting
needs the reference picker (OpenCV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..grammar import TASKS
from ..io import atomic_write_text, write_json, write_jsonl
from ..layout import Layout
from .frames import DEFAULT_MAX_PIXELS, EVAL_FRAMES
from .inputs import EvalInputError, check_positive, check_run_name, load_qa_rows
from .metrics import evaluate_scores, markdown_report, score_response
from .prompts import PROMPTS, SETTINGS, Prompt, build_prompt, load_knowledge, load_template
from .runners.base import Runner


def qa_file(out: Path, protocol: str, split: str) -> Path:
    """``qa/<protocol>/<split>.jsonl`` (:meth:`pipeline.layout.Layout.qa_file`)."""
    return Layout(out).qa_file(protocol, split)


def load_split(out: Path, protocol: str, split: str) -> list[dict[str, Any]]:
    """QA records of ``<out>/qa/<protocol>/<split>.jsonl``, validated (file, line and field named)."""
    path = qa_file(out, protocol, split)
    if not path.exists():
        hint = " (run `mmviad protocols` first)" if protocol == "unseen" else " (run `mmviad qa` first)"
        raise FileNotFoundError(f"{path}: QA file not found{hint}")
    return load_qa_rows(path)


def prompt_builder(out: Path, setting: str, prompt: str, n_frames: int, pool: Sequence[dict[str, Any]], seed: int,
                   max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Callable[[dict[str, Any]], Prompt]:
    """A function record → :class:`Prompt` for ``setting`` (see :mod:`.prompts`)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r} (known: {', '.join(SETTINGS)})")
    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt!r} (known: {', '.join(PROMPTS)})")
    template = load_template(prompt)
    knowledge = load_knowledge() if setting == "knowledge" else None
    cache: dict = {}

    def build(rec: dict[str, Any]) -> Prompt:
        ref = None
        if setting in ("1-shot", "1-shot+"):
            from .reference import pick_reference  # OpenCV: only for the reference settings

            ref = pick_reference(rec, pool, setting, out, seed, cache)
        return build_prompt(rec, out, template, n_frames, reference=ref, knowledge=knowledge, max_pixels=max_pixels)

    return build


def evaluate_records(runner: Runner, records: Sequence[dict[str, Any]], data_root: Path,
                     report_dir: Optional[Path] = None, name: Optional[str] = None, protocol: str = "standard",
                     split: str = "test", setting: str = "0-shot", prompt: str = "main", n_frames: int = EVAL_FRAMES,
                     max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, seed: int = 0,
                     pool: Optional[Sequence[dict[str, Any]]] = None, progress: bool = True) -> dict[str, Any]:
    """Prompt, run, parse, score; write the report files to ``report_dir`` when given; return the
    report dict (``overall``, ``parsing``, ``breakdown``, run settings, ``markdown``)."""
    check_positive(n_frames, "--frames")
    if not records:
        raise EvalInputError("no records to evaluate")
    name = check_run_name(name or runner.name)
    build = (prompt_builder(Path(data_root), setting, prompt, n_frames, pool or records, seed, max_pixels)
             if runner.needs_prompt else None)
    preds = runner.run(records, build, progress=progress)
    by_id = {p.clip_id: p for p in preds}
    rows, scores, unread = [], [], []
    for rec in records:
        p = by_id[rec["clip_id"]]
        parsed, sc = score_response(rec, p.response)
        scores.append(sc)
        rows.append({"clip_id": rec["clip_id"], "response": p.response, "error": p.error, "cached": p.cached,
                     "usage": p.usage, "parsed": parsed.as_dict(),
                     "scores": {k: sc[k] for k in ("q1", "q2", "q2_gated", "q3", "iou")}})
        if sc["unparseable"]:
            unread.append({"clip_id": rec["clip_id"], "unparseable": [q for q in TASKS if q in sc["unparseable"]
                                                                      and q not in parsed.ambiguous],
                           "ambiguous": list(parsed.ambiguous), "how": parsed.how, "response": p.response})
    result = evaluate_scores(records, scores)
    report = {"runner": runner.name, "name": name, "protocol": protocol, "split": split, "setting": setting,
              "prompt": prompt, "n_frames": n_frames, "max_pixels": max_pixels, "seed": seed,
              "errors": sum(p.error is not None for p in preds), "runner_summary": runner.summary(), **result}
    title = f"{name} on {protocol}/{split} ({setting}, {prompt} prompt, {n_frames} frames)"
    report["markdown"] = markdown_report(title, name, result)
    if report_dir is not None:
        folder = Path(report_dir)
        write_jsonl(folder / "predictions.jsonl", rows)
        write_jsonl(folder / "unparseable.jsonl", unread)
        write_json(folder / "report.json", {k: v for k, v in report.items() if k != "markdown"})
        atomic_write_text(folder / "report.md", report["markdown"] + "\n")
    return report


def evaluate(runner: Runner, out: Path, protocol: str = "standard", split: str = "test", name: Optional[str] = None,
             setting: str = "0-shot", prompt: str = "main", n_frames: int = EVAL_FRAMES, seed: int = 0,
             limit: Optional[int] = None, progress: bool = True,
             max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """``mmviad eval``: load and check the split, then :func:`evaluate_records` into
    ``<out>/eval/<name>/``; return the report dict."""
    out = Path(out)
    name = check_run_name(name or runner.name)
    check_positive(limit, "--limit")
    records = load_split(out, protocol, split)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise EvalInputError(f"{qa_file(out, protocol, split)}: no records to evaluate")
    pool = [r for s in ("train", "test") if qa_file(out, protocol, s).exists()
            for r in (records if s == split and limit is None else load_split(out, protocol, s))]
    return evaluate_records(runner, records, out, Layout(out).eval_dir(name), name=name, protocol=protocol, split=split,
                            setting=setting, prompt=prompt, n_frames=n_frames, max_pixels=max_pixels, seed=seed,
                            pool=pool, progress=progress)
