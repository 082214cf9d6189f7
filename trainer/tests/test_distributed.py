"""The multi-process path on two CPU processes (torchrun, torch.distributed on gloo): traces and
evaluation sharded over the ranks, shared files written once, full weights that reload, and the
same results as one process.

One two-process run of the whole pipeline (traces → SFT 2 steps → GRPO 1 step → eval, with
evaluation during training) is shared by the tests of this module (about 20 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cpu-smoke.yaml"


def _config(per_device_sft_batch: int) -> dict:
    """The config file's content (a JSON-safe dict): the smoke config with the changes of this module."""
    from mmviad_trainer.config import load_config

    return load_config(CONFIG).updated({
        "name": "dist-check",
        "data": {"sft_clips": 4, "grpo_clips": 2},  # 4 SFT clips: two full global batches of 2
        # plain SGD without clipping, so weights compare across world sizes (Adam's first steps are
        # sign-like and amplify float noise in near-zero gradients)
        "sft": {"args": {"max_steps": 2, "per_device_train_batch_size": per_device_sft_batch, "optim": "sgd",
                         "learning_rate": 0.1, "max_grad_norm": 0.0, "save_steps": 100}},
        "grpo": {"args": {"max_steps": 1, "per_device_train_batch_size": 2, "save_steps": 100}},
        "eval": {"every_steps": 1, "during_clips": 3, "max_new_tokens": 16, "max_clips": None},  # 3 clips: 2 + 1 per rank
    }).as_json()


@pytest.fixture(scope="module")
def two_process_run(smoke_data, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dist")
    cfg_path = tmp / "dist.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(per_device_sft_batch=1)))
    run = tmp / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "mmviad_trainer", "train",
                           "--config", str(cfg_path), "--data", str(smoke_data), "--run-dir", str(run), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return run


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_shared_files_are_written_once_and_work_is_sharded(two_process_run):
    run = two_process_run
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    counts = json.loads((run / "traces" / "trace_counts.json").read_text())
    assert counts["per_rank"] == [2, 2] and counts["kept"] == 4  # each rank's teacher wrote half
    assert len(_rows(run / "traces" / "traces.jsonl")) == 4
    assert not list(run.rglob("*.tmp")) and (run / "FINAL").read_text().strip().endswith("grpo/final")
    for stage, steps in (("sft", [0, 1, 2]), ("grpo", [0, 1])):
        rows = _rows(run / stage / "log.jsonl")
        # one evaluation row per step (not one per rank), with the per-task metrics
        assert [r["step"] for r in rows if "eval/avg" in r] == steps, stage
        assert all({"eval/q1_acc", "eval/q2_acc", "eval/q3_acc", "eval/q4_miou"} <= set(r) for r in rows if "eval/avg" in r)
        assert [r["step"] for r in rows if "loss" in r] == steps[1:], stage
    grpo = next(r for r in _rows(run / "grpo" / "log.jsonl") if "reward" in r)
    assert {f"rewards/{n}_reward/mean" for n in ("format", "answer", "defect", "temporal")} <= set(grpo)
    from mmviad_trainer.plot import plot_run

    png = plot_run(run, run.parent / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
    preds = _rows(run / "eval" / "predictions.jsonl")
    assert [p["clip_id"] for p in preds] == [
        "bottle0-0000-bulge-t0-c0", "bottle0-0000-bulge-t0-c1", "bottle0-0000-bulge-t0-c2"]


def test_saved_weights_reload_and_evaluate_as_in_one_process(two_process_run, smoke_data, tmp_path):
    from transformers import Qwen3VLForConditionalGeneration

    from mmviad_trainer.config import load_config
    from mmviad_trainer.eval_adapter import final_evaluation
    from mmviad_trainer.runner import check_full_weights

    final = two_process_run / "grpo" / "final"
    check_full_weights(final)
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(final))
    assert sum(p.numel() for p in model.parameters()) > 200_000
    cfg_path = tmp_path / "dist.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(per_device_sft_batch=1)))
    metrics = final_evaluation(load_config(cfg_path), smoke_data, str(final), tmp_path / "eval", progress=False)
    two = two_process_run / "eval"
    assert (tmp_path / "eval" / "predictions.jsonl").read_text() == (two / "predictions.jsonl").read_text()
    assert metrics == json.loads((two / "metrics.json").read_text())


def test_sft_on_two_processes_equals_one_process_with_the_same_global_batch(two_process_run, smoke_data, tmp_path):
    """2 ranks × 1 clip per step must train exactly like 1 rank × 2 clips (gradients averaged over
    the global batch's tokens, the same clips in the same steps)."""
    from safetensors.torch import load_file

    from mmviad_trainer.runner import train

    cfg_path = tmp_path / "one.yaml"
    from mmviad_trainer.config import TrainConfig

    cfg = TrainConfig.model_validate(_config(per_device_sft_batch=2)).updated({"eval": {"every_steps": 0}})
    cfg_path.write_text(yaml.safe_dump(cfg.as_json()))
    train(cfg_path, smoke_data, tmp_path / "run", stages=("sft",), progress=False)
    one = load_file(str(tmp_path / "run" / "sft" / "final" / "model.safetensors"))
    two = load_file(str(two_process_run / "sft" / "final" / "model.safetensors"))
    base = load_file(str(two_process_run / "base" / "model.safetensors"))
    moved = max((two[k] - base[k]).abs().max().item() for k in two)
    differ = max((two[k] - one[k]).abs().max().item() for k in two)
    assert moved > 1e-3 and differ < 1e-6, (moved, differ)
