"""PS-SFT with TRL's SFTTrainer and a video collator (trainer.md §5).

The collator decodes each clip (uniform frames, real indices), builds
``[system, user{video, questions}, assistant{trace}]``, renders it with TRL's Qwen3-VL *training*
template (``{% generation %}`` markers) and sets ``labels`` to the input ids on assistant tokens
only (the trace plus ``<|im_end|>``), ``-100`` elsewhere. Frames are never re-sampled by the
processor (``do_sample_frames=False``) and carry their ``video_metadata``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .processor import chat_template
from .prompts import prompt_messages
from .video import load_clip


@dataclass
class VideoSFTCollator:
    """Rows ``{video_path, record (JSON), trace}`` → a Qwen3-VL training batch."""
    processor: Any
    num_frames: int
    frame_size: tuple[int, int]
    domain_knowledge: bool = True
    blank_video: bool = False  # control runs: every frame black

    def __post_init__(self) -> None:
        self.template = chat_template(training=True)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        convs, metas = [], []
        for r in rows:
            clip = load_clip(Path(r["video_path"]), self.num_frames, tuple(self.frame_size), self.blank_video)
            msgs = prompt_messages(clip.frames, json.loads(r["record"]), self.domain_knowledge)
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": r["trace"]}]})
            convs.append(msgs)
            metas.append(clip.metadata())
        batch = self.processor.apply_chat_template(
            convs, tokenize=True, return_dict=True, return_tensors="pt", chat_template=self.template,
            return_assistant_tokens_mask=True,
            processor_kwargs={"video_metadata": metas, "padding": True, "do_sample_frames": False})
        mask = torch.as_tensor(batch.pop("assistant_masks"))
        if not bool(mask.any()):
            raise RuntimeError("no assistant tokens found: is the chat template the training variant?")
        batch["labels"] = batch["input_ids"].masked_fill(mask == 0, -100)
        batch.pop("video_metadata", None)
        return dict(batch)
