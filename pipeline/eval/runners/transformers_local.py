"""A local Hugging Face ``transformers`` runner for Qwen3-VL (and other image-text-to-text chat models).

It needs ``torch`` and ``transformers``, which the evaluator's own environment does not pin: use
the trainer's environment (``.venv-train``) or install them next to ``mmviad``. Both are imported
lazily, so the rest of the evaluator never needs them. The model goes on the GPU when there is one
(``device_map="auto"``, bfloat16), else it runs on the CPU in float32. Clips are generated in
batches (left padding, greedy decoding). Frames are sent as images interleaved with their ``Frame
at t s:`` texts: the same prompt parts the API runner sends.

The trainer's final evaluation hands its already-loaded model and processor to
:meth:`TransformersRunner.from_loaded`, so training and ``mmviad eval`` generate with the same code.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..prompts import Prompt
from .base import Prediction, PromptFn, Runner

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def to_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """One user turn with the prompt's text and image parts in order (images as PIL)."""
    from PIL import Image

    content = [{"type": "text", "text": p["text"]} if p["type"] == "text"
               else {"type": "image", "image": Image.fromarray(p["image"])} for p in prompt.parts]
    return [{"role": "user", "content": content}]


class TransformersRunner(Runner):
    """See the module docstring. ``model`` is a local path or hub id (loaded on first use), or use
    :meth:`from_loaded` with a model and processor in memory."""
    name = "transformers"
    needs_prompt = True

    def __init__(self, model: Optional[str] = None, max_new_tokens: int = 1024, dtype: str = "bfloat16",
                 batch_size: int = 4, processor: str = "auto") -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("--batch-size and --max-tokens must be at least 1")
        if processor not in ("auto", "trainer"):
            raise ValueError(f"--processor must be auto or trainer, got {processor!r}")
        self.model_name, self.max_new_tokens, self.dtype, self.batch_size = model, max_new_tokens, dtype, batch_size
        self.processor_kind = processor
        self._model: Any = None
        self._processor: Any = None
        self.stats = {"requests": 0, "batches": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, max_new_tokens: int = 1024, batch_size: int = 4,
                    label: str = "in-memory model") -> "TransformersRunner":
        """A runner around a model and processor already in memory (left on their device)."""
        r = cls(None, max_new_tokens=max_new_tokens, batch_size=batch_size)
        r._model, r._processor, r.model_name = model, processor, label
        return r

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as e:
            raise RuntimeError("the transformers runner needs torch and transformers (use .venv-train, or "
                               f"`pip install torch transformers` next to mmviad): {e}") from None
        if not self.model_name:
            raise ValueError("--runner transformers needs --model (a local path or HF id)")
        cuda = torch.cuda.is_available()
        if self.processor_kind == "trainer":  # checkpoints of the CPU trainer carry only a tokenizer
            try:
                from mmviad_trainer.evaluate import load_eval_processor
            except ImportError as e:
                raise RuntimeError(f"--processor trainer needs the trainer package (.venv-train): {e}") from None
            self._processor = load_eval_processor(self.model_name)
        else:
            try:
                self._processor = AutoProcessor.from_pretrained(self.model_name)
            except (OSError, ImportError, ValueError) as e:
                raise RuntimeError(f"{self.model_name}: cannot load its processor ({str(e).splitlines()[0]}); "
                                   "for a checkpoint of the trainer use --processor trainer") from None
        self._model = AutoModelForImageTextToText.from_pretrained(
            self.model_name, dtype=getattr(torch, self.dtype) if cuda else torch.float32,
            device_map="auto" if cuda else None).eval()

    def _generate(self, prompts: Sequence[Prompt]) -> list[tuple[str, dict[str, int]]]:
        import torch

        proc, model = self._processor, self._model
        tok = getattr(proc, "tokenizer", proc)
        side, tok.padding_side = tok.padding_side, "left"  # generation continues after the last token
        try:
            inputs = proc.apply_chat_template([to_messages(p) for p in prompts], add_generation_prompt=True,
                                              tokenize=True, return_dict=True, return_tensors="pt",
                                              processor_kwargs={"padding": True})
        finally:
            tok.padding_side = side
        inputs = inputs.to(model.device)
        suppress = [i for i in tok.convert_tokens_to_ids(list(VISION_TOKENS))
                    if i is not None and i != tok.unk_token_id]
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, suppress_tokens=suppress or None)
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        stop = {tok.pad_token_id, tok.eos_token_id}
        lengths = [int(sum(1 for t in row.tolist() if t not in stop)) for row in new]
        return [(t, {"prompt_tokens": int(m.sum()), "completion_tokens": n})
                for t, m, n in zip(texts, inputs["attention_mask"], lengths)]

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        from tqdm import tqdm

        if prompt_fn is None:
            raise ValueError("the transformers runner needs a prompt builder")
        if self._model is None:
            self._load()
        out: list[Prediction] = []
        with tqdm(total=len(records), desc=f"eval {self.model_name}", unit="clip", disable=not progress) as bar:
            for i in range(0, len(records), self.batch_size):
                batch = records[i:i + self.batch_size]
                for rec, (text, usage) in zip(batch, self._generate([prompt_fn(r) for r in batch])):
                    self.stats["requests"] += 1
                    self.stats["prompt_tokens"] += usage["prompt_tokens"]
                    self.stats["completion_tokens"] += usage["completion_tokens"]
                    out.append(Prediction(rec["clip_id"], text, usage))
                self.stats["batches"] += 1
                bar.update(len(batch))
        return out

    def summary(self) -> dict[str, Any]:
        return {"model": self.model_name, "batch_size": self.batch_size, **self.stats}
