"""The ``make train`` pipeline: traces → PS-SFT → VISTA-GRPO → evaluation on the test split.

Run folder layout (``<run>`` = ``--run-dir``, default ``<data>/train/<config name>``)::

    base/                 tiny model + tokenizer (cpu-smoke only)
    traces/traces.jsonl   kept PS-SFT traces;  traces/trace_counts.json  kept/discarded counts
    sft/checkpoint-N/     TRL checkpoints (resume);  sft/log.jsonl;  sft/final/  merged model
    grpo/checkpoint-N/    idem;  grpo/log.jsonl (loss, rewards per component, KL);  grpo/final/
    eval/predictions.jsonl, eval/metrics.json
    run.json              config, data, stage status (atomic)

A stage whose ``final/`` exists is skipped; an interrupted stage resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from .config import load_config
from .io import atomic_write_json, atomic_write_text
from .records import ground_truth, load_split
from .rewards import build_rewards
from .teacher import make_teacher
from .traces import read_traces, synthesize, write_traces


def _device_args() -> dict[str, Any]:
    import torch

    return {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False, "fp16": False}


def _log_callback(path: Path):
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """Append every log dict to ``log.jsonl`` and echo the key numbers."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
            keys = [k for k in row if k in ("loss", "kl", "reward", "grad_norm") or k.startswith("rewards/")
                    and k.endswith("/mean")]
            print(f"[{path.parent.name} step {state.global_step}] "
                  + " ".join(f"{k}={row[k]:.4g}" for k in keys), flush=True)

    return JsonlLog()


def _last_checkpoint(stage_dir: Path) -> Optional[str]:
    cks = sorted(stage_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(cks[-1]) if cks else None


def _lora_config(lora: dict[str, Any]):
    from peft import LoraConfig

    return LoraConfig(r=int(lora.get("r", 16)), lora_alpha=int(lora.get("alpha", 32)),
                      lora_dropout=float(lora.get("dropout", 0.05)),
                      target_modules=lora.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"]),
                      task_type="CAUSAL_LM")


def _save_final(model: Any, processor: Any, final: Path) -> Path:
    """Save the (LoRA-merged) model and the processor to ``final`` atomically (tmp dir + rename)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(str(tmp))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def vision_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the vision placeholder tokens, which a completion must never contain."""
    toks = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    return [i for i in tokenizer.convert_tokens_to_ids(toks) if i is not None and i != tokenizer.unk_token_id]


def base_checkpoint(cfg: dict[str, Any], run_dir: Path) -> str:
    """The initial weights: a built tiny model (saved under ``run_dir/base``) or ``model.path``."""
    if cfg["model"]["tiny"]:
        from .tiny import build_tiny_checkpoint

        return str(build_tiny_checkpoint(run_dir / "base", seed=cfg["seed"]))
    return str(cfg["model"]["path"])


def prepare_rows(cfg: dict[str, Any], data: Path, run_dir: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Training rows with traces: ``{clip_id, video_path, record, trace, solution}`` (all strings)."""
    d = cfg["data"]
    records = load_split(data, d["train_split"], d["protocol"])
    if d["max_train_clips"]:
        records = records[: int(d["max_train_clips"])]
    if not records:
        raise ValueError(f"{data}: the {d['train_split']} split is empty")
    tdir = run_dir / "traces"
    if (tdir / "traces.jsonl").exists() and (tdir / "trace_counts.json").exists():
        traces = read_traces(tdir / "traces.jsonl")
    else:
        kept, counts = synthesize(records, make_teacher(cfg["teacher"], cfg["seed"]), progress)
        write_traces(kept, counts, tdir)
        print(f"traces: kept {counts.get('kept', 0)} of {counts['total']} "
              f"({ {k: v for k, v in counts.items() if k not in ('kept', 'total', 'discarded')} } discarded)")
        traces = {r["clip_id"]: r["trace"] for r in kept}
    rows = [{"clip_id": r["clip_id"], "video_path": str((Path(data) / r["video"]).resolve()),
             "record": json.dumps(r, sort_keys=True), "trace": traces[r["clip_id"]],
             "solution": ground_truth(r).to_json()} for r in records if r["clip_id"] in traces]
    if not rows:
        raise ValueError("no trace survived the filter; see traces/trace_counts.json")
    return rows


def run_sft(cfg: dict[str, Any], rows: list[dict[str, Any]], init: str, run_dir: Path) -> str:
    """PS-SFT from ``init``; returns the merged final checkpoint's path."""
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
    s, m, d = cfg["sft"], cfg["model"], cfg["data"]
    processor = load_processor(init, m["video_processor"])
    model = Qwen3VLForConditionalGeneration.from_pretrained(init, dtype=_dtype(m["dtype"]),
                                                            attn_implementation=m["attn_implementation"])
    args = {"logging_steps": 1, "save_strategy": "steps", "save_steps": 50, "report_to": [], "seed": cfg["seed"],
            **_device_args(), **s["args"]}
    sft_args = SFTConfig(output_dir=str(stage), remove_unused_columns=False, max_length=None,
                         dataset_kwargs={"skip_prepare_dataset": True}, **args)
    trainer = SFTTrainer(
        model=model, args=sft_args, train_dataset=Dataset.from_list(rows), processing_class=processor,
        data_collator=VideoSFTCollator(processor, d["num_frames"], tuple(d["frame_size"]),
                                       cfg["prompt"]["domain_knowledge"]),
        peft_config=_lora_config(s["lora"]) if s["finetune"] == "lora" else None,
        callbacks=[_log_callback(stage / "log.jsonl")])
    trainer.train(resume_from_checkpoint=_last_checkpoint(stage))
    return str(_save_final(trainer.model, processor, final))


def run_grpo(cfg: dict[str, Any], rows: list[dict[str, Any]], init: str, run_dir: Path) -> str:
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
    g, m, d = cfg["grpo"], cfg["model"], cfg["data"]
    rewards = build_rewards(g["rewards"], g["temporal"])
    processor = load_processor(init, m["video_processor"])
    args = {"logging_steps": 1, "save_strategy": "steps", "save_steps": 50, "report_to": [], "seed": cfg["seed"],
            "log_completions": False, **_device_args(), **g["args"]}
    # a sampled <|video_pad|> in a completion breaks the video-token count of the log-prob pass
    args["generation_kwargs"] = {"suppress_tokens": vision_token_ids(processor.tokenizer),
                                 **(args.get("generation_kwargs") or {})}
    grpo_args = GRPOConfig(output_dir=str(stage), remove_unused_columns=False, reward_weights=g["reward_weights"],
                           model_init_kwargs={"dtype": m["dtype"], "attn_implementation": m["attn_implementation"]},
                           **args)
    ds = Dataset.from_list(rows).with_transform(
        make_prompt_transform(d["num_frames"], tuple(d["frame_size"]), cfg["prompt"]["domain_knowledge"]))
    trainer = VideoGRPOTrainer(
        model=init, reward_funcs=rewards, args=grpo_args, train_dataset=ds, processing_class=processor,
        peft_config=_lora_config(g["lora"]) if g["finetune"] == "lora" else None,
        callbacks=[_log_callback(stage / "log.jsonl")],
        contrastive={"rewards": rewards, "weights": g["reward_weights"]} if g["contrastive_sampling"] else None)
    trainer.train(resume_from_checkpoint=_last_checkpoint(stage))
    return str(_save_final(trainer.model, processor, final))


def train(config: Path, data: Path, run_dir: Optional[Path] = None, stages: tuple[str, ...] = ("sft", "grpo", "eval"),
          progress: bool = True) -> dict[str, Any]:
    """Run the stages in order; returns (and writes ``run.json``) the stage outputs and times."""
    cfg = load_config(config)
    data = Path(data)
    run_dir = Path(run_dir or data / "train" / cfg["name"])
    run_dir.mkdir(parents=True, exist_ok=True)
    status: dict[str, Any] = {"config": cfg, "data": str(data), "stages": {}}

    def mark(stage: str, **kw: Any) -> None:
        status["stages"][stage] = kw
        atomic_write_json(run_dir / "run.json", status)

    t = time.time()
    rows = prepare_rows(cfg, data, run_dir, progress)
    mark("traces", rows=len(rows), seconds=round(time.time() - t, 1))
    current = base_checkpoint(cfg, run_dir)
    if "sft" in stages and cfg["sft"]["enabled"]:
        t = time.time()
        current = run_sft(cfg, rows, current, run_dir)
        mark("sft", checkpoint=current, seconds=round(time.time() - t, 1))
    elif (run_dir / "sft" / "final" / "config.json").exists():
        current = str(run_dir / "sft" / "final")  # a stage run alone continues from earlier results
    if "grpo" in stages and cfg["grpo"]["enabled"]:
        t = time.time()
        current = run_grpo(cfg, rows, current, run_dir)
        mark("grpo", checkpoint=current, seconds=round(time.time() - t, 1))
    elif (run_dir / "grpo" / "final" / "config.json").exists():
        current = str(run_dir / "grpo" / "final")
    if "eval" in stages and cfg["eval"]["enabled"]:
        from .evaluate import evaluate

        t = time.time()
        metrics = evaluate(cfg, data, current, run_dir / "eval", progress)
        mark("eval", metrics=metrics, seconds=round(time.time() - t, 1))
    atomic_write_text(run_dir / "FINAL", current + "\n")
    return status
