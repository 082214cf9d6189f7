"""The trainer's one door to evaluation: during training (a held-out slice every N steps) and at the
end (the test split), sharded over the launched ranks.

* The **final evaluation** (:func:`final_evaluation`) is the benchmark's: every rank generates its
  share with :func:`evaluate.generate_responses` (the code ``mmviad eval --runner transformers``
  runs: 32 frames, aspect kept, the ``structured`` prompt) and the main process scores the gathered
  answers with the evaluator's grammar and metrics and writes its report files. Its numbers compare
  with any ``mmviad eval`` run.
* **During training** (:func:`evaluate_records`, the callback) the policy answers a held-out slice
  with the trainer's own prompt and frames (``data.num_frames``, ``data.frame_size``,
  ``data.blank_video``: what it is trained on), scored by the same metrics
  (:func:`score_responses`). That is a training curve, not a benchmark number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from tqdm import tqdm

from pipeline.io import atomic_write_text, write_json

from . import dist

if TYPE_CHECKING:
    from .config import TrainConfig


def generate_responses(model: Any, processor: Any, records: list[dict[str, Any]], data_root: Path,
                       cfg: TrainConfig, progress: bool = False) -> list[str]:
    """Greedy responses, one per record, in order (``eval.batch_size`` clips per ``generate``), with
    the trainer's prompt and frames (``data.*``): the during-training curve, not the benchmark."""
    import torch

    from .prompts import prompt_messages
    from .runner import vision_token_ids
    from .video import load_clip

    d, e = cfg.data, cfg.eval
    tok = processor.tokenizer
    bs = max(1, e.batch_size)
    out: list[str] = []
    bar = tqdm(total=len(records), desc="eval", unit="clip", disable=not progress)
    old_side = tok.padding_side
    tok.padding_side = "left"  # generation continues every row from its last prompt token
    try:
        for s in range(0, len(records), bs):
            chunk = records[s:s + bs]
            clips = [load_clip(Path(data_root) / r["video"], d.num_frames, tuple(d.frame_size), d.blank_video)
                     for r in chunk]
            convs = [prompt_messages(c.frames, r, cfg.prompt.domain_knowledge) for c, r in zip(clips, chunk)]
            inputs = processor.apply_chat_template(
                convs, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
                processor_kwargs={"video_metadata": [c.metadata() for c in clips], "do_sample_frames": False,
                                  "padding": True})
            inputs.pop("video_metadata", None)
            with torch.no_grad():
                gen = model.generate(**inputs.to(model.device), max_new_tokens=e.max_new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id,
                                     suppress_tokens=vision_token_ids(tok))
            n_in = inputs["input_ids"].shape[1]
            out.extend(tok.decode(g[n_in:], skip_special_tokens=True) for g in gen)
            bar.update(len(chunk))
    finally:
        tok.padding_side = old_side
        bar.close()
    return out


def score_responses(records: list[dict[str, Any]], responses: list[str]) -> dict[str, Any]:
    """The benchmark's metrics (percent) and how the answers were read (``evaluate.score``)."""
    from .evaluate import score

    return score(records, responses)


def evaluate_records(model: Any, processor: Any, records: list[dict[str, Any]], data_root: Path,
                     cfg: TrainConfig, progress: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Responses and metrics for ``records``; each rank answers ``records[rank::world]`` and every
    rank gets all responses (in record order) and the same metrics."""
    mine = dist.shard(records)
    answers = generate_responses(model, processor, [r for _, r in mine], data_root, cfg,
                                 progress and dist.is_main())
    responses = dist.gather_shards(len(records), [(i, a) for (i, _), a in zip(mine, answers, strict=True)])
    return responses, score_responses(records, responses)


def write_eval(out_dir: Path, records: list[dict[str, Any]], responses: list[str], metrics: dict[str, Any]) -> None:
    """``predictions.jsonl`` and ``metrics.json`` (atomic; main process only)."""
    if not dist.is_main():
        return
    atomic_write_text(Path(out_dir) / "predictions.jsonl", "".join(
        json.dumps({"clip_id": r["clip_id"], "response": t}) + "\n" for r, t in zip(records, responses)))
    write_json(Path(out_dir) / "metrics.json", metrics)


def final_evaluation(cfg: TrainConfig, data: Path, model_path: str, out_dir: Path,
                     progress: bool = True) -> dict[str, Any]:
    """Load ``model_path`` on every rank and answer the test split sharded, exactly as ``mmviad
    eval --runner transformers`` answers it (:func:`evaluate.generate_responses`: the paper's 32
    frames, aspect kept, the ``structured`` prompt, ``eval.*`` settings); the main process writes
    the evaluator's report files (``predictions.jsonl``, ``unparseable.jsonl``, ``report.json``,
    ``report.md``) and ``metrics.json``. Returns the metrics (``{"n": 0}`` for an empty split)."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    from pipeline.eval.run import evaluate_records as report_records
    from pipeline.eval.runners.predictions import PredictionsRunner

    from .evaluate import eval_settings, generate_responses as shared_generate, load_eval_processor, score
    from .records import load_split

    d, e = cfg.data, cfg.eval
    records = load_split(data, d.test_split, d.protocol)
    if e.max_clips:
        records = records[: e.max_clips]
    if not records:
        print("eval: empty test split, skipped")
        return {"n": 0}
    s = eval_settings(e)
    processor = load_eval_processor(model_path, cfg.model.video_processor)
    model = Qwen3VLForConditionalGeneration.from_pretrained(model_path, dtype=_dtype(cfg.model.dtype)).eval()
    if torch.cuda.is_available():  # one GPU per rank (device_map="auto" would spread every rank over all)
        model.to(f"cuda:{torch.cuda.current_device()}")
    mine = dist.shard(records)
    answers = shared_generate(model, processor, [r for _, r in mine], data, n_frames=int(s["num_frames"]),
                              max_pixels=s["max_pixels"], prompt=s["prompt"], setting=s["setting"],
                              batch_size=int(s["batch_size"]), max_new_tokens=e.max_new_tokens,
                              seed=cfg.seed, progress=progress and dist.is_main())
    responses = dist.gather_shards(len(records), [(i, a) for (i, _), a in zip(mine, answers, strict=True)])
    metrics = score(records, responses)
    if dist.is_main():
        raw = Path(out_dir) / "responses.jsonl"
        atomic_write_text(raw, "".join(json.dumps({"clip_id": r["clip_id"], "response": t}) + "\n"
                                       for r, t in zip(records, responses)))
        report = report_records(PredictionsRunner(raw), records, Path(data), Path(out_dir), name=cfg.name or "trainer",
                                protocol=d.protocol, split=d.test_split, setting=s["setting"], prompt=s["prompt"],
                                n_frames=int(s["num_frames"]), max_pixels=s["max_pixels"], seed=cfg.seed,
                                progress=False)
        metrics = {**report["overall"], "parsing": report["parsing"], "n_frames": report["n_frames"],
                   "max_pixels": report["max_pixels"], "prompt": report["prompt"]}
        write_json(Path(out_dir) / "metrics.json", metrics)
        print("eval: " + " ".join(f"{k}={metrics[k]}" for k in ("q1_acc", "q2_acc", "q2_gated_acc", "q3_acc",
                                                                 "q4_miou", "avg") if k in metrics))
    return metrics


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def heldout_records(cfg: TrainConfig, data: Path) -> list[dict[str, Any]]:
    """The slice evaluated during training: ``eval.during_clips`` seeded clips of the test split."""
    from .records import load_split
    from .splits import heldout_slice

    records = load_split(data, cfg.data.test_split, cfg.data.protocol)
    return heldout_slice(records, cfg.eval.during_clips, cfg.seed)


def flat_metrics(metrics: dict[str, Any], prefix: str = "eval/") -> dict[str, float]:
    """The numeric metrics under ``prefix`` (``eval/avg``, ``eval/q1_acc``, …) for a log row."""
    return {prefix + k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def make_callback(cfg: TrainConfig, data: Path, records: list[dict[str, Any]], processor: Any,
                  log_path: Path, progress: bool = False) -> Optional[Any]:
    """The :class:`callbacks.EvalDuringTraining` for a stage, or ``None`` when ``eval.every_steps`` is 0."""
    every = cfg.eval.every_steps
    if not every or not records:
        return None
    from .callbacks import EvalDuringTraining

    return EvalDuringTraining(lambda model: evaluate_records(model, processor, records, data, cfg, progress)[1],
                              every, log_path)
