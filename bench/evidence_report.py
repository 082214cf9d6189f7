"""What the evidence pass costs and finds on a built dataset (``annotate.evidence: twin``).

Reads ``<out>/renders/*/meta.json`` (per-frame render seconds of the unmarked, marked and twin
passes), ``<out>/clips.jsonl`` and ``<out>/jobs.jsonl``, and prints:

- the twin pass's cost against the unmarked pass, per job and in total (seconds and pixels);
- per defect type: in-view frames, the share of them with evidence, the visible clip time by the
  mask and the share of it without evidence, anomalous clips under ``mask`` and under
  ``in_view_and_evident``, weak clips.

It reports; it never passes or fails. ``--json FILE`` also writes the numbers.

    .venv/bin/python bench/evidence_report.py --out out/default
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.card import evidence_table  # noqa: E402
from pipeline.evidence_stats import summarize  # noqa: E402
from pipeline.io import read_json, read_jsonl, write_json  # noqa: E402


def cost(out: Path) -> dict[str, Any]:
    """Twin vs unmarked seconds and pixels over the dataset's defective jobs."""
    rows, tw_s, un_s, tw_px, un_px, sizes = [], 0.0, 0.0, 0, 0, set()
    for meta_path in sorted((out / "renders").glob("*/meta.json")):
        m = read_json(meta_path)
        if "twin" not in m:
            continue
        t, u = sum(m["timings"]["twin_s"]), sum(m["timings"]["unmarked_s"])
        px = m["render"]["width"] * m["render"]["height"] * m["frames"]
        sizes.add(f'{m["render"]["width"]}×{m["render"]["height"]}')
        rows.append({"job_id": m["job_id"], "twin_s": round(t, 2), "unmarked_s": round(u, 2),
                     "ratio": round(t / u, 3), "twin_frames": m["twin"]["frames_rendered"],
                     "pixel_share": round(m["twin"]["pixels_rendered"] / px, 4)})
        tw_s, un_s, tw_px, un_px = tw_s + t, un_s + u, tw_px + m["twin"]["pixels_rendered"], un_px + px
    return {"jobs": rows, "resolution": ", ".join(sorted(sizes)), "twin_s": round(tw_s, 2),
            "unmarked_s": round(un_s, 2), "ratio": round(tw_s / un_s, 3) if un_s else None, "pixel_share": round(tw_px / un_px, 4) if un_px else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a built dataset folder")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    a = ap.parse_args(argv)
    c = cost(a.out)
    jobs = {j["job_id"]: j["defect"] for j in read_jsonl(a.out / "jobs.jsonl")}
    s = summarize(read_jsonl(a.out / "clips.jsonl"), jobs)
    print(f"twin pass: {c['twin_s']} s for {c['unmarked_s']} s of unmarked rendering = {c['ratio']}x "
          f"({100 * (c['pixel_share'] or 0):.1f} % of the unmarked pixels path traced)")
    for r in c["jobs"]:
        print(f"  {r['job_id']:32s} {r['twin_frames']:4d} frames  {r['twin_s']:7.1f} s / {r['unmarked_s']:7.1f} s "
              f"= {r['ratio']:.3f}x  pixels {100 * r['pixel_share']:.1f} %")
    print("\n" + "\n".join(evidence_table(s, c["resolution"])))
    if a.json:
        write_json(a.json, {"cost": c, "summary": s})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
