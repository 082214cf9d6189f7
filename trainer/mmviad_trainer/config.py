"""Training config: one YAML file (``trainer/configs/*.yaml``) merged over :data:`DEFAULTS`.

``sft.args`` and ``grpo.args`` are passed to TRL's ``SFTConfig`` / ``GRPOConfig`` as they are, so
every TRL option is available; the trainer fills only output paths, logging and the settings
that video training needs (see :mod:`sft` and :mod:`grpo`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "name": "unnamed",
    "seed": 0,
    "data": {
        "protocol": "standard",    # train on <protocol>/train_split, evaluate on <protocol>/test_split
        "train_split": "train",
        "test_split": "test",
        "num_frames": 16,          # uniform frames per clip for training (issue #6: 16 train / 32 eval)
        "frame_size": [448, 448],  # (W, H), multiples of 32
        # Disjoint SFT and GRPO clip sets drawn from the training split by a sha256 ranking of clip ids
        # (the paper: separate 6k + 6k QA sets). null: the SFT set takes half, GRPO the rest.
        "sft_clips": None,
        "grpo_clips": None,
        "blank_video": False,      # control runs: every frame black (same prompt, no visual signal)
    },
    "model": {
        "tiny": False,             # True: random tiny Qwen3-VL + tokenizer built in code (CPU smoke)
        "tiny_size": {},           # overrides of tiny.TinySize (hidden, layers, ...) for the learning bench
        "path": None,              # local directory or hub id (e.g. Qwen/Qwen3-VL-2B-Instruct)
        "dtype": "float32",
        "attn_implementation": "sdpa",
        "video_processor": "shim",  # shim (torch only) | official (needs torchvision)
    },
    "prompt": {"domain_knowledge": True},
    # template | openai (base_url, model, api_key_env, temperature, num_frames, frame_size, timeout_s, retries)
    "teacher": {"kind": "template"},
    "sft": {"enabled": True, "finetune": "full", "lora": {}, "args": {}},
    "grpo": {
        "enabled": True,
        "finetune": "full",
        "lora": {},
        "rewards": ["format", "answer", "defect", "temporal"],
        "reward_weights": [1.0, 1.0, 1.0, 1.0],  # the paper sums the four rewards
        "defect_gate": True,                     # False: Table 5 ablation "w/o gate"
        "temporal": {},                          # TemporalConstants overrides; mode: visibility | flat_iou
        "contrastive_sampling": False,           # MMR-AD's trick, not VISTA's (see README)
        "args": {},
    },
    "eval": {
        "enabled": True,
        "max_clips": None,
        "max_new_tokens": 512,
        "batch_size": 1,
        # The final evaluation is the benchmark's (mmviad eval --runner transformers): frames per
        # clip (the paper's 32), pixels per frame (aspect kept), prompt file and setting.
        "num_frames": 32,
        "max_pixels": 448 * 448,
        "prompt": "structured",
        "setting": "0-shot",
        # Evaluation during SFT and GRPO on a held-out slice of the test split (0 = off).
        "every_steps": 0,
        "during_clips": 32,
    },
}

REQUIRED_GRPO_ARGS = ("beta", "loss_type", "num_generations", "max_completion_length")
# mappings passed on as they are (checked where they are used)
FREE_FORM = ("args", "lora", "temporal", "teacher", "tiny_size")


def _merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in base:
            raise ValueError(f"{where}: unknown key {k!r} (known: {sorted(base)})")
        if isinstance(base[k], dict) and base[k] and k not in FREE_FORM:
            if not isinstance(v, dict):
                raise ValueError(f"{where}.{k}: expected a mapping")
            out[k] = _merge(base[k], v, f"{where}.{k}")
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a config YAML, merge over the defaults and check what training needs."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    cfg = _merge(DEFAULTS, raw, str(path))
    check_config(cfg, str(path))
    return cfg


def check_config(cfg: dict[str, Any], where: str = "config") -> None:
    m = cfg["model"]
    if not m["tiny"] and not m["path"]:
        raise ValueError(f"{where}: model.path is required unless model.tiny is true")
    w, h = cfg["data"]["frame_size"]
    if w % 32 or h % 32:
        raise ValueError(f"{where}: data.frame_size {w}x{h} must be multiples of 32")
    for stage in ("sft", "grpo"):
        if cfg[stage]["finetune"] not in ("full", "lora"):
            raise ValueError(f"{where}: {stage}.finetune must be full or lora")
    g = cfg["grpo"]
    if g["enabled"]:
        missing = [k for k in REQUIRED_GRPO_ARGS if k not in g["args"]]
        if missing:
            raise ValueError(f"{where}: grpo.args must set {missing} explicitly (TRL defaults beta=0, dapo)")
        if len(g["reward_weights"]) != len(g["rewards"]):
            raise ValueError(f"{where}: grpo.reward_weights needs one weight per reward in grpo.rewards")
        if g["contrastive_sampling"] and g["args"].get("use_vllm"):
            raise ValueError(f"{where}: grpo.contrastive_sampling cannot be combined with use_vllm (an injected "
                             "trace has no sampling log-probs for vLLM's importance-sampling correction)")
        from .rewards import build_rewards

        try:
            build_rewards(g["rewards"], g["temporal"], g["defect_gate"])
        except ValueError as e:
            raise ValueError(f"{where}: grpo: {e}") from None
    d = cfg["data"]
    for key in ("sft_clips", "grpo_clips"):
        if d[key] is not None and (not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < 1):
            raise ValueError(f"{where}: data.{key} must be a positive integer or null, got {d[key]!r}")
    e = cfg["eval"]
    for key in ("every_steps", "during_clips", "batch_size"):
        if not isinstance(e[key], int) or isinstance(e[key], bool) or e[key] < 0:
            raise ValueError(f"{where}: eval.{key} must be a non-negative integer, got {e[key]!r}")
