"""``mmviad review push`` / ``pull``: the Label Studio round trip without clicking through its
settings pages.

push: write the review export, create a project with our labeling config, connect ``<out>/clips``
as Local Storage (so the ``/data/local-files/?d=clips/...`` URLs play), import the tasks with their
candidate intervals as predictions, and remember the project in ``<dest>/labelstudio/project.json``.

pull: fetch the full JSON export, keep it as ``<dest>/labelstudio/export-p<id>-<UTC time>.json``
(the file the annotation's ``source`` names), and import it exactly like ``review import FILE``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..io import read_json, write_json
from ..layout import Layout
from .export import export_review
from .importer import import_reviews
from .ls_client import LabelStudioClient
from .model import ReviewError


def project_file(dest: Path) -> Path:
    """Where push records the Label Studio project of a review export."""
    return Path(dest) / "labelstudio" / "project.json"


def push_review(client: LabelStudioClient, out: Path, dataset: str, jobs: list[dict[str, Any]], dest: Path,
                candidate_source: str = "diff", title: str | None = None, new: bool = False) -> dict[str, Any]:
    """Export, then create and fill a Label Studio project. Returns the ``project.json`` record.
    Refuses while the project recorded in ``dest`` still exists on that server (reviews would be
    split over two projects) unless ``new``."""
    out, dest = Path(out), Path(dest)
    pf = project_file(dest)
    if pf.exists() and not new:
        old = read_json(pf)
        if old.get("url") == client.url and client.project_exists(int(old["project"])):
            raise ReviewError(f"{pf}: already pushed as project {old['project']} on {client.url}; "
                              "`mmviad review pull` its reviews, or pass --new for a second project")
    summary = export_review(out, dataset, jobs, dest, candidate_source)
    tasks = read_json(summary["tasks_json"])
    if not tasks:
        raise ReviewError(f"{summary['tasks_json']}: no clips to review; run `mmviad clips` first")
    project = client.create_project(title or f"mmviad {dest.name}",
                                    summary["label_config"].read_text(encoding="utf-8"),
                                    description=f"{len(tasks)} clips of {dataset}, {candidate_source} candidates")
    storage = client.connect_local_files(project, Layout(out).clips_dir())
    counts = client.import_tasks(project, tasks)
    if counts.get("task_count") != len(tasks):
        raise ReviewError(f"Label Studio project {project} took {counts.get('task_count')} of {len(tasks)} tasks")
    record = {"url": client.url, "project": project, "storage": storage, "tasks": len(tasks),
              "predictions": counts.get("prediction_count"), "label_studio": client.version(),
              "candidates": candidate_source, "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(project_file(dest), record)
    return record


def pull_review(client: LabelStudioClient, out: Path, dest: Path, project: int | None = None,
                default_by: str | None = None) -> dict[str, Any]:
    """Fetch the project's export, keep it beside the review files, and import it. ``project``
    defaults to the one push recorded in ``dest``."""
    dest = Path(dest)
    if project is None:
        pf = project_file(dest)
        if not pf.exists():
            raise ReviewError(f"{pf}: no project recorded by `mmviad review push`; pass --project ID")
        project = int(read_json(pf)["project"])
    doc = client.export(project)
    path = dest / "labelstudio" / f"export-p{project}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    write_json(path, doc)
    result = import_reviews(path, out, default_by)
    return {**result, "file": path, "project": project}
