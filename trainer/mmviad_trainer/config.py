"""Training config: one YAML file (``trainer/configs/*.yaml``) validated by the typed model :class:`TrainConfig`.

Every field has a type, a default and a help text (``mmviad-train config`` lists them; the
README's config table is the same listing). Validation is strict, as for the pipeline's records:
an unknown key, a value of the wrong type (no ``"8"`` for 8, no ``true`` for 1) or a broken rule
fails with one line naming the file and the field. A section left out, or a key left out of a
section, takes its default; a mapping in a free-form field (``args``, ``temporal``, ``tiny_size``)
replaces the default as a whole and is checked where it is used. ``teacher`` and ``*.lora`` are
typed sections too (:class:`TeacherConfig`, :class:`LoraSettings`).

``sft.args`` and ``grpo.args`` are passed to TRL's ``SFTConfig`` / ``GRPOConfig`` as they are, so
every TRL option is available; the trainer fills only output paths, logging and the settings
that video training needs (see :mod:`sft` and :mod:`grpo`).

:func:`load_config` returns the validated, immutable :class:`TrainConfig`; the stages read its
fields as attributes, :meth:`TrainConfig.updated` derives a changed copy (validated the same way)
and :meth:`TrainConfig.as_json` is what ``run.json`` records.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator
from typing_extensions import Self

REQUIRED_GRPO_ARGS = ("beta", "loss_type", "num_generations", "max_completion_length")


class _Section(BaseModel):
    """Strict: no unknown keys, no type coercion; frozen, so a shared config cannot be changed in
    place (derive a changed copy with :meth:`TrainConfig.updated`)."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @classmethod
    def parse(cls, raw: Any) -> Self:
        """Validate a mapping as this section; any problem raises ``ValueError`` ``<field>: <problem>``."""
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise ValueError(_first_problem(e, cls)) from None


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


# the keys a template teacher takes; the others are the OpenAI-compatible teacher's settings
TEMPLATE_TEACHER_KEYS = ("kind", "workers")


class TeacherConfig(_Section):
    """The PS-SFT trace teacher (:func:`teacher.make_teacher`)."""
    kind: Literal["template", "openai"] = Field(
        "template", description="template: seeded phrasing from the ground truth, no model; openai: an "
                                "OpenAI-compatible /chat/completions endpoint with vision input that sees the frames")
    workers: int = Field(1, description="traces written at once (threads: concurrent requests to the endpoint)")
    base_url: Optional[str] = Field(None, description="openai: the endpoint's base URL (e.g. http://host:8001/v1); "
                                                      "required")
    model: Optional[str] = Field(None, description="openai: the model name sent with each request; required")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key "
                                                           "(unset: no Authorization header)")
    temperature: float = Field(0.7, description="openai: sampling temperature")
    num_frames: int = Field(8, description="openai: uniform frames of the clip sent as images")
    frame_size: list[int] = Field([448, 256], min_length=2, max_length=2,
                                  description="openai: frame [width, height] in pixels, multiples of 32")
    timeout_s: float = Field(120.0, description="openai: seconds per request")
    retries: int = Field(3, description="openai: retries of a failed request (with backoff)")
    jpeg_quality: int = Field(85, description="openai: JPEG quality of the frames")

    @model_validator(mode="after")
    def _kind_rules(self) -> "TeacherConfig":
        if self.kind == "template":
            extra = sorted(set(self.model_fields_set) - set(TEMPLATE_TEACHER_KEYS))
            if extra:
                raise ValueError(f"unknown key {extra[0]!r} for kind template (known: {list(TEMPLATE_TEACHER_KEYS)})")
            return self
        missing = [k for k in ("base_url", "model") if not getattr(self, k)]
        if missing:
            raise ValueError(f"kind openai needs {missing}")
        w, h = self.frame_size
        if w % 32 or h % 32:
            raise ValueError(f"frame_size {self.frame_size} must be [W, H], multiples of 32")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        # a template teacher records only its own keys, so the record validates again
        data = handler(self)
        return {k: v for k, v in data.items() if k in TEMPLATE_TEACHER_KEYS} if self.kind == "template" else data


class LoraSettings(_Section):
    """The peft ``LoraConfig`` the trainer builds for ``finetune: lora`` (task type CAUSAL_LM)."""
    r: int = Field(16, description="LoRA rank")
    alpha: int = Field(32, description="lora_alpha (the update is scaled by alpha / r)")
    dropout: float = Field(0.05, description="lora_dropout")
    target_modules: list[str] = Field(["q_proj", "k_proj", "v_proj", "o_proj"],
                                      description="names of the modules that get an adapter")


class StageConfig(_Section):
    enabled: bool = Field(True, description="run this stage")
    finetune: Literal["full", "lora"] = Field("full", description="full fine-tuning or a LoRA adapter "
                                                                  "(merged into the weights at the end)")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="the LoRA adapter (with finetune: lora)")
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
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="the PS-SFT trace teacher")
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

    def as_json(self) -> dict[str, Any]:
        """The config as a JSON-safe dict, every default filled in (what ``run.json`` records and
        ``config --check`` prints); :meth:`model_validate` reads it back to an equal config."""
        return self.model_dump(mode="json")

    def updated(self, changes: Mapping[str, Any]) -> "TrainConfig":
        """A copy with ``changes`` applied, validated as strictly as a file. A mapping merges key by
        key into the mapping it replaces (``{"grpo": {"args": {"max_steps": 1}}}`` changes one TRL
        argument and keeps the others), any other value replaces the old one. A bad change raises
        ``ValueError`` ``<field>: <problem>`` (one line)."""
        try:
            return type(self).model_validate(_merged(self.as_json(), changes))
        except ValidationError as e:
            raise ValueError(_first_problem(e)) from None


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in recursively (mappings key by key; other values replace)."""
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return out


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


def _section_at(loc: tuple[Any, ...], root: type[BaseModel] = TrainConfig) -> Optional[type[BaseModel]]:
    """The model class of the section at ``loc`` (``()`` is ``root``), if it is one."""
    model: Any = root
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _first_problem(err: ValidationError, root: type[BaseModel] = TrainConfig) -> str:
    """One line for the first error of validating ``root``: ``<field>: <problem>``, or a broken
    rule's own message (prefixed by its section's name when the rule is a section's)."""
    e = err.errors(include_url=False)[0]
    loc = tuple(e["loc"])
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    if e["type"] == "value_error":   # a rule: its message names the field
        rule = str((e.get("ctx") or {}).get("error", e["msg"]))
        return f"{where}: {rule}" if loc else rule
    if e["type"] == "extra_forbidden":
        parent = _section_at(loc[:-1], root)
        known = f" (known: {sorted(parent.model_fields)})" if parent is not None else ""
        section = ".".join(map(str, loc[:-1]))
        return f"{section + ': ' if section else ''}unknown key {loc[-1]!r}{known}"
    if e["type"] in ("model_type", "model_attributes_type"):
        return f"{where}: expected a mapping, got {type(e['input']).__name__}"
    msg = e["msg"][0].lower() + e["msg"][1:]
    return f"{where}: {msg}, got {e['input']!r}"


def load_config(path: str | Path) -> TrainConfig:
    """Read a config YAML and validate it (:meth:`TrainConfig.load`); every default filled in."""
    return TrainConfig.load(path)


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
