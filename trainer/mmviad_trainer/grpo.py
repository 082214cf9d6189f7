"""VISTA-GRPO: TRL's GRPOTrainer extended so the video reaches every log-probability pass.

Stock TRL 1.16 feeds video to ``generate`` only; the policy, old-policy and reference forward passes
run text-only (trainer.md §3). :class:`VideoGRPOTrainer` (trainer.md §4):

* ``_tokenize_prompts``: passes each prompt's real ``video_metadata`` and ``do_sample_frames=False``
  so generation sees true ``<t seconds>`` tokens;
* ``_generate_and_score_completions``: processes every row's clip to ``pixel_values_videos``
  ``[B, rows, dim]`` and ``video_grid_thw`` ``[B, 3]`` (row-aligned, so TRL's shuffle/split keep
  them with their prompts), sets them as context for the old/reference passes, and returns them;
* ``_compute_loss``: sets the context from the (shuffled, split) batch;
* ``_get_per_token_logps_and_entropies``: with a context, calls the model with the video tensors and
  ``mm_token_type_ids`` derived from ``input_ids`` (immune to the padding-side bug, trl#5785);
* ``_generate_single_turn``: with ``use_vllm`` (``vllm_mode: colocate``, GPU only), rolls out with
  vLLM and passes the clip to it as video (TRL's own vLLM path forwards images only);
* ``_generate``: optional contrastive sampling (MMR-AD's trick; off in VISTA): a group whose total
  rewards are all equal gets the ground-truth trace as one member, so its advantages are not all
  zero. The injected completion is the trace's tokens cut to ``max_completion_length`` and is
  rewarded on the decoded text of exactly those tokens.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from trl import GRPOTrainer

from .prompts import prompt_messages
from .rewards import RewardFn, weighted_total
from .video import Clip, load_clip


@lru_cache(maxsize=256)
def cached_clip(path: str, num_frames: int, size: tuple[int, int], blank: bool = False) -> Clip:
    """Decoded clip (GRPO reads each prompt ``num_generations`` times)."""
    return load_clip(Path(path), num_frames, size, blank)


def make_prompt_transform(num_frames: int, size: tuple[int, int], domain_knowledge: bool, blank: bool = False):
    """A ``Dataset.with_transform`` function adding ``prompt`` (with frames) and ``video_metadata``.

    Built lazily at access time: mixed content blocks must never be stored in Arrow (trainer.md §6).
    """
    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out = dict(batch)
        out["prompt"], out["video_metadata"] = [], []
        for path, rec_json in zip(batch["video_path"], batch["record"], strict=True):
            clip = cached_clip(path, num_frames, tuple(size), blank)
            rec = json.loads(rec_json)
            out["prompt"].append(prompt_messages(list(clip.frames), rec, domain_knowledge))
            out["video_metadata"].append(json.dumps(clip.metadata()))
        return out
    return transform


def injected_completion(tokenizer: Any, trace: str, eos_id: int, max_len: int) -> tuple[list[int], str]:
    """The token ids a contrastive-sampling injection trains on (the trace plus EOS, cut to
    ``max_len``) and the text its rewards are computed from: the decode of exactly those ids, as
    TRL decodes a sampled completion."""
    ids = (tokenizer(trace, add_special_tokens=False)["input_ids"] + [eos_id])[:max_len]
    return ids, tokenizer.decode(ids, skip_special_tokens=True)


def vllm_video_request(text: str, frames: Sequence[Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """One vLLM ``generate`` input for a Qwen3-VL prompt with one clip.

    ``text`` is the chat-templated prompt (vLLM expands the video placeholder itself), the clip goes
    as a ``T×H×W×3`` uint8 array with its metadata (fps, frame indices) and ``do_sample_frames=False``
    keeps vLLM from re-sampling, so the ``<t seconds>`` tokens match the HF processor's.
    """
    import numpy as np

    arr = np.stack([np.asarray(f.convert("RGB") if hasattr(f, "convert") else f, dtype=np.uint8) for f in frames])
    meta = {k: metadata[k] for k in ("fps", "frames_indices", "total_num_frames", "duration") if k in metadata}
    return {"prompt": text, "multi_modal_data": {"video": [(arr, meta)]},
            "mm_processor_kwargs": {"do_sample_frames": False}}


class VideoGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log-prob passes see the clip (see the module docstring)."""

    def __init__(self, *args: Any, contrastive: Optional[dict[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._video_ctx: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self._pending_metadata: Optional[list[dict[str, Any]]] = None
        self._pending_rows: Optional[list[dict[str, Any]]] = None
        self._pending_prompts: Optional[list] = None
        self.contrastive = contrastive  # {"rewards": [fn], "weights": [w]} or None
        self.video_token_id = self.processing_class.video_token_id

    # --- generation: real timestamps ------------------------------------------------------------
    def _tokenize_prompts(self, prompts: list):
        if self._pending_metadata is None:
            return super()._tokenize_prompts(prompts)
        metas = self._pending_metadata
        self._pending_prompts = prompts
        tokenized = self.processing_class.apply_chat_template(
            conversation=prompts, chat_template=self.chat_template, add_generation_prompt=True,
            tokenize=True, return_dict=True,
            processor_kwargs={"video_metadata": metas, "do_sample_frames": False}, **self.chat_template_kwargs)
        fields = {k: v for k, v in tokenized.items() if k not in ("input_ids", "attention_mask", "video_metadata")}
        return tokenized["input_ids"], None, fields

    # --- video tensors for the log-prob passes ---------------------------------------------------
    def _video_tensors(self, inputs: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        vp = self.processing_class.video_processor
        pixels, grids = [], []
        for x, meta in zip(inputs, self._pending_metadata or [], strict=True):
            frames = next(b["video"] for m in x["prompt"] if isinstance(m["content"], list)
                          for b in m["content"] if b.get("type") == "video")
            out = vp(videos=[frames], video_metadata=[meta], do_sample_frames=False, return_tensors="pt")
            pixels.append(torch.as_tensor(out["pixel_values_videos"]))
            grids.append(torch.as_tensor(out["video_grid_thw"])[0])
        if len({p.shape for p in pixels}) != 1:
            raise ValueError("all clips in a GRPO batch must give the same number of video patches "
                             "(same data.num_frames and data.frame_size)")
        device = self.accelerator.device
        return torch.stack(pixels).to(device), torch.stack(grids).to(device)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if "video_metadata" not in inputs[0]:
            return super()._generate_and_score_completions(inputs)
        self._pending_metadata = [json.loads(x["video_metadata"]) for x in inputs]
        self._pending_rows = inputs
        try:
            self._video_ctx = self._video_tensors(inputs)
            out = super()._generate_and_score_completions(inputs)
            out["pixel_values_videos"], out["video_grid_thw"] = self._video_ctx
        finally:
            self._video_ctx, self._pending_metadata, self._pending_rows = None, None, None
            self._pending_prompts = None
        return out

    def _compute_loss(self, model, inputs):
        if "pixel_values_videos" not in inputs:
            return super()._compute_loss(model, inputs)
        self._video_ctx = (inputs["pixel_values_videos"], inputs["video_grid_thw"])
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._video_ctx = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                           **kwargs):
        if self._video_ctx is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **kwargs)
        pixels, grids = self._video_ctx
        if pixels.size(0) != input_ids.size(0):
            raise RuntimeError(f"video context has {pixels.size(0)} rows for {input_ids.size(0)} sequences")
        batch_size = batch_size or input_ids.size(0)
        logps, ents, auxs = [], [], []
        for s in range(0, input_ids.size(0), batch_size):
            e = min(s + batch_size, input_ids.size(0))
            ids, am = input_ids[s:e], attention_mask[s:e]
            labels = ids.masked_fill(am == 0, -100)
            labels[:, :-logits_to_keep] = -100
            model_inputs = {"input_ids": ids, "attention_mask": am,
                            "pixel_values_videos": pixels[s:e].flatten(0, 1), "video_grid_thw": grids[s:e],
                            "mm_token_type_ids": (ids == self.video_token_id).long() * 2}
            if compute_aux_loss:
                model_inputs["output_router_logits"] = True
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                ents.append(outputs.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                auxs.append(outputs.aux_loss)
        return (torch.cat(logps), torch.cat(ents) if compute_entropy else None,
                torch.stack(auxs).mean() if compute_aux_loss else None)

    # --- vLLM rollouts with the video (GPU only) -------------------------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.use_vllm or self._pending_prompts is None:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        return self._vllm_video_rollouts(self._pending_prompts)

    def _vllm_video_rollouts(self, prompts: list) -> tuple[list[list[int]], list[list[float]]]:
        """Colocated vLLM generation with each row's clip as ``multi_modal_data["video"]``.

        NOT RUN IN THIS REPOSITORY (no GPU here); see trainer/README.md "vLLM rollouts". vLLM lays out
        Qwen3-VL video tokens slightly differently from the HF processor (vllm#46817), so the log-prob
        passes (HF layout) are a little off-policy from the rollouts; TRL's vLLM importance-sampling
        correction, on by default, reweights for it.
        """
        from trl.generation.vllm_generation import extract_logprobs
        from vllm import SamplingParams

        if self.vllm_mode != "colocate":
            raise ValueError("video rollouts with vLLM need grpo.args.vllm_mode: colocate "
                             "(TRL's server mode forwards images only)")
        if self.args.vllm_tensor_parallel_size != 1:
            raise ValueError("video rollouts with vLLM support vllm_tensor_parallel_size: 1 only")
        vg = self.vllm_generation
        if self.state.global_step != self._last_loaded_step:
            vg.sync_weights()
            self._last_loaded_step = self.state.global_step
        texts = self.processing_class.apply_chat_template(prompts, chat_template=self.chat_template,
                                                          add_generation_prompt=True, tokenize=False)
        requests = []
        for text, x, meta in zip(texts, prompts, self._pending_metadata or [], strict=True):
            frames = next(b["video"] for m in x if isinstance(m["content"], list)
                          for b in m["content"] if b.get("type") == "video")
            requests.append(vllm_video_request(text, frames, meta))
        kw = {"n": 1, "repetition_penalty": vg.repetition_penalty, "temperature": vg.temperature,
              "top_p": vg.top_p, "top_k": vg.top_k, "min_p": 0.0 if vg.min_p is None else vg.min_p,
              "max_tokens": vg.max_completion_length, "logprobs": vg.logprobs, **vg.generation_kwargs}
        if vg.enable_sleep_mode:
            vg.llm.wake_up(tags=["kv_cache"])
        outputs = vg.llm.generate(requests, sampling_params=SamplingParams(**kw), use_tqdm=False)
        if vg.enable_sleep_mode:
            vg.llm.sleep(level=2)
            vg._llm_weights_sleeping = True
        completion_ids = [list(o.token_ids) for out in outputs for o in out.outputs]
        logprobs, _ = extract_logprobs(outputs)
        return completion_ids, [[lp[0] for lp in seq] for seq in logprobs]

    # --- contrastive sampling (MMR-AD option) ---------------------------------------------------
    def _generate(self, prompts: list):
        result = list(super()._generate(prompts))
        rows = self._pending_rows
        if not self.contrastive or rows is None or not self.model.training:
            return tuple(result)
        _, completion_ids, tool_mask, completions, logprobs = result[:5]
        g = self.num_generations
        replaced = 0
        for start in range(0, len(rows) - g + 1, g):
            group = range(start, start + g)
            if len({rows[i]["clip_id"] for i in group}) != 1:
                continue  # not a generation group (should not happen with TRL's RepeatSampler)
            i = start + g - 1
            trace = rows[i].get("trace") or ""
            if not trace:
                continue  # this clip's trace was discarded by the filter
            totals = [self._weighted_reward(completions[j], rows[j]["solution"]) for j in group]
            if max(totals) - min(totals) > 1e-9:
                continue
            ids, text = injected_completion(self.processing_class.tokenizer, trace, self.eos_token_ids[0],
                                            self.max_completion_length)
            completion_ids[i] = ids
            completions[i] = [{"role": "assistant", "content": text}] if isinstance(completions[i], list) else text
            if logprobs is not None:
                logprobs[i] = [None] * len(ids)
            if tool_mask is not None:
                tool_mask[i] = [1] * len(ids)
            replaced += 1
        self._metrics["train"]["contrastive/replaced"].append(float(replaced))
        return tuple(result)

    def _weighted_reward(self, completion: Any, solution: str) -> float:
        return weighted_total(completion, solution, self.contrastive["rewards"], self.contrastive["weights"])
