"""Paper defaults and stage plumbing: disjoint SFT/GRPO clip sets, config checks, contrastive
injection rewarded on the trained tokens, sharding helpers, full-weight checks, the vLLM request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mmviad_trainer import dist
from mmviad_trainer.config import load_config
from mmviad_trainer.grpo import injected_completion, vllm_video_request
from mmviad_trainer.records import load_split
from mmviad_trainer.rewards import build_rewards, format_reward, weighted_total
from mmviad_trainer.splits import draw_stage_sets, heldout_slice
from mmviad_trainer.teacher import TemplateTeacher

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _recs(n: int) -> list[dict]:
    return [{"clip_id": f"obj{i // 3}-0000-good-t0-c{i % 3}"} for i in range(n)]


def test_stage_sets_are_disjoint_seeded_and_sized():
    recs = _recs(40)
    sft, grpo = draw_stage_sets(recs, 12, 20, seed=0)
    ids_s, ids_g = {r["clip_id"] for r in sft}, {r["clip_id"] for r in grpo}
    assert len(ids_s) == 12 and len(ids_g) == 20 and not ids_s & ids_g
    assert (sft, grpo) == draw_stage_sets(recs, 12, 20, seed=0)       # same seed, same sets
    assert draw_stage_sets(recs, 12, 20, seed=1)[0] != sft            # another seed, other sets
    assert [r["clip_id"] for r in sft] == [r["clip_id"] for r in recs if r["clip_id"] in ids_s]  # split order kept
    # a larger SFT set keeps the smaller one's clips (the ranking does not depend on the sizes)
    assert ids_s <= {r["clip_id"] for r in draw_stage_sets(recs, 16, 20, seed=0)[0]}
    half_s, half_g = draw_stage_sets(recs, None, None, seed=0)
    assert len(half_s) == len(half_g) == 20
    assert len(draw_stage_sets(recs, None, 5, seed=0)[0]) == 35
    with pytest.raises(ValueError, match="sft_clips=30 \\+ grpo_clips=20 exceeds the 40 clips"):
        draw_stage_sets(recs, 30, 20, seed=0)
    assert len(heldout_slice(recs, 8, seed=0)) == 8


def test_paper_defaults_in_every_config():
    for name in ("cpu-smoke", "qwen3-vl-2b", "qwen3-vl-8b", "qwen3-vl-8b-4gpu"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        g = cfg.grpo
        assert g.contrastive_sampling is False, name
        assert g.defect_gate is True and g.temporal.get("mode", "visibility") == "visibility", name
        assert g.reward_weights == [1.0, 1.0, 1.0, 1.0], name
        if name != "cpu-smoke":
            assert cfg.data.protocol == "unseen", name  # the paper's VISTA numbers are MMVIAD-Unseen
            assert cfg.data.sft_clips and cfg.data.grpo_clips, name


def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_config_errors_name_the_key(tmp_path):
    base = yaml.safe_load((CONFIGS / "cpu-smoke.yaml").read_text())
    bad = json.loads(json.dumps(base))
    bad["data"]["sft_clips"] = 0
    with pytest.raises(ValueError, match="data.sft_clips must be a positive integer"):
        load_config(_write(tmp_path, bad))
    bad = json.loads(json.dumps(base))
    bad["grpo"]["temporal"] = {"mode": "fuzzy"}
    with pytest.raises(ValueError, match="grpo: grpo.temporal.mode must be one of"):
        load_config(_write(tmp_path, bad))
    bad = json.loads(json.dumps(base))
    bad["grpo"]["contrastive_sampling"] = True
    bad["grpo"]["args"]["use_vllm"] = True
    with pytest.raises(ValueError, match="contrastive_sampling cannot be combined with use_vllm"):
        load_config(_write(tmp_path, bad))
    bad = json.loads(json.dumps(base))
    bad["data"]["max_train_clips"] = 3
    with pytest.raises(ValueError, match="data: unknown key 'max_train_clips'"):
        load_config(_write(tmp_path, bad))
    ok = json.loads(json.dumps(base))
    ok["teacher"] = {"kind": "openai", "base_url": "http://localhost:8000/v1", "model": "m", "num_frames": 8}
    assert load_config(_write(tmp_path, ok)).teacher.num_frames == 8


@pytest.mark.parametrize("change, expected", [
    ({"data": {"num_frames": "8"}}, r"c\.yaml: data\.num_frames: input should be a valid integer, got '8'$"),
    ({"model": {"tiny": 1}}, r"c\.yaml: model\.tiny: input should be a valid boolean, got 1$"),
    ({"eval": {"batch_size": True}}, r"c\.yaml: eval\.batch_size: input should be a valid integer, got True$"),
    ({"data": 3}, r"c\.yaml: data: expected a mapping, got int$"),
    ({"bogus": 1}, r"c\.yaml: unknown key 'bogus' \(known: \['data', 'eval', "),
    ({"grpo": {"finetune": "qlora"}}, r"c\.yaml: grpo\.finetune: input should be 'full' or 'lora', got 'qlora'$"),
    ({"data": {"frame_size": [64]}}, r"c\.yaml: data\.frame_size: list should have at least 2 items"),
    ({"eval": {"every_steps": -1}}, r"c\.yaml: eval\.every_steps must be a non-negative integer, got -1$"),
])
def test_config_is_typed_and_strict(tmp_path, change, expected):
    """Wrong types fail as they are (no "8" → 8, no 1 → true), each in one line naming file and field."""
    base = yaml.safe_load((CONFIGS / "cpu-smoke.yaml").read_text())
    for section, value in change.items():
        base[section] = {**base[section], **value} if isinstance(value, dict) and section in base else value
    with pytest.raises(ValueError, match=expected) as err:
        load_config(_write(tmp_path, base))
    assert "\n" not in str(err.value)


def test_updated_merges_nested_changes_and_validates_them_strictly():
    """``TrainConfig.updated`` replaces the hand-made copy-and-merge of config dicts: nested changes merge
    key by key (a TRL argument changes, the others stay), the original is untouched, and a bad change
    fails in one line naming the field, as a file would."""
    base = load_config(CONFIGS / "cpu-smoke.yaml")
    cfg = base.updated({"grpo": {"args": {"max_steps": 1}, "contrastive_sampling": True}, "eval": {"max_clips": None}})
    assert cfg.grpo.args["max_steps"] == 1 and cfg.grpo.args["beta"] == 0.04 and cfg.grpo.contrastive_sampling
    assert cfg.eval.max_clips is None and cfg.eval.max_new_tokens == base.eval.max_new_tokens
    assert base.grpo.args["max_steps"] == 2 and base.grpo.contrastive_sampling is False and base.eval.max_clips == 2
    for change, expected in [
        ({"data": {"bogus": 1}}, r"^data: unknown key 'bogus' \(known: \['blank_video', "),
        ({"data": {"num_frames": "8"}}, r"^data\.num_frames: input should be a valid integer, got '8'$"),
        ({"sft": {"lora": {"r": 8.0}}}, r"^sft\.lora\.r: input should be a valid integer, got 8\.0$"),
        ({"grpo": {"args": {"use_vllm": True}, "contrastive_sampling": True}}, "cannot be combined with use_vllm"),
    ]:
        with pytest.raises(ValueError, match=expected) as err:
            base.updated(change)
        assert "\n" not in str(err.value)


def test_as_json_is_what_a_file_would_say():
    """``run.json`` records ``as_json()``: JSON-safe, and read back it is the same config."""
    for name in ("cpu-smoke", "qwen3-vl-2b", "qwen3-vl-8b", "qwen3-vl-8b-4gpu"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert type(cfg).model_validate(json.loads(json.dumps(cfg.as_json()))) == cfg, name
    openai = cfg.updated({"teacher": {"kind": "openai", "base_url": "http://x/v1", "model": "m"}})
    assert openai.as_json()["teacher"]["timeout_s"] == 120.0
    assert type(cfg).model_validate(openai.as_json()) == openai
    assert cfg.as_json()["teacher"] == {"kind": "template", "workers": 1}


def test_teacher_and_lora_sections_are_typed(tmp_path):
    """The teacher is a typed section: a template teacher rejects the openai settings, an openai
    teacher needs its endpoint; LoRA settings are typed and reach peft's LoraConfig."""
    from mmviad_trainer.runner import _lora_config

    base = yaml.safe_load((CONFIGS / "cpu-smoke.yaml").read_text())
    for teacher, expected in [
        ({"kind": "template", "model": "m"},
         r"c\.yaml: teacher: unknown key 'model' for kind template \(known: \['kind', 'workers'\]\)$"),
        ({"kind": "openai", "model": "m"}, r"c\.yaml: teacher: kind openai needs \['base_url'\]$"),
        ({"kind": "gpt"}, r"c\.yaml: teacher\.kind: input should be 'template' or 'openai', got 'gpt'$"),
        ({"kind": "openai", "base_url": "http://x", "model": "m", "retries": "3"},
         r"c\.yaml: teacher\.retries: input should be a valid integer, got '3'$"),
    ]:
        with pytest.raises(ValueError, match=expected):
            load_config(_write(tmp_path, {**base, "teacher": teacher}))
    assert load_config(_write(tmp_path, {**base, "teacher": {"kind": "template", "workers": 4}})).teacher.workers == 4
    with pytest.raises(ValueError, match=r"c\.yaml: sft\.lora: unknown key 'rank'"):
        load_config(_write(tmp_path, {**base, "sft": {**base["sft"], "lora": {"rank": 8}}}))
    lora = load_config(CONFIGS / "qwen3-vl-2b.yaml").grpo.lora
    peft_cfg = _lora_config(lora)
    assert (peft_cfg.r, peft_cfg.lora_alpha, peft_cfg.lora_dropout) == (64, 128, 0.05)
    assert set(peft_cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_config_fields_are_documented_in_the_readme():
    """Every field has a help text, and trainer/README.md carries the listing `mmviad-train config --markdown`
    prints (regenerate the table from it when a field changes)."""
    from mmviad_trainer.config import TrainConfig, explain, explain_markdown

    rows = explain()
    assert len(rows) > 30 and all(h for *_, h in rows), [k for k, *_, h in rows if not h]
    assert {k.split(".")[0] for k, *_ in rows} == set(TrainConfig.model_fields)
    readme = (CONFIGS.parent / "README.md").read_text(encoding="utf-8")
    assert explain_markdown() in readme, "trainer/README.md: paste `python -m mmviad_trainer config --markdown`"


def test_config_command_lists_and_checks(tmp_path, capsys):
    from mmviad_trainer.cli import main

    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "grpo.reward_weights" in out and "the paper sums the four rewards" in out
    assert main(["config", "--check", str(CONFIGS / "cpu-smoke.yaml")]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == load_config(CONFIGS / "cpu-smoke.yaml").as_json()
    bad = _write(tmp_path, {"model": {"tiny": True}, "data": {"nope": 1}})
    assert main(["config", "--check", str(bad)]) == 2
    assert "c.yaml: data: unknown key 'nope'" in capsys.readouterr().err


def test_injected_trace_is_rewarded_on_the_tokens_it_trains_on(smoke_data, tiny_ckpt):
    from mmviad_trainer.processor import load_processor

    tok = load_processor(str(tiny_ckpt), "shim").tokenizer
    rec = load_split(smoke_data, "train")[0]
    trace = TemplateTeacher(seed=0).write(rec)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    full_ids, full_text = injected_completion(tok, trace, eos, 10_000)
    assert full_ids[-1] == eos and full_text == trace
    ids, text = injected_completion(tok, trace, eos, 40)
    assert len(ids) == 40 and ids == full_ids[:40] and eos not in ids
    assert text == tok.decode(ids, skip_special_tokens=True) and trace.startswith(text)
    from mmviad_trainer.records import ground_truth

    sol = ground_truth(rec).to_json()
    rewards = build_rewards(["format", "answer", "defect", "temporal"])
    assert format_reward([text]) == [0.0]  # the cut trace is not a valid response ...
    assert weighted_total(text, sol, rewards, [1, 1, 1, 1]) == -1.0  # ... and earns what any broken answer earns
    assert weighted_total(full_text, sol, rewards, [1, 1, 1, 1]) == 5.0  # the whole trace earns the maximum


def test_shard_and_gather_in_one_process(monkeypatch):
    items = list("abcdefg")
    assert dist.world_size() == 1 and dist.is_main()
    assert dist.gather_shards(len(items), dist.shard(items)) == items
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert [i for i, _ in dist.shard(items)] == [1, 4]
    assert not dist.is_main()


def test_full_weight_check_rejects_empty_shards(tmp_path):
    import torch
    from safetensors.torch import save_file

    from mmviad_trainer.runner import check_full_weights

    with pytest.raises(RuntimeError, match="no \\*.safetensors"):
        check_full_weights(tmp_path)
    save_file({"a": torch.zeros(3, 2), "b": torch.zeros(0)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(RuntimeError, match="tensor b has shape \\[0\\]"):
        check_full_weights(tmp_path)
    save_file({"a": torch.zeros(3, 2)}, str(tmp_path / "model.safetensors"))
    check_full_weights(tmp_path)


def test_vllm_request_carries_the_clip(smoke_data):
    """The vLLM input built for a rollout (vLLM itself is GPU-only and not installed here)."""
    from mmviad_trainer.video import decode_clip

    clip = decode_clip(smoke_data / "clips" / "cup0-0000-good-t0-c0.mp4", 4, (64, 64))
    req = vllm_video_request("<prompt>", clip.frames, clip.metadata())
    (arr, meta), = req["multi_modal_data"]["video"]
    assert arr.shape == (4, 64, 64, 3) and arr.dtype.name == "uint8"
    assert meta["frames_indices"] == [2, 7, 12, 17] and meta["fps"] == 10.0
    assert req["mm_processor_kwargs"] == {"do_sample_frames": False} and req["prompt"] == "<prompt>"


def test_blank_video_keeps_times_and_drops_content(smoke_data):
    import numpy as np

    from mmviad_trainer.video import load_clip

    path = smoke_data / "clips" / "vase0-0000-concavity-t0-c0.mp4"
    real, blank = load_clip(path, 4, (64, 64)), load_clip(path, 4, (64, 64), blank=True)
    assert blank.metadata() == real.metadata() and [f.size for f in blank.frames] == [f.size for f in real.frames]
    assert all(not np.asarray(f).any() for f in blank.frames) and any(np.asarray(f).any() for f in real.frames)


def test_tiny_size_overrides():
    from mmviad_trainer.tiny import build_model, build_tokenizer

    tok = build_tokenizer()
    m = build_model(tok, size={"hidden": 128, "layers": 3, "vision_hidden": 64})
    t = m.config.text_config
    assert (t.hidden_size, t.num_hidden_layers, t.head_dim, sum(t.rope_parameters["mrope_section"])) == (128, 3, 32, 16)
    assert m.config.vision_config.out_hidden_size == 128
    with pytest.raises(ValueError, match="unknown key"):
        build_model(tok, size={"width": 3})
