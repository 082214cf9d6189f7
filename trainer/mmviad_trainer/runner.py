"""The ``make train`` pipeline: traces → PS-SFT → VISTA-GRPO → evaluation on the test split.

Run folder layout (``<run>`` = ``--run-dir``, default ``<data>/train/<config name>``)::

    base/                 tiny model + tokenizer (cpu-smoke only)
    stage_sets.json       the clip ids of the disjoint SFT and GRPO sets
    traces/traces.jsonl   kept PS-SFT traces;  traces/trace_counts.json  kept/discarded counts
    sft/checkpoint-N/     TRL checkpoints (resume);  sft/log.jsonl;  sft/final/  full (merged) weights
    grpo/checkpoint-N/    idem;  grpo/log.jsonl (loss, rewards per component, KL, eval rows);  grpo/final/
    eval/predictions.jsonl, eval/metrics.json
    run.json              config, data, stage status (atomic)

A stage whose ``final/`` exists is skipped; an interrupted stage resumes from its last checkpoint.
Launched on several processes (``accelerate launch`` / ``torchrun``), every rank runs this code:
trace synthesis and evaluation are sharded by clip, training is data-parallel (DDP, ZeRO-3 or FSDP
from the accelerate config), and only the main process writes shared files (:mod:`dist`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from pipeline.io import atomic_write_text, write_json

from . import dist
from .callbacks import JsonlLog
from .config import LoraSettings, TrainConfig, load_config
from .records import ground_truth, load_split
from .rewards import build_rewards
from .splits import draw_stage_sets
from .teacher import make_teacher
from .traces import synthesize_sharded, write_traces


def _device_args() -> dict[str, Any]:
    import torch

    return {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False, "fp16": False}


def _last_checkpoint(stage_dir: Path) -> Optional[str]:
    cks = sorted(stage_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(cks[-1]) if cks else None


def _lora_config(lora: LoraSettings):
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def check_full_weights(folder: Path) -> None:
    """Raise if ``folder`` holds no weights or any empty tensor (what an ungathered ZeRO-3 save writes)."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise RuntimeError(f"{folder}: no *.safetensors written")
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                shape = st.get_slice(k).get_shape()
                if any(s == 0 for s in shape):
                    raise RuntimeError(f"{f}: tensor {k} has shape {shape}: sharded (ZeRO-3) weights were saved "
                                       "without gathering; set zero3_save_16bit_model / FULL_STATE_DICT")


def _merge_lora(adapter_dir: Path, base: str, dtype: str) -> None:
    """Replace the adapter in ``adapter_dir`` by the merged full model (base + LoRA), on CPU."""
    from peft import PeftModel
    from transformers import Qwen3VLForConditionalGeneration

    model = Qwen3VLForConditionalGeneration.from_pretrained(base, dtype=_dtype(dtype))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    for f in list(adapter_dir.glob("adapter_*")):
        f.unlink()
    merged.save_pretrained(str(adapter_dir))


def save_final(trainer: Any, processor: Any, final: Path, base: str, lora: bool, dtype: str) -> Path:
    """Full weights that ``from_pretrained`` reloads, in ``final`` (tmp dir, then rename).

    ``trainer.save_model`` runs on every rank: under ZeRO-3 or FSDP it gathers the full state dict
    (the accelerate configs set ``zero3_save_16bit_model`` / ``FULL_STATE_DICT``) and only the main
    process writes. A LoRA adapter is merged into its base on the main process. Then the weights
    are checked (no empty shard tensors) and the folder renamed.
    """
    tmp = final.with_name(final.name + ".tmp")
    if dist.is_main():
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    trainer.save_model(str(tmp))
    if dist.is_main():
        if lora:
            _merge_lora(tmp, base, dtype)
        processor.save_pretrained(str(tmp))
        check_full_weights(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    dist.barrier()
    return final


def vision_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the vision placeholder tokens, which a completion must never contain."""
    toks = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    return [i for i in tokenizer.convert_tokens_to_ids(toks) if i is not None and i != tokenizer.unk_token_id]


def base_checkpoint(cfg: TrainConfig, run_dir: Path) -> str:
    """The initial weights: a built tiny model (saved under ``run_dir/base``) or ``model.path``."""
    if cfg.model.tiny:
        from .tiny import build_tiny_checkpoint

        path = run_dir / "base"
        if dist.is_main():
            build_tiny_checkpoint(path, seed=cfg.seed, size=cfg.model.tiny_size)
        dist.barrier()
        return str(path)
    return str(cfg.model.path)


def _row(rec: dict[str, Any], data: Path, trace: str) -> dict[str, Any]:
    return {"clip_id": rec["clip_id"], "video_path": str((Path(data) / rec["video"]).resolve()),
            "record": json.dumps(rec, sort_keys=True), "trace": trace, "solution": ground_truth(rec).to_json()}


def _traces(cfg: TrainConfig, data: Path, run_dir: Path, records: list[dict[str, Any]],
            progress: bool) -> dict[str, str]:
    """``clip_id → trace`` for ``records``: read from ``traces/``, synthesising (sharded over ranks)
    the clips not attempted before; the main process writes the merged files."""
    tdir = run_dir / "traces"
    kept: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    if (tdir / "traces.jsonl").exists() and (tdir / "trace_counts.json").exists():
        kept = [json.loads(line) for line in (tdir / "traces.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        counts = json.loads((tdir / "trace_counts.json").read_text(encoding="utf-8"))
    attempted = set(counts.get("attempted", [r["clip_id"] for r in kept]))
    todo = [r for r in records if r["clip_id"] not in attempted]
    if todo:
        teacher = make_teacher(cfg.teacher, cfg.seed, data)
        new, new_counts = synthesize_sharded(todo, teacher, progress, cfg.teacher.workers)
        kept += new
        for k, v in new_counts.items():
            counts[k] = counts.get(k, 0) + v if isinstance(v, int) else v
        counts["attempted"] = sorted(attempted | {r["clip_id"] for r in todo})
        if dist.is_main():
            write_traces(kept, counts, tdir)
            shown = {k: v for k, v in new_counts.items() if k not in ("kept", "total", "discarded", "per_rank")}
            print(f"traces: kept {new_counts.get('kept', 0)} of {new_counts['total']} (discarded: {shown})")
        dist.barrier()
    return {r["clip_id"]: r["trace"] for r in kept}


def prepare_rows(cfg: TrainConfig, data: Path, run_dir: Path, progress: bool = True
                 ) -> dict[str, list[dict[str, Any]]]:
    """``{"sft": rows, "grpo": rows}`` from disjoint clip sets of the training split.

    A row is ``{clip_id, video_path, record, trace, solution}`` (all strings). SFT rows are the clips
    whose trace survived the filter; GRPO rows carry a trace only with contrastive sampling (the
    injected ground-truth completion), else ``""``.
    """
    d = cfg.data
    records = load_split(data, d.train_split, d.protocol)
    if not records:
        raise ValueError(f"{data}: the {d.train_split} split is empty")
    sft_recs, grpo_recs = draw_stage_sets(records, d.sft_clips, d.grpo_clips, cfg.seed, where="data")
    if dist.is_main():
        write_json(run_dir / "stage_sets.json", {"sft": [r["clip_id"] for r in sft_recs],
                                                        "grpo": [r["clip_id"] for r in grpo_recs]})
    contrastive = cfg.grpo.contrastive_sampling
    need = sft_recs + (grpo_recs if contrastive else [])
    traces = _traces(cfg, data, run_dir, need, progress)
    sft_rows = [_row(r, data, traces[r["clip_id"]]) for r in sft_recs if r["clip_id"] in traces]
    grpo_rows = [_row(r, data, traces.get(r["clip_id"], "") if contrastive else "") for r in grpo_recs]
    if cfg.sft.enabled and not sft_rows:
        raise ValueError("no SFT trace survived the filter; see traces/trace_counts.json")
    return {"sft": sft_rows, "grpo": grpo_rows}


def _callbacks(cfg: TrainConfig, data: Path, stage: Path, processor: Any, progress: bool) -> list[Any]:
    from .eval_adapter import heldout_records, make_callback

    out: list[Any] = [JsonlLog(stage / "log.jsonl")]
    if cfg.eval.every_steps:
        cb = make_callback(cfg, data, heldout_records(cfg, data), processor, stage / "log.jsonl", progress)
        if cb is not None:
            out.append(cb)
    return out


def _attach(trainer: Any, callbacks: list[Any]) -> None:
    for cb in callbacks:
        if hasattr(cb, "trainer"):
            cb.trainer = trainer


def run_sft(cfg: TrainConfig, rows: list[dict[str, Any]], init: str, run_dir: Path, data: Path,
            progress: bool = False) -> str:
    """PS-SFT from ``init``; returns the final (full-weight) checkpoint's path."""
    from datasets import Dataset
    from transformers import Qwen3VLForConditionalGeneration
    from trl import SFTConfig, SFTTrainer

    from .processor import load_processor
    from .sft import VideoSFTCollator

    stage = run_dir / "sft"
    final = stage / "final"
    if (final / "config.json").exists():
        print(f"sft: {final} exists, skipped")
        return str(final)
    s, m, d = cfg.sft, cfg.model, cfg.data
    processor = load_processor(init, m.video_processor)
    model = Qwen3VLForConditionalGeneration.from_pretrained(init, dtype=_dtype(m.dtype),
                                                            attn_implementation=m.attn_implementation)
    args = {"logging_steps": 1, "save_strategy": "steps", "save_steps": 50, "report_to": [], "seed": cfg.seed,
            **_device_args(), **s.args}
    sft_args = SFTConfig(output_dir=str(stage), remove_unused_columns=False, max_length=None,
                         dataset_kwargs={"skip_prepare_dataset": True}, **args)
    callbacks = _callbacks(cfg, data, stage, processor, progress)
    trainer = SFTTrainer(
        model=model, args=sft_args, train_dataset=Dataset.from_list(rows), processing_class=processor,
        data_collator=VideoSFTCollator(processor, d.num_frames, tuple(d.frame_size),
                                       cfg.prompt.domain_knowledge, d.blank_video),
        peft_config=_lora_config(s.lora) if s.finetune == "lora" else None, callbacks=callbacks)
    _attach(trainer, callbacks)
    # Qwen3-VL declares accepts_loss_kwargs=False, so transformers would not count the label tokens
    # of the whole step and each rank/micro-batch would average its own tokens: the loss would change
    # with the number of GPUs and gradient_accumulation_steps. TRL's SFT loss divides by that count
    # itself when it is given, so turn the counting on: every configuration then optimises the token
    # mean over the global batch (tests/test_distributed.py checks 1 vs 2 processes).
    trainer.model_accepts_loss_kwargs = True
    trainer.train(resume_from_checkpoint=_last_checkpoint(stage))
    return str(save_final(trainer, processor, final, init, s.finetune == "lora", m.dtype))


def run_grpo(cfg: TrainConfig, rows: list[dict[str, Any]], init: str, run_dir: Path, data: Optional[Path] = None,
             progress: bool = False) -> str:
    """VISTA-GRPO from ``init`` (also the reference model); returns the final checkpoint's path."""
    from datasets import Dataset
    from trl import GRPOConfig

    from .grpo import VideoGRPOTrainer, make_prompt_transform
    from .processor import load_processor

    stage = run_dir / "grpo"
    final = stage / "final"
    if (final / "config.json").exists():
        print(f"grpo: {final} exists, skipped")
        return str(final)
    if not rows:
        raise ValueError("the GRPO clip set is empty (data.grpo_clips)")
    g, m, d = cfg.grpo, cfg.model, cfg.data
    rewards = build_rewards(g.rewards, g.temporal, g.defect_gate)
    processor = load_processor(init, m.video_processor)
    args = {"logging_steps": 1, "save_strategy": "steps", "save_steps": 50, "report_to": [], "seed": cfg.seed,
            "log_completions": False, **_device_args(), **g.args}
    # a sampled <|video_pad|> in a completion breaks the video-token count of the log-prob pass
    banned = vision_token_ids(processor.tokenizer)
    ban = ({"logit_bias": {i: -100.0 for i in banned}} if args.get("use_vllm")  # vLLM SamplingParams
           else {"suppress_tokens": banned})                                     # transformers generate
    args["generation_kwargs"] = {**ban, **(args.get("generation_kwargs") or {})}
    grpo_args = GRPOConfig(output_dir=str(stage), remove_unused_columns=False, reward_weights=g.reward_weights,
                           model_init_kwargs={"dtype": m.dtype, "attn_implementation": m.attn_implementation},
                           **args)
    ds = Dataset.from_list(rows).with_transform(
        make_prompt_transform(d.num_frames, tuple(d.frame_size), cfg.prompt.domain_knowledge, d.blank_video))
    callbacks = _callbacks(cfg, data, stage, processor, progress) if data is not None else [JsonlLog(stage / "log.jsonl")]
    trainer = VideoGRPOTrainer(
        model=init, reward_funcs=rewards, args=grpo_args, train_dataset=ds, processing_class=processor,
        peft_config=_lora_config(g.lora) if g.finetune == "lora" else None, callbacks=callbacks,
        contrastive={"rewards": rewards, "weights": g.reward_weights} if g.contrastive_sampling else None)
    _attach(trainer, callbacks)
    trainer.train(resume_from_checkpoint=_last_checkpoint(stage))
    return str(save_final(trainer, processor, final, init, g.finetune == "lora", m.dtype))


def train(config: Path, data: Path, run_dir: Optional[Path] = None, stages: tuple[str, ...] = ("sft", "grpo", "eval"),
          progress: bool = True) -> dict[str, Any]:
    """Run the stages in order; returns (and, on the main process, writes ``run.json``) the stage
    outputs and times."""
    dist.init()
    cfg = load_config(config)
    data = Path(data)
    run_dir = Path(run_dir or data / "train" / cfg.name)
    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    status: dict[str, Any] = {"config": cfg.as_json(), "data": str(data), "world_size": dist.world_size(), "stages": {}}

    def mark(stage: str, **kw: Any) -> None:
        status["stages"][stage] = kw
        if dist.is_main():
            write_json(run_dir / "run.json", status)

    t = time.time()
    rows = prepare_rows(cfg, data, run_dir, progress)
    mark("traces", sft_rows=len(rows["sft"]), grpo_rows=len(rows["grpo"]), seconds=round(time.time() - t, 1))
    current = base_checkpoint(cfg, run_dir)
    if "sft" in stages and cfg.sft.enabled:
        t = time.time()
        current = run_sft(cfg, rows["sft"], current, run_dir, data, progress)
        mark("sft", checkpoint=current, seconds=round(time.time() - t, 1))
    elif (run_dir / "sft" / "final" / "config.json").exists():
        current = str(run_dir / "sft" / "final")  # a stage run alone continues from earlier results
    if "grpo" in stages and cfg.grpo.enabled:
        t = time.time()
        current = run_grpo(cfg, rows["grpo"], current, run_dir, data, progress)
        mark("grpo", checkpoint=current, seconds=round(time.time() - t, 1))
    elif (run_dir / "grpo" / "final" / "config.json").exists():
        current = str(run_dir / "grpo" / "final")
    if "eval" in stages and cfg.eval.enabled:
        from .eval_adapter import final_evaluation

        t = time.time()
        metrics = final_evaluation(cfg, data, current, run_dir / "eval", progress)
        mark("eval", metrics=metrics, seconds=round(time.time() - t, 1))
    if dist.is_main():
        atomic_write_text(run_dir / "FINAL", current + "\n")
    dist.barrier()
    return status
