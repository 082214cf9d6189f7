import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipeline.config import Config, load_config
from pipeline.plan import allocate, load_jobs, plan_jobs, write_plan

ROOT = Path(__file__).resolve().parents[1]


def cfg_with(**objects) -> Config:
    base = load_config(ROOT / "manifests" / "default.yaml").model_dump()
    base["objects"].update(objects)
    return Config.model_validate(base)


# ---- determinism, checked across separate processes (no shared in-memory caches) ------------------

#: two categories of the default config, two objects each (a normal one and three defects), with
#: every other choice of the default (looks, orbit, visibility prediction)
SMALL = {**yaml.safe_load((ROOT / "manifests" / "default.yaml").read_text()), "name": "small", "num_shards": 1}
SMALL["objects"] = {**SMALL["objects"], "categories": ["vase3", "cup1"], "objects_per_category": 2,
                    "normal_share": 0.25}
#: one defect type and no normal object, so that a job's id does not depend on the other categories
BULGE = {**SMALL, "objects": {**SMALL["objects"], "normal_share": 0.0, "defects": {"bulge": 1}}}


def _with_categories(raw: dict, cats: list[str]) -> dict:
    return {**raw, "objects": {**raw["objects"], "categories": cats}}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``jobs.jsonl`` planned in separate ``mmviad plan`` processes (SMALL twice, SMALL with three
    shards, BULGE with a third category) and in this process (SMALL, BULGE)."""
    from conftest import run_mmviad

    root = tmp_path_factory.mktemp("plans")
    variants = {"a": SMALL, "b": SMALL, "shards3": {**SMALL, "num_shards": 3},
                "bulge3": _with_categories(BULGE, ["vase3", "cup1", "bowl1"]), "here": SMALL, "bulge2": BULGE}
    out = {}
    for name, raw in variants.items():
        cfg = root / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        if name in ("here", "bulge2"):
            out[name] = write_plan(load_config(cfg), root / name, progress=False).read_bytes()
        else:
            run_mmviad("plan", "--config", str(cfg), "--out", str(root / name), "--no-progress")
            out[name] = (root / name / "jobs.jsonl").read_bytes()
    return out


def _jobs(text: bytes) -> list[dict]:
    return [json.loads(x) for x in text.splitlines()]


def test_plan_is_byte_identical_across_processes(plans):
    assert plans["a"] == plans["b"] == plans["here"]
    jobs = _jobs(plans["a"])
    assert len(jobs) == 4 and {j["defect"] is None for j in jobs} == {True, False}


def test_shard_count_changes_only_the_shard_field(plans):
    one, three = _jobs(plans["a"]), _jobs(plans["shards3"])
    strip = lambda js: [{k: v for k, v in j.items() if k != "shard"} for j in js]  # noqa: E731
    assert strip(one) == strip(three)
    assert sorted({j["shard"] for j in three}) == [0, 1, 2]


def test_adding_a_category_does_not_change_other_jobs(plans):
    two = {j["job_id"]: j for j in _jobs(plans["bulge2"])}
    three = _jobs(plans["bulge3"])
    assert len(two) == 4 and len(three) == 6 and two.keys() < {j["job_id"] for j in three}
    for j in three:
        if j["job_id"] in two:
            assert {k: v for k, v in j.items() if k != "shard"} == \
                   {k: v for k, v in two[j["job_id"]].items() if k != "shard"}


# ---- the rest -------------------------------------------------------------------------------------------

def test_every_random_choice_is_resolved():
    for job in plan_jobs(load_config(ROOT / "manifests" / "default.yaml")):
        assert set(job) >= {"job_id", "shard", "pose", "camera", "material", "environment", "floor", "seeds"}
        if job["defect"]:
            assert job["object"]["defect_params"]["kind"] == job["defect"]
        assert job["job_id"].startswith(f"{job['category']}-")


def test_allocation_matches_weights_exactly():
    got = Counter(allocate({"bulge": 1, "concavity": 1, "crack": 2}, 8))
    assert got == {"bulge": 2, "concavity": 2, "crack": 4}
    assert len(allocate({"a": 1, "b": 1, "c": 1}, 7)) == 7


def test_normal_share_and_defect_balance():
    cfg = cfg_with(categories=["vase0", "bowl0", "cup0", "bottle0"], objects_per_category=5, normal_share=0.2,
                   defects={"bulge": 1, "concavity": 1})
    jobs = plan_jobs(cfg)
    labels = Counter(j["defect"] for j in jobs)
    assert labels[None] == 4 and labels["bulge"] == 8 and labels["concavity"] == 8
    six = Counter(j["defect"] for j in plan_jobs(cfg_with(categories=["vase0", "bowl0", "cup0"], objects_per_category=4,
                                                           normal_share=0.0)))
    assert set(six) == {"crack", "scratch", "concavity", "bulge", "broken", "hole"} and set(six.values()) == {2}


def test_unknown_category_fails_before_writing(tmp_path):
    with pytest.raises(KeyError, match="not in the object library"):
        write_plan(cfg_with(categories=["teapot9"]), tmp_path)
    assert not (tmp_path / "jobs.jsonl").exists()


def test_hand_edited_job_file_is_rejected_with_line(tmp_path):
    cfg = load_config(ROOT / "manifests" / "smoke.yaml")
    path = write_plan(cfg, tmp_path)
    lines = path.read_text().splitlines()
    job = json.loads(lines[1])
    job["job_id"] = "../../etc"
    lines[1] = json.dumps(job)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"jobs.jsonl:2: job_id"):
        load_jobs(path)
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"jobs.jsonl:2: not valid JSON"):
        load_jobs(path)


def test_stages_reuse_the_plan_until_config_or_sources_change(tmp_path):
    """Planning builds meshes (seconds per object): later stages reuse jobs.jsonl while its
    fingerprint matches, and plan again when the config changes."""
    from pipeline.plan import ensure_plan, plan_fingerprint

    cfg = load_config(ROOT / "manifests" / "smoke.yaml")
    path = ensure_plan(cfg, tmp_path)
    assert (tmp_path / "jobs.fingerprint").read_text().strip() == plan_fingerprint(cfg)
    marker = path.read_text() + "\n"          # a change only a re-plan would undo
    path.write_text(marker)
    assert ensure_plan(cfg, tmp_path).read_text() == marker
    other = Config.model_validate({**cfg.model_dump(), "seed": cfg.seed + 1})
    assert plan_fingerprint(other) != plan_fingerprint(cfg)
    assert ensure_plan(other, tmp_path).read_text() != marker
    assert ensure_plan(other, tmp_path).read_text() == "".join(json.dumps(j, sort_keys=True, separators=(",", ":")) + "\n"
                                                               for j in plan_jobs(other))


def test_no_progress_silences_the_planning_bars(tmp_path):
    from conftest import run_mmviad

    cfg = tmp_path / "eight.yaml"
    cfg.write_text("name: eight\nobjects:\n  categories: [vase0, cup0]\n  objects_per_category: 4\n"
                   "  normal_share: 0.5\n  defects: {bulge: 1}\nscene:\n  visibility: {predict: false}\n")
    loud = run_mmviad("plan", "--config", str(cfg), "--out", str(tmp_path / "a"))
    quiet = run_mmviad("plan", "--config", str(cfg), "--out", str(tmp_path / "b"), "--no-progress")
    assert "plan:" in loud.stderr and "8/8" in loud.stderr
    assert "plan:" not in quiet.stderr
    assert (tmp_path / "a" / "jobs.jsonl").read_bytes() == (tmp_path / "b" / "jobs.jsonl").read_bytes()
