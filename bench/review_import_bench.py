"""How long `mmviad review import` takes on a large Label Studio export (issue 16: 104 s to reject
a 50 MB export of 38,836 valid tasks, from a quadratic duplicate check).

Builds a synthetic dataset folder (``clips.jsonl`` with N clips of N/3 jobs, their annotation
files) and a Label Studio export in the documented format with one task per clip, like a real
full export (data with the per-frame scores, one annotation each). Times two imports:

- ``rejected``: the same N tasks plus one more task reviewing the first clip again (refused, nothing
  written: the whole file is read and checked first);
- ``accepted``: the N tasks, written into the N/3 annotation files.

Prints seconds and the ratio between N and N/2 tasks (≈ 2 for linear work, ≈ 4 for quadratic).

    .venv/bin/python bench/review_import_bench.py [--tasks 38836]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def make_dataset(out: Path, n_clips: int) -> list[dict]:
    """``clips.jsonl`` and annotation files for ``n_clips`` 20-frame clips (3 per 60-frame orbit)."""
    (out / "annotations").mkdir(parents=True)
    clips = []
    scores = [0] * 10 + [25] * 30 + [0] * 20
    for j in range((n_clips + 2) // 3):
        jid = f"vase{j % 40}-{j:04d}-bulge-t0"
        ann = {"format_version": 2, "job_id": jid, "fps": 10, "num_frames": 60, "clip_frames": 20, "width": 64,
               "height": 36, "threshold_px": 2.0, "params": {"min_visible_px": 2},
               "mask": {"scores": scores, "intervals": [[10, 40]]}, "diff": {"scores": scores, "intervals": [[10, 40]]},
               "agreement": {"iou": 1.0, "clip_iou": [1.0, 1.0, 1.0], "disagree_spans": [], "missed_spans": [],
                             "spurious_spans": [], "pixels": {"both": 750, "diff": 750, "mask": 750,
                                                              "precision": 1.0, "recall": 1.0}}}
        (out / "annotations" / f"{jid}.json").write_text(json.dumps(ann, sort_keys=True))
        for i in range(3):
            if len(clips) == n_clips:
                break
            s, e = 20 * i, 20 * i + 20
            iv = [[max(10, s) - s, min(40, e) - s]] if s < 40 and e > 10 else []
            cid = f"{jid}-c{i}"
            clips.append({"clip_id": cid, "job_id": jid, "clip_index": i, "video": f"clips/{cid}.mp4",
                          "video_marked": f"clips/{cid}.marked.mp4", "fps": 10, "num_frames": 20, "duration": 2.0,
                          "start_frame": s, "end_frame": e, "azimuth_deg": [0.0, 120.0],
                          "intervals_frames": {"mask": iv, "diff": iv},
                          "intervals": {k: [[a / 10, b / 10] for a, b in iv] for k in ("mask", "diff")}})
    (out / "clips.jsonl").write_text("".join(json.dumps(c, sort_keys=True, separators=(",", ":")) + "\n"
                                             for c in clips))
    return clips


def ls_export(clips: list[dict]) -> list[dict]:
    """One accepted task per clip, shaped like Label Studio's full JSON export."""
    tasks = []
    for k, c in enumerate(clips, 1):
        rng = [{"start": a + 1, "end": b} for a, b in c["intervals_frames"]["diff"]] or [{"start": 3, "end": 6}]
        tasks.append({
            "id": k, "data": {"clip_id": c["clip_id"], "job_id": c["job_id"], "num_frames": 20, "fps": 10,
                              "video": f"/data/local-files/?d={c['video_marked']}",
                              "video_unmarked": f"/data/local-files/?d={c['video']}",
                              "info": f"{c['job_id']} clip {c['clip_index']}: vase, defect bulge; candidates from diff",
                              "diff_scores": [25] * 20, "mask_scores": [25] * 20},
            "annotations": [{"id": 10 ** 6 + k, "completed_by": {"id": 1, "email": "ann@example.org"},
                             "was_cancelled": False, "ground_truth": False, "lead_time": 12.5,
                             "created_at": "2026-01-05T10:00:00.000000Z", "updated_at": "2026-01-05T10:00:00.000000Z",
                             "result": [{"id": f"r{k}", "from_name": "visible", "to_name": "video",
                                         "type": "timelinelabels", "origin": "manual",
                                         "value": {"ranges": rng, "timelinelabels": ["defect_visible"]}},
                                        {"id": f"c{k}", "from_name": "review", "to_name": "video", "type": "choices",
                                         "value": {"choices": ["corrected"]}}]}],
            "predictions": [], "drafts": [], "total_annotations": 1, "cancelled_annotations": 0,
            "created_at": "2026-01-04T09:00:00.000000Z", "updated_at": "2026-01-05T10:00:00.000000Z",
            "inner_id": k, "project": 7})
    return tasks


def timed(n: int, root: Path) -> dict[str, float]:
    from pipeline.review.importer import import_reviews

    out = root / f"out{n}"
    clips = make_dataset(out, n)
    tasks = ls_export(clips)
    bad = root / f"dup{n}.json"
    bad.write_text(json.dumps(tasks + [{**tasks[0], "id": n + 1}]))
    good = root / f"ok{n}.json"
    good.write_text(json.dumps(tasks))
    t0 = time.perf_counter()
    try:
        import_reviews(bad, out)
        raise SystemExit("the duplicate was not refused")
    except ValueError as e:
        assert "more than one task" in str(e), e
    t1 = time.perf_counter()
    r = import_reviews(good, out)
    t2 = time.perf_counter()
    assert r["reviews"] == n, r
    return {"MB": bad.stat().st_size / 1e6, "rejected": t1 - t0, "accepted": t2 - t1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=38836, help="tasks in the large export (default: %(default)s)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="review-bench-"))
    try:
        half, full = timed(args.tasks // 2, root), timed(args.tasks, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, r in ((f"{args.tasks // 2} tasks", half), (f"{args.tasks} tasks", full)):
        print(f"{name}: export {r['MB']:.1f} MB, rejected (duplicate) in {r['rejected']:.2f} s, "
              f"accepted in {r['accepted']:.2f} s")
    print(f"ratio {args.tasks} / {args.tasks // 2} tasks: rejected x{full['rejected'] / half['rejected']:.2f}, "
          f"accepted x{full['accepted'] / half['accepted']:.2f} (2 = linear, 4 = quadratic)")


if __name__ == "__main__":
    main()
