"""Final evaluation on the test split, through the project's one evaluation path.

:func:`evaluate_model` hands an already-loaded model and processor to the evaluator's
:class:`pipeline.eval.runners.transformers_local.TransformersRunner` and runs
:func:`pipeline.eval.run.evaluate_records` — the code ``mmviad eval --runner transformers`` runs —
so the trainer samples the same frames (32 by default, the paper's setting, uniform with their real
timestamps), at the same resolution (aspect ratio kept, sides multiples of 32, ``max_pixels`` per
frame), sends the same prompt (``assets/prompts/<prompt>.txt``), generates in batches on the
model's device, and scores with the same grammar and metrics. ``python -m pipeline.eval --runner
transformers --processor trainer --prompt structured --model <checkpoint>`` (``mmviad eval`` in this
environment) reproduces the numbers.

Writes ``<out_dir>/{predictions.jsonl, unparseable.jsonl, report.json, report.md}`` and
``metrics.json`` (the overall scores, in percent, and how the answers were read). For generation
sharded over processes, :func:`generate_responses` and :func:`score` are the same two halves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from pipeline.eval.frames import DEFAULT_MAX_PIXELS, EVAL_FRAMES
from pipeline.io import write_json

if TYPE_CHECKING:
    from .config import EvalConfig, TrainConfig


# eval.* settings this module reads, with their defaults (config keys beside enabled/max_clips/max_new_tokens)
EVAL_DEFAULTS: dict[str, Any] = {
    "num_frames": EVAL_FRAMES,      # the paper evaluates on 32 uniformly sampled frames
    "max_pixels": DEFAULT_MAX_PIXELS,
    "batch_size": 4,
    "prompt": "structured",         # the response format the trainer teaches (PS-SFT, VISTA-GRPO)
    "setting": "0-shot",
}


def eval_settings(e: EvalConfig) -> dict[str, Any]:
    """:data:`EVAL_DEFAULTS` overridden by the ``eval`` section's settings that are not null."""
    return {k: v if getattr(e, k) is None else getattr(e, k) for k, v in EVAL_DEFAULTS.items()}


def evaluate_model(model: Any, processor: Any, records: Sequence[dict[str, Any]], data_root: Path,
                   out_dir: Optional[Path] = None, *, n_frames: int = EVAL_FRAMES,
                   max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, prompt: str = "structured",
                   setting: str = "0-shot", batch_size: int = 4, max_new_tokens: int = 512, name: str = "trainer",
                   protocol: str = "standard", split: str = "test", seed: int = 0, progress: bool = True
                   ) -> dict[str, Any]:
    """Generate, parse and score ``records`` (QA rows whose videos lie under ``data_root``) with a
    model and processor in memory (evaluation during training can call it too): the model stays on
    its device, and its train/eval mode is restored afterwards.

    Returns the evaluator's report: ``overall`` (q1_acc, q1_bacc, q2_acc, q2_gated_acc, q3_acc,
    q4_miou, r@…, avg, … in percent), ``parsing`` (how each task's answers were read),
    ``breakdown`` and the run settings; writes the report files to ``out_dir`` when given."""
    from pipeline.eval.run import evaluate_records
    from pipeline.eval.runners.transformers_local import TransformersRunner

    runner = TransformersRunner.from_loaded(model, processor, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                            label=name)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        return evaluate_records(runner, records, Path(data_root), out_dir, name=name, protocol=protocol, split=split,
                                setting=setting, prompt=prompt, n_frames=n_frames, max_pixels=max_pixels, seed=seed,
                                progress=progress)
    finally:
        if was_training:
            model.train()


def generate_responses(model: Any, processor: Any, records: Sequence[dict[str, Any]], data_root: Path, *,
                       n_frames: int = EVAL_FRAMES, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                       prompt: str = "structured", setting: str = "0-shot", batch_size: int = 4,
                       max_new_tokens: int = 512, seed: int = 0, progress: bool = False) -> list[str]:
    """The responses of an in-memory model to ``records``, in order, generated exactly as
    :func:`evaluate_model` generates them (for callers that shard the clips over processes and
    score the gathered responses with :func:`score`)."""
    from pipeline.eval.run import prompt_builder
    from pipeline.eval.runners.transformers_local import TransformersRunner

    runner = TransformersRunner.from_loaded(model, processor, max_new_tokens=max_new_tokens, batch_size=batch_size)
    build = prompt_builder(Path(data_root), setting, prompt, n_frames, records, seed, max_pixels)
    return [p.response for p in runner.run(records, build, progress=progress)]


def score(records: Sequence[dict[str, Any]], responses: Sequence[str]) -> dict[str, Any]:
    """The evaluator's scores for responses produced elsewhere: ``overall`` (percent) with
    ``parsing`` (how each task's answers were read) added under that key."""
    from pipeline.eval import score_predictions

    rep = score_predictions(records, responses)
    return {**rep["overall"], "parsing": rep["parsing"]}


def load_eval_processor(path: str, kind: str = "shim") -> Any:
    """The trainer's processor for a checkpoint (``mmviad eval --processor trainer`` uses this)."""
    from .processor import load_processor

    return load_processor(path, kind)


def load_eval_model(path: str, dtype: str = "float32", attn_implementation: str = "sdpa") -> Any:
    """A checkpoint for evaluation: on the GPU when there is one (``device_map="auto"``)."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    cuda = torch.cuda.is_available()
    return Qwen3VLForConditionalGeneration.from_pretrained(
        path, dtype=getattr(torch, dtype), attn_implementation=attn_implementation,
        device_map="auto" if cuda else None).eval()


def evaluate(cfg: TrainConfig, data: Path, model_path: str, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """The ``make train`` eval stage: load ``model_path`` and :func:`evaluate_model` on the test split."""
    from pipeline.eval.run import load_split

    d, e, m = cfg.data, cfg.eval, cfg.model
    s = eval_settings(e)
    records = load_split(Path(data), d.protocol, d.test_split)
    if e.max_clips:
        records = records[: e.max_clips]
    if not records:
        print("eval: empty test split, skipped")
        return {"n": 0}
    model = load_eval_model(model_path, m.dtype, m.attn_implementation)
    processor = load_eval_processor(model_path, m.video_processor)
    report = evaluate_model(model, processor, records, Path(data), Path(out_dir), n_frames=int(s["num_frames"]),
                            max_pixels=s["max_pixels"], prompt=s["prompt"], setting=s["setting"],
                            batch_size=int(s["batch_size"]), max_new_tokens=e.max_new_tokens,
                            protocol=d.protocol, split=d.test_split, seed=cfg.seed,
                            progress=progress)
    metrics = {**report["overall"], "parsing": report["parsing"], "n_frames": report["n_frames"],
               "max_pixels": report["max_pixels"], "prompt": report["prompt"]}
    write_json(Path(out_dir) / "metrics.json", metrics)
    o = report["overall"]
    print("eval: " + " ".join(f"{k}={o[k]}" for k in ("q1_acc", "q2_acc", "q2_gated_acc", "q3_acc", "q4_miou", "avg")))
    return metrics
