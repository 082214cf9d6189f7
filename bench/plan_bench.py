"""Planning benchmark: `mmviad plan` of a config with this checkout against an older revision.

Runs each plan as a separate process on a cold output folder and prints wall time, CPU time
(user + sys of the plan and its worker processes: less sensitive than wall time to other load on a
shared machine) and the old/new ratios; then the rerun of the new plan on its warm cache (what a
plan interrupted near its end costs), and how the two plans compare: every job field equal but the
visibility prediction and the start azimuth it picks, predicted intervals equal per job, and the
predicted share of clips showing a defect. It never passes or fails on time.

    .venv/bin/python bench/plan_bench.py                       # the paper config, old = bcd688f
    .venv/bin/python bench/plan_bench.py --every 8             # every 8th category only (quick)
    .venv/bin/python bench/plan_bench.py --skip-old            # time this checkout only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The revision before the last planning round (Embree, objects in parallel, plan cache). Older ones
# (3183daf, the numpy caster) reject today's paper config (its scene and render keys changed since).
BASELINE = "bcd688f"


def run_plan(src: Path, cfg: Path, out: Path) -> tuple[float, float]:
    """(wall s, CPU s) of ``python -m pipeline.cli plan`` run from the checkout ``src``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "pipeline.cli", "plan", "--config", str(cfg), "--out", str(out),
                    "--no-progress"], cwd=src, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def checkout(rev: str, dest: Path) -> Path:
    """The files of ``rev`` (git archive) under ``dest``."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    tar = dest / "src.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(dest / "src")
    return dest / "src"


def compare(old: Path, new: Path, cfg: dict) -> list[str]:
    """Lines describing how two jobs.jsonl differ."""
    a = [json.loads(x) for x in old.read_text().splitlines()]
    b = [json.loads(x) for x in new.read_text().splitlines()]
    if [j["job_id"] for j in a] != [j["job_id"] for j in b]:
        return ["job lists differ"]
    def core(j: dict) -> dict:
        d = {k: v for k, v in j.items() if k != "visibility"}
        d["camera"] = {k: v for k, v in j["camera"].items() if k != "start_azimuth_deg"}
        return d
    fields = sum(core(x) != core(y) for x, y in zip(a, b))
    raw = [(x["visibility"], y["visibility"]) for x, y in zip(a, b) if x["defect"] and "visibility" in x]
    same_iv = sum(1 for x, y in raw if x["predicted_intervals"] == y["predicted_intervals"])
    same_start = sum(1 for x, y in zip(a, b) if x["camera"]["start_azimuth_deg"] == y["camera"]["start_azimuth_deg"])

    def share(js: list[dict]) -> str:
        clips = [c for j in js if "visibility" in j for c in j["visibility"]["predicted_clips"]]
        return f"{sum(clips)}/{len(clips)} ({sum(clips) / max(len(clips), 1):.1%})"
    return [f"jobs differing outside visibility and start azimuth: {fields} of {len(a)}",
            f"defective jobs with equal predicted intervals: {same_iv} of {len(raw)}",
            f"jobs with the same start azimuth: {same_start} of {len(a)}",
            f"predicted clips showing the defect: old {share(a)}, new {share(b)}"
            + (f", target {cfg['scene']['visibility']['target_share']:.1%}"
               if (cfg.get("scene") or {}).get("visibility", {}).get("target_share") is not None else "")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "manifests" / "mmviad.yaml")
    ap.add_argument("--old", default=BASELINE, help="revision to compare with (default: %(default)s)")
    ap.add_argument("--every", type=int, default=1, help="keep every Nth category of the config (default: all)")
    ap.add_argument("--skip-old", action="store_true", help="time this checkout only")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    args = ap.parse_args()

    raw = yaml.safe_load(args.config.read_text())
    raw["objects"]["categories"] = raw["objects"]["categories"][:: args.every]
    with tempfile.TemporaryDirectory(prefix="plan-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cfg = work / "config.yaml"
        cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
        n = len(raw["objects"]["categories"]) * raw["objects"].get("objects_per_category", 1)
        print(f"config: {args.config.name}" + (f", every {args.every}th category" if args.every > 1 else "")
              + f" ({n} objects); {os.cpu_count()} cores; load average before: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        new_wall, new_cpu = run_plan(ROOT, cfg, work / "new")
        warm_wall, warm_cpu = run_plan(ROOT, cfg, work / "new")
        print(f"{'plan':28s} {'wall s':>8s} {'CPU s':>8s}")
        for name, w, c in [("new (this checkout)", new_wall, new_cpu), ("new, rerun on its cache", warm_wall, warm_cpu)]:
            print(f"{name:28s} {w:8.1f} {c:8.1f}", flush=True)  # shown even when the old revision fails
        if not args.skip_old:
            try:
                old_wall, old_cpu = run_plan(checkout(args.old, work), cfg, work / "old")
            except subprocess.CalledProcessError as e:
                raise SystemExit(f"plan_bench: revision {args.old} could not plan {args.config.name} (exit "
                                 f"{e.returncode}; its error is above): pick a newer --old") from None
            print(f"{'old (' + args.old + ')':28s} {old_wall:8.1f} {old_cpu:8.1f}")
            print(f"old/new ratio: wall {old_wall / new_wall:.1f}x, CPU {old_cpu / new_cpu:.1f}x")
            for line in compare(work / "old" / "jobs.jsonl", work / "new" / "jobs.jsonl", raw):
                print(line)
        print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
