"""The command modules (pipeline/commands/) and the typed job outcome (pipeline/outcome.py):
``mmviad build`` loads its config once and plans once; outcomes survive the dict a Ray task returns;
the per-stage report prints the summary lines the other tests and users read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import SMOKE
from pipeline.cli import main
from pipeline.outcome import JobOutcome, JobState


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Wrap the real config loader and planners in counters (the commands import them when they run,
    so the wrappers are what they call)."""
    import pipeline.config
    import pipeline.plan

    calls: Counter = Counter()
    for module, name in ((pipeline.config, "load_config"), (pipeline.plan, "ensure_plan"),
                         (pipeline.plan, "write_plan"), (pipeline.plan, "plan_fingerprint"),
                         (pipeline.plan, "plan_jobs")):
        real = getattr(module, name)

        def counted(*a, _real=real, _name=name, **kw):
            calls[_name] += 1
            return _real(*a, **kw)
        monkeypatch.setattr(module, name, counted)
    return calls


def test_build_loads_the_config_once_and_plans_once(smoke_out: Path, monkeypatch, capsys):
    """Every stage of a build runs on the one loaded config and the one plan. Run in this process
    (so the calls can be counted) over a copy of the session's smoke build: the jobs are DONE, so
    no Ray or Blender starts here, while every stage still loads and plans as in a first build."""
    calls = _count_calls(monkeypatch)
    assert main(["build", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "render: 3 skipped\n" in out and "annotate: 3 skipped\n" in out and "clips: 3 skipped\n" in out, out
    assert "qa: 6 train / 3 test clips" in out and "card: " in out, out
    # the plan stage writes the plan anew (fingerprinting it once); nothing fingerprints it again
    assert calls == Counter(load_config=1, write_plan=1, plan_fingerprint=1, plan_jobs=1), calls


def test_a_stage_alone_loads_the_config_once_and_reuses_the_plan(smoke_out: Path, monkeypatch, capsys):
    calls = _count_calls(monkeypatch)
    assert main(["annotate", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("annotate: 3 skipped\n")
    # the plan of the build is still current: checked by its fingerprint, not made again
    assert calls == Counter(load_config=1, ensure_plan=1, plan_fingerprint=1), calls


def test_outcome_survives_the_dict_a_ray_task_returns():
    o = JobOutcome("vase0-0000-good-t0", JobState.FAILED, 1.5, 2, "Blender exited with code 1", "logs/render/x.log")
    d = vars(o)
    assert d == {"job_id": "vase0-0000-good-t0", "state": "failed", "seconds": 1.5, "attempts": 2,
                 "error": "Blender exited with code 1", "log": "logs/render/x.log"}
    again = JobOutcome(**d)
    assert again == o and again.state is JobState.FAILED and again.failed
    # the earlier positional form and its word for the state still make the typed record
    assert JobOutcome("j", "skipped").state is JobState.SKIPPED and JobOutcome("j", "done").state == "done"
    with pytest.raises(ValueError):
        JobOutcome("j", "finished")


def test_report_prints_counts_and_one_line_per_failure(tmp_path, capsys):
    from pipeline.commands.common import report

    outcomes = {"a": JobOutcome("a", JobState.DONE), "b": JobOutcome.failure("b", "frame 3 unreadable"),
                "c": JobOutcome("c", JobState.SKIPPED), "d": JobOutcome("d", JobState.MISSING),
                "e": JobOutcome("e", JobState.SKIPPED)}
    assert report("annotate", outcomes, tmp_path) == 1
    cap = capsys.readouterr()
    log = tmp_path / "logs" / "annotate" / "b.log"
    assert cap.out == "annotate: 1 done, 1 failed, 1 missing, 2 skipped\n"
    assert cap.err == f"  FAILED b: frame 3 unreadable (log: {log})\n"
    assert log.read_text() == "annotate failed: frame 3 unreadable\n"
    assert report("clips", {}, tmp_path) == 0 and capsys.readouterr().out == "clips: no jobs\n"
