"""``mmviad review export``: candidate intervals of encoded clips → a Label Studio project and a
standalone HTML page.

Layout under ``dest`` (default ``<out>/review/<name>``)::

    labelstudio/label_config.xml   paste into the project's Labeling Interface (Code view)
    labelstudio/tasks.json         import into the project (tasks + predictions)
    review.html                    open in a browser; videos are linked relative to the page
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..io import atomic_write_text, write_json
from ..layout import Layout
from ..records import ANNOTATION_FORMAT, read_annotation, read_clips_jsonl
from . import labelstudio
from .html_page import render_page
from .model import CANDIDATE_SOURCES, ReviewTask, build_task

LS_URL_PREFIX = "/data/local-files/?d="


def collect_tasks(out: Path, jobs: list[dict[str, Any]], candidate_source: str,
                  url_of: Any) -> list[ReviewTask]:
    """Review tasks for every encoded clip of ``jobs``: clips with weak evidence (in view by the mask,
    mostly not shown by the unmarked video) first, then clip-id order. ``url_of(rel_path)`` turns a
    path relative to ``out`` into the URL the consumer needs."""
    if candidate_source not in CANDIDATE_SOURCES:
        raise ValueError(f"--candidates must be one of {', '.join(CANDIDATE_SOURCES)}")
    by_id = {j["job_id"]: j for j in jobs}
    layout = Layout(out)
    clips_path = layout.clips_jsonl()
    if not clips_path.exists():
        raise FileNotFoundError(f"{clips_path}: no clips yet; run `mmviad clips` first")
    tasks, anns = [], {}
    for c in read_clips_jsonl(clips_path):
        jid = c["job_id"]
        if jid not in by_id:
            continue
        if jid not in anns:
            anns[jid] = read_annotation(layout.annotation(jid), jid).to_json()
        tasks.append(build_task(c, anns[jid], by_id[jid], candidate_source,
                                url_of(c["video_marked"]), url_of(c["video"])))
    return sorted(tasks, key=lambda t: (not t.weak_evidence, t.clip_id))


def export_review(out: Path, dataset: str, jobs: list[dict[str, Any]], dest: Path,
                  candidate_source: str = "diff", ls_url_prefix: str = LS_URL_PREFIX) -> dict[str, Any]:
    """Write the Label Studio project and the HTML page; return a summary with the paths."""
    out, dest = Path(out), Path(dest)
    model_version = f"mmviad-{candidate_source}-v{ANNOTATION_FORMAT}"
    ls_tasks = collect_tasks(out, jobs, candidate_source, lambda rel: ls_url_prefix + quote(rel))
    rel_root = Path(os.path.relpath(out.resolve(), dest.resolve()))
    page_tasks = collect_tasks(out, jobs, candidate_source, lambda rel: quote((rel_root / rel).as_posix()))
    ls_dir = dest / "labelstudio"
    atomic_write_text(ls_dir / "label_config.xml", labelstudio.label_config())
    write_json(ls_dir / "tasks.json", [labelstudio.task(t, model_version) for t in ls_tasks])
    atomic_write_text(dest / "review.html", render_page(page_tasks, dataset))
    return {"tasks": len(ls_tasks), "label_config": ls_dir / "label_config.xml",
            "tasks_json": ls_dir / "tasks.json", "html": dest / "review.html"}
