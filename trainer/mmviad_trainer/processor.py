"""Qwen3-VL processor without torchvision (trainer.md §9).

transformers 5.x's ``Qwen3VLVideoProcessor`` requires torchvision, and the PyPI torchvision wheel is
CUDA-linked, so the CPU environment uses :class:`TorchOnlyVideoProcessor`: it reproduces Qwen3-VL's
rescale → normalise → patchify layout for frames already resized to multiples of 32, never
re-samples frames, and returns the caller's ``video_metadata`` so timestamps are the real ones.
GPU configs may set ``model.video_processor: official`` to use the stock processor instead.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Sequence

import numpy as np
import torch
from transformers import BatchFeature, Qwen3VLProcessor
from transformers.video_utils import VideoMetadata


def chat_template(training: bool) -> str:
    """TRL's Qwen3-VL chat template; the training variant has ``{% generation %}`` markers."""
    name = "qwen3_vl_training.jinja" if training else "qwen3_vl.jinja"
    return resources.files("trl").joinpath("chat_templates", name).read_text(encoding="utf-8")


class TorchOnlyVideoProcessor:
    """Patchify pre-sampled frames like Qwen3-VL's video processor (mean/std 0.5, patch 16, merge 2)."""

    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def __init__(self, patch_size: int = 16, temporal_patch_size: int = 2, merge_size: int = 2,
                 mean: float = 0.5, std: float = 0.5) -> None:
        self.patch_size, self.temporal_patch_size, self.merge_size = patch_size, temporal_patch_size, merge_size
        self.mean, self.std = mean, std

    def to_dict(self) -> dict[str, Any]:
        return {"video_processor_type": type(self).__name__, "patch_size": self.patch_size,
                "temporal_patch_size": self.temporal_patch_size, "merge_size": self.merge_size}

    def _one(self, frames: Any) -> tuple[torch.Tensor, list[int]]:
        if isinstance(frames, (str, bytes)):
            raise ValueError("TorchOnlyVideoProcessor takes decoded frames (list of PIL images or T×H×W×3), "
                             "not a path; decode with mmviad_trainer.video.decode_clip")
        arr = np.stack([np.asarray(f.convert("RGB") if hasattr(f, "convert") else f) for f in frames])
        t, h, w, c = arr.shape
        unit = self.patch_size * self.merge_size
        if h % unit or w % unit:
            raise ValueError(f"frames are {w}x{h}; resize to multiples of {unit} before processing")
        x = (torch.from_numpy(arr).float() / 255.0 - self.mean) / self.std  # T,H,W,C
        x = x.permute(0, 3, 1, 2)  # T,C,H,W
        tp = self.temporal_patch_size
        if t % tp:
            x = torch.cat([x, x[-1:].expand(tp - t % tp, -1, -1, -1)], 0)
        gt, gh, gw = x.shape[0] // tp, h // self.patch_size, w // self.patch_size
        m, p = self.merge_size, self.patch_size
        x = x.reshape(gt, tp, c, gh // m, m, p, gw // m, m, p)
        x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return x.reshape(gt * gh * gw, c * tp * p * p), [gt, gh, gw]

    def __call__(self, videos: Sequence[Any], video_metadata: Sequence[Any] | None = None,
                 do_sample_frames: bool | None = None, return_tensors: Any = None, **kwargs: Any) -> BatchFeature:
        if do_sample_frames:
            raise ValueError("TorchOnlyVideoProcessor never re-samples frames; pass do_sample_frames=False")
        pixels, grids = [], []
        for v in _flatten_videos(videos):
            pv, g = self._one(v)
            pixels.append(pv)
            grids.append(g)
        if video_metadata is None:
            raise ValueError("pass video_metadata (fps, frames_indices, total_num_frames) for true timestamps")
        metas = [m if isinstance(m, VideoMetadata) else VideoMetadata(**m) for m in video_metadata]
        if len(metas) != len(pixels):
            raise ValueError(f"{len(pixels)} videos but {len(metas)} video_metadata entries")
        return BatchFeature({"pixel_values_videos": torch.cat(pixels, 0),
                             "video_grid_thw": torch.tensor(grids, dtype=torch.long),
                             "video_metadata": metas})


def _is_video(x: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(x, torch.Tensor):
        return x.ndim == 4
    return isinstance(x, (list, tuple)) and len(x) > 0 and hasattr(x[0], "convert")


def _flatten_videos(videos: Any) -> list[Any]:
    """Videos arrive as one video, a list of videos, or a batch of lists of videos."""
    if _is_video(videos):
        return [videos]
    if isinstance(videos, np.ndarray) and videos.ndim == 5:
        return list(videos)
    out: list[Any] = []
    for v in videos:
        out.extend(_flatten_videos(v))
    return out


class LenientQwen3VLProcessor(Qwen3VLProcessor):
    """``Qwen3VLProcessor`` that accepts :class:`TorchOnlyVideoProcessor` as its video processor."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        if argument_name == "video_processor" and isinstance(argument, TorchOnlyVideoProcessor):
            return type(argument)
        return super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory: str, **kwargs: Any) -> list[str]:
        """Save the tokenizer (with the chat template) only: the shim has no processor config, and
        :func:`load_processor` rebuilds the processor around the saved tokenizer."""
        self.tokenizer.chat_template = self.tokenizer.chat_template or chat_template(False)
        return list(self.tokenizer.save_pretrained(save_directory))


def build_processor(tokenizer: Any, image_processor: Any | None = None) -> LenientQwen3VLProcessor:
    """A Qwen3-VL processor around ``tokenizer`` with the torch-only video processor."""
    from transformers import Qwen2VLImageProcessorPil

    image_processor = image_processor or Qwen2VLImageProcessorPil(patch_size=16, merge_size=2)
    return LenientQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   video_processor=TorchOnlyVideoProcessor(), chat_template=chat_template(False))


def load_processor(path: str, kind: str) -> Any:
    """Processor for a checkpoint: the official one (needs torchvision) or the torch-only shim."""
    from transformers import AutoProcessor, AutoTokenizer

    if kind == "official":
        return AutoProcessor.from_pretrained(path)
    if kind != "shim":
        raise ValueError(f"model.video_processor must be shim or official, got {kind!r}")
    tok = AutoTokenizer.from_pretrained(path)
    return build_processor(tok)
