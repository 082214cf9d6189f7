"""The trainer's final evaluation is `mmviad eval`: same frames, resolution, prompt, batching, grammar
and metrics, so the same tiny model on the same split gives the same numbers through both paths."""

from __future__ import annotations

import json

import pytest

from mmviad_trainer.config import EvalConfig
from mmviad_trainer.evaluate import EVAL_DEFAULTS, eval_settings, evaluate, evaluate_model
from pipeline.eval.frames import fit_size
from pipeline.paths import REPO_ROOT as REPO


@pytest.fixture(scope="module")
def eval_data(dataset, tmp_path_factory):
    """The trainer fixture's clips with three test clips (one defective, two normal)."""
    root = tmp_path_factory.mktemp("evaldata")
    for p in dataset.rglob("*"):
        if p.is_file():
            dst = root / p.relative_to(dataset)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
    train = [json.loads(x) for x in (root / "qa/standard/train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (root / "qa/standard/test.jsonl").read_text().splitlines()]
    # a third test clip whose Q3 options are other words, so prompts differ in length and a batch pads
    extra = {**train[2], "split": "test"}
    extra["q3"] = {**extra["q3"], "options": {"A": "cup", "B": "helmet", "C": "ashtray", "D": "microphone on a tall stand"},
                   "answer": "A"}
    test.append(extra)
    (root / "qa/standard/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    return root


def _cfg(smoke_cfg):
    return smoke_cfg.updated({"eval": {"max_clips": None, "max_new_tokens": 16, "batch_size": 4}})  # mmviad eval's batch


def test_defaults_are_the_papers():
    assert EVAL_DEFAULTS["num_frames"] == 32
    assert eval_settings(EvalConfig(num_frames=8))["num_frames"] == 8
    assert fit_size(1080, 1920) == (320, 576)  # 16:9 stays 16:9-ish, sides multiples of 32, not a square


def test_trainer_eval_and_mmviad_eval_give_the_same_numbers(eval_data, tiny_ckpt, smoke_cfg, tmp_path):
    from pipeline.io import read_jsonl

    metrics = evaluate(_cfg(smoke_cfg), eval_data, str(tiny_ckpt), tmp_path / "trainer", progress=False)
    from pipeline.eval.__main__ import main as mmviad_eval  # `mmviad eval` in this environment

    rc = mmviad_eval(["--config", str(REPO / "manifests" / "smoke.yaml"), "--out", str(eval_data),
                      "--runner", "transformers", "--model", str(tiny_ckpt), "--processor", "trainer",
                      "--prompt", "structured", "--max-tokens", "16", "--name", "cli", "--no-progress"])
    assert rc == 0
    cli = json.loads((eval_data / "eval" / "cli" / "report.json").read_text())
    trainer = json.loads((tmp_path / "trainer" / "report.json").read_text())
    assert cli["n_frames"] == trainer["n_frames"] == 32 and cli["max_pixels"] == trainer["max_pixels"]
    assert cli["prompt"] == trainer["prompt"] == "structured"
    assert [r["response"] for r in read_jsonl(eval_data / "eval" / "cli" / "predictions.jsonl")] == \
        [r["response"] for r in read_jsonl(tmp_path / "trainer" / "predictions.jsonl")]
    assert cli["overall"] == trainer["overall"] and cli["parsing"] == trainer["parsing"]
    # a random tiny model scores 0; what proves one path is the same input, token for token
    for k in ("prompt_tokens", "completion_tokens", "requests", "batches"):
        assert cli["runner_summary"][k] == trainer["runner_summary"][k], k
    assert metrics["avg"] == trainer["overall"]["avg"] and metrics["n"] == 3
    # the model really saw 20 frames per clip (all of a 20-frame clip when 32 are asked) at 96×64
    assert cli["runner_summary"]["prompt_tokens"] > 3 * 20 * 6


def test_batching_does_not_change_the_answers(eval_data, tiny_ckpt, tmp_path):
    from mmviad_trainer.evaluate import load_eval_model, load_eval_processor
    from pipeline.eval.run import load_split
    from pipeline.io import read_jsonl

    model, proc = load_eval_model(str(tiny_ckpt)), load_eval_processor(str(tiny_ckpt))
    recs = load_split(eval_data, "standard", "test")
    kw = dict(n_frames=4, max_new_tokens=12, progress=False)
    one = evaluate_model(model, proc, recs, eval_data, tmp_path / "b1", batch_size=1, **kw)
    three = evaluate_model(model, proc, recs, eval_data, tmp_path / "b3", batch_size=3, **kw)
    assert one["runner_summary"]["batches"] == 3 and three["runner_summary"]["batches"] == 1
    rows1, rows3 = read_jsonl(tmp_path / "b1" / "predictions.jsonl"), read_jsonl(tmp_path / "b3" / "predictions.jsonl")
    assert len({r["usage"]["prompt_tokens"] for r in rows1}) > 1  # prompts of different lengths: the batch pads
    assert [(r["response"], r["usage"]) for r in rows1] == [(r["response"], r["usage"]) for r in rows3]
    assert one["overall"] == three["overall"]
    # the seams for sharded generation give the same answers and scores
    from mmviad_trainer.evaluate import generate_responses, score

    responses = generate_responses(model, proc, recs, eval_data, n_frames=4, max_new_tokens=12, batch_size=2)
    assert responses == [r["response"] for r in rows1]
    assert {k: v for k, v in score(recs, responses).items() if k != "parsing"} == one["overall"]
