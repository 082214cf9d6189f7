"""A tiny random Qwen3-VL and a tokenizer trained in code, for CPU smoke runs and tests (trainer.md §8).

Nothing is downloaded: the byte-level BPE is trained on an in-code corpus (the prompts, the trace
vocabulary, digits), the model is built from a ``Qwen3VLConfig``. Both are saved with
``save_pretrained`` so TRL can re-load the model by path (GRPO's reference model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]


# words of the question options and the trace templates' scene slots (object groups, materials,
# environments): in the corpus so that prompts and traces tokenize short, which is most of a CPU step
_SCENE_WORDS = ("vase cup bottle bowl cap helmet ashtray bucket jar tap eraser headset microphone chair desk "
                "shelf bag knife screen cabinet plastic matte glossy clay ceramic glazed metal brushed rubber wood "
                "studio white cyc grey three point overhead softbox outdoor indoor warehouse workshop good")


def _corpus() -> list[str]:
    from pipeline.grammar import Q1_OPTIONS, Q1_TEXT, Q2_TEXT, Q3_TEXT, Q4_TEXT

    from . import prompts, teacher

    questions = [f"The clip lasts 2.00 seconds.\nQ1. {Q1_TEXT} Options: A: {Q1_OPTIONS['A']} B: {Q1_OPTIONS['B']}",
                 f"Q2. {Q2_TEXT} Options: A: hole B: bulge C: crack D: scratch E: good F: concavity G: broken",
                 f"Q3. {Q3_TEXT} Options: A: vase B: cup C: bowl D: bottle", f"Q4. {Q4_TEXT}"]
    texts = [prompts.SYSTEM_PROMPT, prompts.RESPONSE_FORMAT, *prompts.DEFECT_KNOWLEDGE.values(), *questions,
             _SCENE_WORDS,
             *teacher._GLOBAL, *teacher._SEG_CLEAN, *teacher._SEG_DEFECT, *teacher._THINK_DEFECT,
             *teacher._THINK_CLEAN, "system user assistant <think> </think> seconds",
             "<global_perception></global_perception><segment_perception></segment_perception>",
             "<answer><q1>A</q1><q2>B</q2><q3>C</q3><q4>[[0.40, 1.17]]</q4></answer>",
             " ".join(f"{i / 100:.2f}" for i in range(0, 1000, 7)), " ".join(f"<{i / 10:.1f} seconds>" for i in range(100))]
    return texts * 4


def build_tokenizer(vocab_size: int = 1024) -> Any:
    """A byte-level BPE with Qwen's special tokens at ids 0–6, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"})


TINY_SIZE: dict[str, int] = {
    "hidden": 64,          # text hidden size (= vision out_hidden_size)
    "intermediate": 128,   # text MLP width
    "layers": 2,           # text decoder layers
    "vision_hidden": 32,   # vision tower width
    "vision_depth": 2,     # vision tower blocks
}


def build_model(tokenizer: Any, seed: int = 0, size: Optional[dict[str, int]] = None) -> Any:
    """A random Qwen3-VL: by default (~0.3 M parameters) 2 text layers of width 64 and a 2-block
    vision tower of width 32; ``size`` overrides :data:`TINY_SIZE` fields (4 heads of dim
    hidden/4, 2 KV heads)."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    unknown = sorted(set(size or {}) - set(TINY_SIZE))
    if unknown:
        raise ValueError(f"model.tiny_size: unknown key(s) {unknown} (known: {sorted(TINY_SIZE)})")
    z = {**TINY_SIZE, **(size or {})}
    if z["hidden"] % 32:
        raise ValueError(f"model.tiny_size.hidden must be a multiple of 32, got {z['hidden']}")
    head_dim = z["hidden"] // 4
    # mrope sections (temporal, height, width) must sum to head_dim / 2
    half = head_dim // 2
    mrope = [half - 2 * (half // 4), half // 4, half // 4]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = ((len(tokenizer) + 63) // 64) * 64
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=vocab, hidden_size=z["hidden"], intermediate_size=z["intermediate"],
                         num_hidden_layers=z["layers"], num_attention_heads=4, num_key_value_heads=2,
                         head_dim=head_dim, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope,
                                          "mrope_interleaved": True},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=z["vision_depth"], hidden_size=z["vision_hidden"],
                           intermediate_size=2 * z["vision_hidden"], num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=z["hidden"],
                           num_position_embeddings=64, deepstack_visual_indexes=[0], in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def build_tiny_checkpoint(out_dir: Path, seed: int = 0, size: Optional[dict[str, int]] = None) -> Path:
    """Save a tiny model + tokenizer (with the Qwen3-VL chat template) to ``out_dir``; returns it."""
    from .processor import chat_template

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    tok = build_tokenizer()
    tok.chat_template = chat_template(False)
    model = build_model(tok, seed, size)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(out_dir)
    return out_dir
