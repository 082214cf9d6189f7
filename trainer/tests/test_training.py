"""Real TRL steps on the tiny Qwen3-VL, on clips and QA files that `mmviad build` produced
(tests/data/smoke): SFT labels and update, GRPO video regression, end-to-end run with resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmviad_trainer.processor import load_processor
from mmviad_trainer.records import load_split
from mmviad_trainer.runner import prepare_rows, run_grpo, train
from mmviad_trainer.sft import VideoSFTCollator
from mmviad_trainer.video import decode_clip


@pytest.fixture(scope="module")
def rows(smoke_data, smoke_cfg, tmp_path_factory):
    """SFT rows (with traces) of the built clips, plus the GRPO rows with traces for the
    contrastive-sampling test: all six training clips."""
    cfg = smoke_cfg.updated({"grpo": {"contrastive_sampling": True}})
    out = prepare_rows(cfg, smoke_data, tmp_path_factory.mktemp("run"), progress=False)
    assert len(out["sft"]) == len(out["grpo"]) == 3
    return out["sft"] + out["grpo"]


def test_built_dataset_loads_and_decodes(smoke_data):
    for protocol, n_train, n_test in (("standard", 6, 3), ("unseen", 6, 3)):
        assert len(load_split(smoke_data, "train", protocol)) == n_train
        assert len(load_split(smoke_data, "test", protocol)) == n_test
    rec = load_split(smoke_data, "train")[0]
    clip = decode_clip(smoke_data / rec["video"], 4, (64, 64))
    assert clip.frames_indices == [2, 7, 12, 17] and clip.fps == 10.0 and clip.total_num_frames == 20
    assert clip.frames[0].size == (64, 64)
    arr = [list(f.getdata()) for f in clip.frames]
    assert arr[0] != arr[-1]  # a rendered orbit: the view changes over the clip


def test_sft_labels_decode_to_exactly_the_trace(rows, tiny_ckpt, smoke_cfg):
    proc = load_processor(str(tiny_ckpt), "shim")
    coll = VideoSFTCollator(proc, 4, (64, 64))
    batch = coll(rows[:2])
    tok = proc.tokenizer
    for i, row in enumerate(rows[:2]):
        labels = batch["labels"][i]
        decoded = tok.decode(labels[labels != -100])
        assert decoded == row["trace"] + "<|im_end|>\n"  # the trace, then the end-of-turn it must learn
    assert batch["pixel_values_videos"].shape[0] == 2 * 2 * 4 * 4  # 2 clips × 2 temporal × 4×4 patches
    text = tok.decode(batch["input_ids"][0])
    assert "<0.4 seconds>" in text and "<1.4 seconds>" in text  # frames 2,7 | 12,17 at 10 fps
    assert json.loads(rows[0]["record"])["clip_id"] in rows[0]["video_path"]


def test_sft_step_updates_parameters(rows, tiny_ckpt, smoke_cfg, tmp_path):
    from datasets import Dataset
    from transformers import Qwen3VLForConditionalGeneration
    from trl import SFTConfig, SFTTrainer

    proc = load_processor(str(tiny_ckpt), "shim")
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(tiny_ckpt))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, learning_rate=1e-2,
                     use_cpu=True, report_to=[], save_strategy="no", remove_unused_columns=False, max_length=None,
                     dataset_kwargs={"skip_prepare_dataset": True}, logging_steps=1)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=proc,
                         data_collator=VideoSFTCollator(proc, 4, (64, 64)))
    out = trainer.train()
    assert torch.isfinite(torch.tensor(out.training_loss))
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert any(".visual." in n for n in changed) and any("language_model" in n for n in changed)


def test_grpo_step_updates_vision_tower(rows, tiny_ckpt, smoke_cfg, tmp_path):
    """Regression test for TRL's dropped video: stock GRPO never updates the vision tower."""
    from safetensors.torch import load_file

    # long enough for a whole trace: the injected completion is rewarded on the tokens it trains on
    cfg = smoke_cfg.updated({"grpo": {"args": {"max_steps": 1, "save_steps": 1, "max_completion_length": 320},
                                      # a random model's groups score alike: inject the trace
                                      "contrastive_sampling": True}})
    final = Path(run_grpo(cfg, rows[:2], str(tiny_ckpt), tmp_path))
    before, after = load_file(str(tiny_ckpt / "model.safetensors")), load_file(str(final / "model.safetensors"))
    vision = [k for k in before if ".visual." in k]
    assert vision
    changed = [k for k in vision if not torch.equal(before[k], after[k])]
    assert len(changed) > len(vision) // 2, f"only {len(changed)}/{len(vision)} vision tensors changed"
    log = [json.loads(line) for line in (tmp_path / "grpo" / "log.jsonl").read_text().splitlines()]
    step = next(r for r in log if "reward" in r)
    for name in ("format_reward", "answer_reward", "defect_reward", "temporal_reward"):
        assert f"rewards/{name}/mean" in step
    assert "kl" in step and step["frac_reward_zero_std"] < 1.0  # contrastive sampling gives variance
    assert (tmp_path / "grpo" / "checkpoint-1").is_dir()


def test_train_pipeline_runs_and_resumes(smoke_data, smoke_cfg, tmp_path, capsys):
    config = Path(__file__).resolve().parents[1] / "configs" / "cpu-smoke.yaml"
    status = train(config, smoke_data, tmp_path / "run", stages=("sft",), progress=False)
    assert Path(status["stages"]["sft"]["checkpoint"], "config.json").exists()
    counts = json.loads((tmp_path / "run" / "traces" / "trace_counts.json").read_text())
    sets = json.loads((tmp_path / "run" / "stage_sets.json").read_text())
    assert len(sets["sft"]) == len(sets["grpo"]) == 3 and not set(sets["sft"]) & set(sets["grpo"])
    assert counts["kept"] == counts["total"] == 3  # traces only for the SFT clips (contrastive sampling off)
    again = train(config, smoke_data, tmp_path / "run", stages=("sft",), progress=False)  # finished stage: skipped
    assert "sft: " in capsys.readouterr().out and again["stages"]["sft"]["checkpoint"] == status["stages"]["sft"]["checkpoint"]
