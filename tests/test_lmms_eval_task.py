"""The lmms-eval task (integrations/lmms_eval/mmviad): its YAML and functions parse and score with
mmviad's grammar and metrics; with .venv-lmms installed (`make install-lmms`, part of `make test`),
lmms-eval's own CLI runs the task on the smoke dataset against a local stub server and prints the
numbers `mmviad eval` computes from the same answers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.grammar import format_answer
from pipeline.io import read_jsonl
from conftest import REPO

TASK_DIR = REPO / "integrations" / "lmms_eval" / "mmviad"
LMMS = Path(os.environ.get("MMVIAD_LMMS_EVAL", REPO / ".venv-lmms" / "bin" / "lmms-eval"))
SMOKE = str(REPO / "manifests" / "smoke.yaml")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


utils = _load("mmviad_lmms_utils", TASK_DIR / "utils.py")
stub = _load("mmviad_lmms_stub", TASK_DIR.parent / "stub_server.py")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def _task_yaml(name: str) -> dict:
    return yaml.load((TASK_DIR / name).read_text(), Loader=_Loader)


def test_task_yaml_names_existing_functions_and_every_metric_is_produced():
    cfg = _task_yaml("mmviad.yaml")
    fns = [v[1] for v in cfg.values() if isinstance(v, tuple)] + [m["aggregation"][1] for m in cfg["metric_list"]]
    assert fns and all(f.startswith("utils.") and callable(getattr(utils, f.split(".", 1)[1])) for f in fns)
    assert [m["metric"] for m in cfg["metric_list"]] == list(utils.METRICS)
    unseen = _task_yaml("mmviad_unseen.yaml")
    assert unseen["include"] == "mmviad.yaml" and unseen["dataset_kwargs"]["data_files"]["test"] == "qa/unseen/test.jsonl"


def test_task_functions_prompt_parse_and_score(smoke_built, monkeypatch):
    monkeypatch.setenv("MMVIAD_DATA", str(smoke_built))
    monkeypatch.setenv("MMVIAD_FRAMES", "4")
    docs = read_jsonl(smoke_built / "qa" / "standard" / "test.jsonl")
    msgs = utils.mmviad_doc_to_messages(docs[0])
    kinds = [c["type"] for c in msgs[0]["content"]]
    assert kinds == ["text", "image"] * 4 + ["text"]            # "Frame at t s:" before each frame
    assert msgs[0]["content"][1]["url"].size == (96, 64)       # 64×36 frames, aspect kept (fit_size)
    assert len(utils.mmviad_doc_to_visual(docs[0])) == 4
    assert utils.mmviad_doc_to_text(docs[0]).startswith("The frames above are at ")
    perfect = [utils.mmviad_process_results(d, [utils.mmviad_doc_to_target(d)])["avg"] for d in docs]
    assert utils.agg_avg(perfect) == 100.0 and utils.agg_read_pct(perfect) == 100.0
    hedged = [utils.mmviad_process_results(d, ["Q1: A or B\nQ2: crack or bulge\nQ3: C\nQ4: no idea"])["q1_acc"]
              for d in docs]
    assert utils.agg_q1_acc(hedged) == 0.0 and utils.agg_read_pct(hedged) == 25.0   # only Q3 read


def test_predictions_written_by_the_task_score_the_same_in_mmviad_eval(smoke_copy, monkeypatch, capsys):
    monkeypatch.setenv("MMVIAD_PREDICTIONS", str(smoke_copy / "lmms" / "preds.jsonl"))
    docs = read_jsonl(smoke_copy / "qa" / "standard" / "test.jsonl")
    answers = [format_answer("A", d["q2"]["answer"], "A", "[[0.50, 2.00]]") for d in docs]
    rows = [utils.mmviad_process_results(d, [a])["avg"] for d, a in zip(docs, answers)]
    task = {m: getattr(utils, f)(rows) for m, f in (("avg", "agg_avg"), ("q3_acc", "agg_q3_acc"),
                                                  ("q4_miou", "agg_q4_miou"))}
    assert main(["eval", "--config", SMOKE, "--out", str(smoke_copy), "--runner", "predictions", "--predictions",
                 str(smoke_copy / "lmms" / "preds.jsonl"), "--no-progress"]) == 0
    rep = json.loads((smoke_copy / "eval" / "predictions" / "report.json").read_text())
    assert {k: rep["overall"][k] for k in task} == task


@pytest.mark.skipif(not LMMS.exists(), reason=f"{LMMS} not installed (`make install-lmms`)")
def test_lmms_eval_cli_runs_the_task(smoke_copy, tmp_path, capsys):
    log: list = []
    srv = stub.make_server(0, log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        env = {**os.environ, "MMVIAD_PREDICTIONS": str(tmp_path / "preds.jsonl"), "MMVIAD_FRAMES": "8",
               "OPENAI_API_KEY": "stub", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HOME": str(tmp_path / "hf"), "LMMS_EVAL_DATASETS_CACHE": str(tmp_path / "ds")}
        proc = subprocess.run([str(LMMS), "eval", "--model", "openai", "--model_args",
                               f"model_version=stub,base_url={url}", "--tasks", "mmviad", "--include_path",
                               str(TASK_DIR), "--output_path", str(tmp_path / "results")],
                              cwd=smoke_copy, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        n = len(read_jsonl(smoke_copy / "qa" / "standard" / "test.jsonl"))
        # every request is mmviad's interleaved prompt: 8 × (time text, frame), then the questions
        assert len(log) == n and all(kinds == ["text", "image_url"] * 8 + ["text"] for kinds in log)
        results = json.loads(next((tmp_path / "results").rglob("*_results.json")).read_text())["results"]["mmviad"]
        assert "|mmviad|" in proc.stdout and "avg" in proc.stdout
        # the same answers through `mmviad eval` give the same numbers
        assert main(["eval", "--config", SMOKE, "--out", str(smoke_copy), "--runner", "predictions",
                     "--predictions", str(tmp_path / "preds.jsonl"), "--frames", "8", "--no-progress"]) == 0
        rep = json.loads((smoke_copy / "eval" / "predictions" / "report.json").read_text())["overall"]
        for m in utils.METRICS[:-1]:
            assert results[f"{m},none"] == pytest.approx(rep[m], abs=0.01), m
        assert results["read_pct,none"] == 100.0 and 0 < results["avg,none"] < 100
        # and so does mmviad's own client against the same server
        assert main(["eval", "--config", SMOKE, "--out", str(smoke_copy), "--runner", "openai", "--base-url", url,
                     "--model", "stub", "--frames", "8", "--no-progress"]) == 0
        direct = json.loads((smoke_copy / "eval" / "openai" / "report.json").read_text())["overall"]
        assert {m: direct[m] for m in utils.METRICS[:-1]} == {m: rep[m] for m in utils.METRICS[:-1]}
    finally:
        srv.shutdown()
        srv.server_close()
