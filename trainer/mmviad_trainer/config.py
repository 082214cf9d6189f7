"""Training config: one YAML file (``trainer/configs/*.yaml``) validated by the typed model :class:`TrainConfig`.

Every field has a type, a default and a help text (``mmviad-train config`` lists them; the
README's config table is the same listing). Validation is strict, as for the pipeline's records:
an unknown key, a value of the wrong type (no ``"8"`` for 8, no ``true`` for 1) or a broken rule
fails with one line naming the file and the field. A section left out, or a key left out of a
section, takes its default; a mapping in a free-form field (``args``, ``lora``, ``temporal``,
``teacher``, ``tiny_size``) replaces the default as a whole and is checked where it is used.

``sft.args`` and ``grpo.args`` are passed to TRL's ``SFTConfig`` / ``GRPOConfig`` as they are, so
every TRL option is available; the trainer fills only output paths, logging and the settings
that video training needs (see :mod:`sft` and :mod:`grpo`).

:func:`load_config` returns the validated config as a plain JSON-safe dict
(:meth:`TrainConfig.model_dump`): the stages index it by section and key, and ``run.json`` records it.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REQUIRED_GRPO_ARGS = ("beta", "loss_type", "num_generations", "max_completion_length")


class _Section(BaseModel):
    """Strict: no unknown keys, no type coercion."""
    model_config = ConfigDict(extra="forbid", strict=True)


class DataConfig(_Section):
    protocol: str = Field("standard", description="train on qa/<protocol>/<train_split>, evaluate on <test_split> "
                                                  "(standard or unseen)")
    train_split: str = Field("train", description="split the SFT and GRPO clips are drawn from")
    test_split: str = Field("test", description="split of the final evaluation (and the held-out slice)")
    num_frames: int = Field(16, description="uniform frames per clip in training (the paper: 16 in training, "
                                            "32 in evaluation)")
    frame_size: list[int] = Field([448, 448], min_length=2, max_length=2,
                                  description="training frame [width, height] in pixels, multiples of 32")
    sft_clips: Optional[int] = Field(None, description="PS-SFT clips drawn from the training split (a sha256 "
                                                       "ranking of clip ids); null: half of the split")
    grpo_clips: Optional[int] = Field(None, description="VISTA-GRPO clips, disjoint from the SFT set; null: the "
                                                        "rest of the split")
    blank_video: bool = Field(False, description="control runs: every frame black (same prompt, no visual signal)")


class ModelConfig(_Section):
    tiny: bool = Field(False, description="a random tiny Qwen3-VL and tokenizer built in code (CPU smoke runs)")
    tiny_size: dict[str, Any] = Field({}, description="overrides of tiny.TinySize (hidden, layers, ...) for the "
                                                      "learning bench")
    path: Optional[str] = Field(None, description="local folder or hub id (e.g. Qwen/Qwen3-VL-2B-Instruct); "
                                                  "required unless tiny")
    dtype: str = Field("float32", description="torch dtype of the weights (float32, bfloat16, float16)")
    attn_implementation: str = Field("sdpa", description="transformers attention (sdpa, eager, flash_attention_2)")
    video_processor: Literal["shim", "official"] = Field(
        "shim", description="shim: torch-only video processor; official: transformers' (needs torchvision)")


class PromptConfig(_Section):
    domain_knowledge: bool = Field(True, description="add the defect-type descriptions to the training prompt")


class StageConfig(_Section):
    enabled: bool = Field(True, description="run this stage")
    finetune: Literal["full", "lora"] = Field("full", description="full fine-tuning or a LoRA adapter "
                                                                  "(merged into the weights at the end)")
    lora: dict[str, Any] = Field({}, description="peft LoraConfig arguments (with finetune: lora)")
    args: dict[str, Any] = Field({}, description="TRL trainer arguments, passed on as they are")


class SFTStageConfig(StageConfig):
    """PS-SFT: supervised fine-tuning on the perception-structured traces."""
    args: dict[str, Any] = Field({}, description="TRL SFTConfig arguments, passed on as they are")


class GRPOStageConfig(StageConfig):
    """VISTA-GRPO."""
    args: dict[str, Any] = Field({}, description="TRL GRPOConfig arguments, passed on as they are; must set beta, "
                                                 "loss_type, num_generations and max_completion_length")
    rewards: list[str] = Field(["format", "answer", "defect", "temporal"],
                               description="reward functions by name (rewards.REWARDS), in order")
    reward_weights: list[float] = Field([1.0, 1.0, 1.0, 1.0],
                                        description="one weight per reward; the paper sums the four rewards")
    defect_gate: bool = Field(True, description="false: Table 5's 'w/o gate' ablation (Q2 alone decides the "
                                                "defect reward)")
    temporal: dict[str, Any] = Field({}, description="TemporalConstants overrides; mode: visibility or flat_iou "
                                                     "(Table 5's flat-IoU ablation)")
    contrastive_sampling: bool = Field(False, description="inject the ground-truth trace into a group with no "
                                                          "correct answer (MMR-AD's trick, not VISTA's)")


class EvalConfig(_Section):
    enabled: bool = Field(True, description="run the final evaluation on the test split")
    max_clips: Optional[int] = Field(None, description="evaluate only the first N test clips (null: all)")
    max_new_tokens: int = Field(512, description="generation budget per answer")
    batch_size: int = Field(1, description="clips per generation batch")
    num_frames: int = Field(32, description="frames per clip in evaluation (the paper's 32), as mmviad eval")
    max_pixels: Optional[int] = Field(448 * 448, description="pixels per evaluation frame, aspect ratio kept")
    prompt: str = Field("structured", description="prompt file assets/prompts/<prompt>.txt (the response format "
                                                  "the trainer teaches)")
    setting: str = Field("0-shot", description="evaluation setting, as mmviad eval --setting")
    every_steps: int = Field(0, description="evaluate on a held-out slice of the test split every N training "
                                            "steps of SFT and GRPO (0: off)")
    during_clips: int = Field(32, description="size of that held-out slice")


class TrainConfig(_Section):
    """One training run: data, model, the two stages and the evaluation."""
    name: str = Field("unnamed", description="run name; the run folder defaults to <data>/train/<name>")
    seed: int = Field(0, description="seeds the SFT/GRPO clip sets, the template traces, the tiny model and TRL")
    data: DataConfig = Field(default_factory=DataConfig, description="which clips, frames per clip, frame size")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the model to fine-tune")
    prompt: PromptConfig = Field(default_factory=PromptConfig, description="the training prompt")
    teacher: dict[str, Any] = Field(
        {"kind": "template"}, description="trace teacher: {kind: template}, or {kind: openai, base_url, model, "
                                          "api_key_env, temperature, num_frames, frame_size, timeout_s, retries, "
                                          "workers}")
    sft: SFTStageConfig = Field(default_factory=SFTStageConfig, description="PS-SFT stage")
    grpo: GRPOStageConfig = Field(default_factory=GRPOStageConfig, description="VISTA-GRPO stage")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="final evaluation and evaluation during training")

    @model_validator(mode="after")
    def _rules(self) -> "TrainConfig":
        problem = _rule_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read and validate a config YAML; any problem raises ``ValueError`` ``<path>: <field>: <problem>``."""
        path = Path(path)
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise ValueError(f"{path}: {_first_problem(e)}") from None


def _rule_problem(c: TrainConfig) -> Optional[str]:
    """The first broken cross-field rule, naming its field; ``None`` when all hold."""
    if not c.model.tiny and not c.model.path:
        return "model.path is required unless model.tiny is true"
    w, h = c.data.frame_size
    if w % 32 or h % 32:
        return f"data.frame_size {w}x{h} must be multiples of 32"
    for key in ("sft_clips", "grpo_clips"):
        v = getattr(c.data, key)
        if v is not None and v < 1:
            return f"data.{key} must be a positive integer or null, got {v!r}"
    for key in ("every_steps", "during_clips", "batch_size"):
        if getattr(c.eval, key) < 0:
            return f"eval.{key} must be a non-negative integer, got {getattr(c.eval, key)!r}"
    g = c.grpo
    if g.enabled:
        missing = [k for k in REQUIRED_GRPO_ARGS if k not in g.args]
        if missing:
            return f"grpo.args must set {missing} explicitly (TRL defaults beta=0, dapo)"
        if len(g.reward_weights) != len(g.rewards):
            return "grpo.reward_weights needs one weight per reward in grpo.rewards"
        if g.contrastive_sampling and g.args.get("use_vllm"):
            return ("grpo.contrastive_sampling cannot be combined with use_vllm (an injected trace has no "
                    "sampling log-probs for vLLM's importance-sampling correction)")
        from .rewards import build_rewards

        try:
            build_rewards(g.rewards, g.temporal, g.defect_gate)
        except ValueError as e:
            return f"grpo: {e}"
    return None


def _section_at(loc: tuple[Any, ...]) -> Optional[type[BaseModel]]:
    """The model class of the section at ``loc`` (``()`` is the top level), if it is one."""
    model: Any = TrainConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _first_problem(err: ValidationError) -> str:
    """One line for the first error: ``<field>: <problem>``, or a broken rule's own message."""
    e = err.errors(include_url=False)[0]
    loc = tuple(e["loc"])
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    if e["type"] == "value_error" and not loc:   # a cross-field rule: its message names the field
        return str((e.get("ctx") or {}).get("error", e["msg"]))
    if e["type"] == "extra_forbidden":
        parent = _section_at(loc[:-1])
        known = f" (known: {sorted(parent.model_fields)})" if parent is not None else ""
        section = ".".join(map(str, loc[:-1]))
        return f"{section + ': ' if section else ''}unknown key {loc[-1]!r}{known}"
    if e["type"] in ("model_type", "model_attributes_type"):
        return f"{where}: expected a mapping, got {type(e['input']).__name__}"
    msg = e["msg"][0].lower() + e["msg"][1:]
    return f"{where}: {msg}, got {e['input']!r}"


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a config YAML, validate it with :class:`TrainConfig` and return it as a plain dict
    (every field present, defaults filled in)."""
    return TrainConfig.load(path).model_dump()


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if origin is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " | ".join(_type_name(a) for a in args) + " | null"
    if origin is not None:
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation))


def explain(model: type[BaseModel] = TrainConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(field, type, default, help)`` for every field, sections expanded (``mmviad-train config``)."""
    rows = []
    for name, f in model.model_fields.items():
        key = prefix + name
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += explain(ann, key + ".")
            continue
        default = f.get_default(call_default_factory=True)
        rows.append((key, _type_name(ann), yaml.safe_dump(default, default_flow_style=True).strip()
                     .removesuffix("...").strip(), f.description or ""))
    return rows


def explain_markdown() -> str:
    """The field listing as a Markdown table (the README's config table)."""
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t.replace('|', '&#124;')} | `{d}` | {h.replace('|', '&#124;')} |" for k, t, d, h in explain()]
    return "\n".join(lines)
