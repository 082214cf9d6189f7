"""A local Hugging Face ``transformers`` runner for Qwen3-VL (and other image-text-to-text chat models).

GPU-ONLY and NOT TESTED in this repository's test suite: it needs ``torch`` and ``transformers``
(not in the package's pins; install them on the GPU machine) and the model weights on disk or in
the HF cache. Both are imported lazily, so the rest of the evaluator never needs them. Frames are
sent as images interleaved with their ``Frame at t s:`` texts, the same prompt the API runner sends.
Greedy decoding, one clip at a time.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from .base import Prediction, PromptFn, Runner


class TransformersRunner(Runner):
    name = "transformers"
    needs_prompt = True

    def __init__(self, model: str, max_new_tokens: int = 1024, dtype: str = "bfloat16",
                 device_map: str = "auto") -> None:
        self.model_name, self.max_new_tokens, self.dtype, self.device_map = model, max_new_tokens, dtype, device_map
        self._model: Any = None
        self._processor: Any = None
        self.stats = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as e:  # pragma: no cover - GPU machines only
            raise RuntimeError("the transformers runner needs `pip install torch transformers` "
                               f"(a Qwen3-VL capable version): {e}") from None
        if not torch.cuda.is_available():  # pragma: no cover
            raise RuntimeError("the transformers runner is GPU-only and no CUDA device is visible")
        self._processor = AutoProcessor.from_pretrained(self.model_name)
        self._model = AutoModelForImageTextToText.from_pretrained(
            self.model_name, torch_dtype=getattr(torch, self.dtype), device_map=self.device_map).eval()

    def _generate(self, parts: list[dict[str, Any]]) -> tuple[str, dict[str, int]]:  # pragma: no cover
        import torch
        from PIL import Image

        content = [{"type": "text", "text": p["text"]} if p["type"] == "text"
                   else {"type": "image", "image": Image.fromarray(p["image"])} for p in parts]
        messages = [{"role": "user", "content": content}]
        inputs = self._processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                     return_dict=True, return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        text = self._processor.batch_decode(new, skip_special_tokens=True)[0]
        return text, {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[1])}

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:  # pragma: no cover - GPU only
        from tqdm import tqdm

        if prompt_fn is None:
            raise ValueError("the transformers runner needs a prompt builder")
        if self._model is None:
            self._load()
        out = []
        for rec in tqdm(records, desc=f"eval {self.model_name}", unit="clip", disable=not progress):
            text, usage = self._generate(prompt_fn(rec).parts)
            self.stats["requests"] += 1
            self.stats["prompt_tokens"] += usage["prompt_tokens"]
            self.stats["completion_tokens"] += usage["completion_tokens"]
            out.append(Prediction(rec["clip_id"], text, usage))
        return out

    def summary(self) -> dict[str, Any]:
        return {"model": self.model_name, **self.stats}
