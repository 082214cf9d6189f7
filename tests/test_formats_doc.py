"""docs/formats.md is the contract of the files: its field tables for ``jobs.jsonl`` and
``scene.json`` name exactly the fields of the records that define them (``pipeline.records.Job``,
``pipeline.scene_spec.SceneSpec`` and its parts), so a field added to one and not the other fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.records import Job, JobCamera, JobObject, JobPose, JobSeeds
from pipeline.scene_spec import PARTS, field_names

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def table_fields(text: str, heading: str) -> list[str]:
    """The backticked names in the first column of the first table under ``heading``."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and not set(cells[1].strip()) <= {"-", " "} and cells[1].strip() != "field":
            names += re.findall(r"`([^`]+)`", cells[1])
    return names


def by_part(names: list[str]) -> dict[str, set[str]]:
    """``a.b.c`` → part ``a.b``, field ``c``; a name without a dot is a top-level field."""
    out: dict[str, set[str]] = {}
    for n in names:
        part, _, f = n.rpartition(".")
        out.setdefault(part, set()).add(f)
    return out


JOB_PARTS = {"": Job, "object": JobObject, "pose": JobPose, "camera": JobCamera, "seeds": JobSeeds}


def check_job_table(text: str) -> list[str]:
    found = by_part(table_fields(text, "## `<out>/jobs.jsonl` (plan)"))
    problems = [f"{p}: not a part of Job" for p in found if p not in JOB_PARTS]
    top = set(Job.model_fields)
    problems += [f"{f}: a Job field missing from the table" for f in sorted(top - found.get("", set()))]
    problems += [f"{f}: in the table, not a Job field" for f in sorted(found.get("", set()) - top)]
    for p, names in found.items():
        if p and p in JOB_PARTS:
            problems += [f"{p}.{f}: in the table, not a field" for f in sorted(names - set(JOB_PARTS[p].model_fields))]
    return problems


def check_spec_table(text: str) -> list[str]:
    found = by_part(table_fields(text, "## `<out>/renders/<job_id>/scene.json` (render → Blender)"))
    problems = [f"{p}: not a part of SceneSpec" for p in found if p not in PARTS]
    for p, model in PARTS.items():
        # a field that is itself a part counts as named when its own fields are
        want = set(field_names(model))
        got = found.get(p, set()) | {f for f in want if any(q in (f"{p}.{f}".lstrip("."), f"{p}.{f}[]".lstrip("."))
                                                         for q in found)}
        problems += [f"{(p + '.') if p else ''}{f}: a field missing from the table" for f in sorted(want - got)]
        problems += [f"{(p + '.') if p else ''}{f}: in the table, not a field" for f in sorted(got - want)]
    return problems


def test_the_job_table_names_the_job_record_fields() -> None:
    assert check_job_table(DOC.read_text(encoding="utf-8")) == []


def test_the_scene_json_table_names_the_scene_spec_fields() -> None:
    assert check_spec_table(DOC.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("old, new, problem", [
    ("| `visibility` |", "| `visible` |", "visibility: a Job field missing from the table"),
    ("| `camera.lens_mm` |", "| `camera.lens` |", "camera.lens_mm: a field missing from the table"),
    ("| `mask_pass` |", "| `mask_pass`, `colour` |", "colour: in the table, not a field"),
    ("| `object.defect_params` |", "| `object.defect` |", "object.defect: in the table, not a field"),
])
def test_the_checks_catch_a_drift(old, new, problem) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert old in text
    drifted = text.replace(old, new, 1)
    assert problem in check_job_table(drifted) + check_spec_table(drifted)
