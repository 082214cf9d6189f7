"""Final evaluation on the test split: generate one response per clip, score with the shared grammar.

Writes ``predictions.jsonl`` (``{clip_id, response}`` per clip, the input any evaluator needs) and
``metrics.json`` (Q1/Q2/Q3 accuracy, Q4 union-IoU as DESIGN §5, unparseable counts). When the
project's evaluator (issue #6, ``pipeline.eval``) is importable and offers
``score_predictions(records, responses)``, its report is added under ``"pipeline_eval"``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.grammar import parse_response

from .io import atomic_write_json, atomic_write_text
from .records import ground_truth, load_split


def _union(iv: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def union_iou(pred: list[list[float]], gt: list[list[float]]) -> float:
    """IoU of the unions; 1 when both are empty, 0 when only one is (DESIGN §5)."""
    p, g = _union(pred), _union(gt)
    if not p and not g:
        return 1.0
    if not p or not g:
        return 0.0
    inter = sum(max(0.0, min(b, d) - max(a, c)) for a, b in p for c, d in g)
    union = sum(b - a for a, b in p) + sum(d - c for c, d in g) - inter
    return inter / union if union > 0 else 0.0


def score(records: list[dict[str, Any]], responses: list[str]) -> dict[str, Any]:
    """Accuracy for Q1–Q3 and mean union-IoU for Q4; unparseable answers score 0 and are counted."""
    n = len(records)
    acc = {"q1": 0, "q2": 0, "q3": 0}
    q4, unparseable = 0.0, {"q1": 0, "q2": 0, "q3": 0, "q4": 0}
    for rec, resp in zip(records, responses, strict=True):
        gt = ground_truth(rec)
        p = parse_response(resp, gt.q2_options, gt.q3_options)
        for q in acc:
            acc[q] += int(getattr(p, q) == getattr(gt, q))
            unparseable[q] += int(getattr(p, q) is None)
        unparseable["q4"] += int(p.q4 is None)
        q4 += union_iou(p.q4, gt.intervals) if p.q4 is not None else 0.0
    m = {f"{q}_acc": v / n for q, v in acc.items()} | {"q4_miou": q4 / n, "n": n, "unparseable": unparseable}
    m["avg"] = (m["q1_acc"] + m["q2_acc"] + m["q3_acc"] + m["q4_miou"]) / 4
    return m


def evaluate(cfg: dict[str, Any], data: Path, model_path: str, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Greedy responses of ``model_path`` on the test split, then :func:`score`."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    from .processor import load_processor
    from .prompts import prompt_messages
    from .runner import vision_token_ids
    from .video import decode_clip

    d, e = cfg["data"], cfg["eval"]
    records = load_split(data, d["test_split"], d["protocol"])
    if e["max_clips"]:
        records = records[: int(e["max_clips"])]
    if not records:
        print("eval: empty test split, skipped")
        return {"n": 0}
    processor = load_processor(model_path, cfg["model"]["video_processor"])
    model = Qwen3VLForConditionalGeneration.from_pretrained(model_path).eval()
    tok = processor.tokenizer
    responses = []
    for rec in tqdm(records, desc="eval", unit="clip", disable=not progress):
        clip = decode_clip(Path(data) / rec["video"], d["num_frames"], tuple(d["frame_size"]))
        inputs = processor.apply_chat_template(
            [prompt_messages(clip.frames, rec, cfg["prompt"]["domain_knowledge"])], add_generation_prompt=True,
            tokenize=True, return_dict=True, return_tensors="pt",
            processor_kwargs={"video_metadata": [clip.metadata()], "do_sample_frames": False})
        inputs.pop("video_metadata", None)
        with torch.no_grad():
            out = model.generate(**inputs.to(model.device), max_new_tokens=int(e["max_new_tokens"]), do_sample=False,
                                 pad_token_id=tok.pad_token_id, suppress_tokens=vision_token_ids(tok))
        responses.append(tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    atomic_write_text(out_dir / "predictions.jsonl", "".join(
        json.dumps({"clip_id": r["clip_id"], "response": t}) + "\n" for r, t in zip(records, responses)))
    metrics = score(records, responses)
    try:
        ev = importlib.import_module("pipeline.eval")
    except ImportError:
        ev = None
    if ev is not None and hasattr(ev, "score_predictions"):
        metrics["pipeline_eval"] = ev.score_predictions(records, responses)
    atomic_write_json(out_dir / "metrics.json", metrics)
    print("eval: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics
