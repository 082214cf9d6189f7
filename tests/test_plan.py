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


def test_shards_partition_the_plan_for_any_shard_count(tmp_path):
    """However many shards, each job is in exactly one, shards differ by at most one job, and their
    union is the unsharded plan (only the ``shard`` field differs)."""
    cfg = load_config(ROOT / "manifests" / "default.yaml")
    path = write_plan(cfg, tmp_path)
    strip = lambda js: [{k: v for k, v in j.items() if k != "shard"} for j in js]  # noqa: E731
    whole = strip(load_jobs(path))
    assert cfg.num_shards == len(whole) == 7  # the README's `make render SHARD=3` needs shard 3
    for n in (1, 2, 3, 7, 10):
        shards = [load_jobs(path, k, n) for k in range(n)]
        assert all(j["shard"] == k for k, s in enumerate(shards) for j in s)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1
        union = sorted(strip([j for s in shards for j in s]), key=lambda j: j["job_id"])
        assert union == sorted(whole, key=lambda j: j["job_id"])


def test_shard_3_of_the_default_config_and_num_shards_everywhere(tmp_path, capsys):
    """`--shard 3` selects one orbit of the default config's plan (as `make render SHARD=3` asks);
    `--num-shards N` replaces the config's count in plan and the sharded stages alike."""
    from pipeline.cli import build_parser, main
    from pipeline.commands.common import select_jobs, setup

    default = str(ROOT / "manifests" / "default.yaml")
    out = tmp_path / "out"
    whole = plan_jobs(load_config(default), progress=False)

    def jobs(*extra: str) -> list[dict]:
        args = build_parser().parse_args(["annotate", "--config", default, "--out", str(out), "--no-progress", *extra])
        cfg, o = setup(args)
        return select_jobs(args, cfg, o)

    three = jobs("--shard", "3")
    assert [j["job_id"] for j in three] == [whole[3]["job_id"]] and three[0]["shard"] == 3
    assert [j["job_id"] for j in jobs("--shard", "1", "--num-shards", "3")] == [whole[1]["job_id"], whole[4]["job_id"]]
    assert main(["plan", "--config", default, "--out", str(out), "--num-shards", "3", "--no-progress"]) == 0
    assert "in 3 shard(s)" in capsys.readouterr().out
    assert [j["shard"] for j in load_jobs(out / "jobs.jsonl")] == [0, 1, 2, 0, 1, 2, 0]
    for bad, msg in ((["--shard", "7"], "--shard 7 is out of range for 7 shard(s)"),
                     (["--shard", "3", "--num-shards", "3"], "--shard 3 is out of range for 3 shard(s)")):
        assert main(["render", "--config", default, "--out", str(out), "--no-progress", *bad]) == 2
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse rejects it before any stage runs
        main(["render", "--config", default, "--out", str(out), "--no-progress", "--num-shards", "0"])
    assert e.value.code == 2 and "--num-shards: must be >= 1, got 0" in capsys.readouterr().err


def test_make_render_passes_num_shards_to_every_stage():
    """`make render SHARD=3 NUM_SHARDS=4` (dry run): plan, render, annotate and clips all get the count."""
    import subprocess

    lines = subprocess.run(["make", "-n", "render", "SHARD=3", "NUM_SHARDS=4"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    stages = {line.split()[1]: line for line in lines if line.startswith(".venv/bin/mmviad ")}
    assert set(stages) == {"plan", "render", "annotate", "clips"}
    assert all("--num-shards 4" in line for line in stages.values())
    assert all("--shard 3" in line for s, line in stages.items() if s != "plan")
    plain = subprocess.run(["make", "-n", "render", "SHARD=3"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
    assert "--num-shards" not in plain
