"""The mmviad benchmark as an lmms-eval task: the prompt, the frames, the answer grammar and the metrics
are mmviad's own (``pipeline.eval``), so a model wrapped by lmms-eval is scored exactly as ``mmviad
eval`` scores it.

Settings (environment variables, read when a document is built): ``MMVIAD_DATA`` the dataset folder
(default: the current directory, where the task's ``qa/...jsonl`` paths are resolved too),
``MMVIAD_FRAMES`` frames per clip (default 32), ``MMVIAD_MAX_PIXELS`` per frame (default
``pipeline.eval.frames.DEFAULT_MAX_PIXELS``; 0 = native size), ``MMVIAD_PROMPT`` ``main`` or
``structured``, and ``MMVIAD_PREDICTIONS``: a path where the run's ``{clip_id, response}`` rows are
written, for ``mmviad eval --runner predictions`` (the per-clip report, unread answers listed).

Chat models get the same interleaved prompt as ``mmviad eval`` (``doc_to_messages``: a
``Frame at t s:`` text before each frame, then the questions); simple models get the frames and
one text that lists the frame times (``doc_to_visual`` + ``doc_to_text``).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from PIL import Image

from pipeline.eval.frames import DEFAULT_MAX_PIXELS, EVAL_FRAMES
from pipeline.eval import metrics
from pipeline.eval.metrics import aggregate, parse_stats
from pipeline.eval.prompts import Prompt, build_prompt, load_template
from pipeline.grammar import TASKS, format_answer


def _data_root() -> Path:
    return Path(os.environ.get("MMVIAD_DATA", "."))


def settings() -> dict[str, Any]:
    """The run's frame count, resolution and prompt (see the module docstring)."""
    mp = int(os.environ.get("MMVIAD_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    return {"n_frames": int(os.environ.get("MMVIAD_FRAMES", EVAL_FRAMES)), "max_pixels": mp or None,
            "prompt": os.environ.get("MMVIAD_PROMPT", "main")}


@lru_cache(maxsize=64)
def _prompt(doc_json: str) -> Prompt:
    s = settings()
    return build_prompt(json.loads(doc_json), _data_root(), load_template(s["prompt"]), s["n_frames"],
                        max_pixels=s["max_pixels"])


def prompt_for(doc: dict[str, Any]) -> Prompt:
    """mmviad's prompt for one QA row (cached: lmms-eval asks for messages, visuals and text)."""
    return _prompt(json.dumps(doc, sort_keys=True, default=str))


def mmviad_doc_to_messages(doc: dict[str, Any], lmms_eval_specific_kwargs: Optional[dict] = None) -> list[dict]:
    content = [{"type": "text", "text": p["text"]} if p["type"] == "text"
               else {"type": "image", "url": Image.fromarray(p["image"])} for p in prompt_for(doc).parts]
    return [{"role": "user", "content": content}]


def mmviad_doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    return [Image.fromarray(p["image"]) for p in prompt_for(doc).parts if p["type"] == "image"]


def mmviad_doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: Optional[dict] = None) -> str:
    parts = prompt_for(doc).parts
    times = ", ".join(f"{p['time']:.2f}" for p in parts if p["type"] == "image")
    return f"The frames above are at {times} seconds, in order.\n" + parts[-1]["text"]


def mmviad_doc_to_target(doc: dict[str, Any]) -> str:
    return format_answer(doc["q1"]["answer"], doc["q2"]["answer"], doc["q3"]["answer"], doc["q4"]["answer"])


def score_response(doc: dict[str, Any], response: str) -> dict[str, Any]:
    """Parse one response with mmviad's grammar and score it with mmviad's metrics. (Not under the
    key ``score``: lmms-eval reads a dict's ``score`` as the per-sample number for its stderr.)"""
    return {"clip_id": doc["clip_id"], "response": response, "clip_scores": metrics.score_response(doc, response)[1]}


METRICS = ("q1_acc", "q1_bacc", "q2_acc", "q2_gated_acc", "q3_acc", "q4_miou", "q4_miou_defective", "r@0.5",
           "r@0.5_defective", "avg", "read_pct")


def mmviad_process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    row = score_response(doc, results[0] if results else "")
    return {m: row for m in METRICS}


def _overall(rows: list[dict[str, Any]], key: str) -> Optional[float]:
    return aggregate([r["clip_scores"] for r in rows])[key]


def agg_q1_acc(rows): return _overall(rows, "q1_acc")            # noqa: E704
def agg_q1_bacc(rows): return _overall(rows, "q1_bacc")          # noqa: E704
def agg_q2_acc(rows): return _overall(rows, "q2_acc")            # noqa: E704
def agg_q2_gated_acc(rows): return _overall(rows, "q2_gated_acc")  # noqa: E704
def agg_q3_acc(rows): return _overall(rows, "q3_acc")            # noqa: E704
def agg_q4_miou(rows): return _overall(rows, "q4_miou")          # noqa: E704
def agg_q4_miou_defective(rows): return _overall(rows, "q4_miou_defective")  # noqa: E704
def agg_r05(rows): return _overall(rows, "r@0.5")                # noqa: E704
def agg_r05_defective(rows): return _overall(rows, "r@0.5_defective")  # noqa: E704


def agg_read_pct(rows: list[dict[str, Any]]) -> float:
    """Share of task answers (4 per clip) the grammar could read, in percent."""
    stats = parse_stats([r["clip_scores"] for r in rows])
    return round(sum(stats[q]["read"] for q in TASKS) * 100.0 / (4 * len(rows)), 2) if rows else 0.0


def agg_avg(rows: list[dict[str, Any]]) -> Optional[float]:
    """Avg = (Q1 Acc + Q2 Acc + Q3 Acc + Q4 mIoU) / 4; also writes ``MMVIAD_PREDICTIONS`` when set."""
    dest = os.environ.get("MMVIAD_PREDICTIONS")
    if dest:
        path = Path(dest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps({"clip_id": r["clip_id"], "response": r["response"]}) + "\n"
                               for r in sorted(rows, key=lambda r: r["clip_id"])), encoding="utf-8")
        os.replace(tmp, path)
    return _overall(rows, "avg")
