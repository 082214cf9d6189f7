"""``mmviad review export|push|pull|import``: the review loop (candidate intervals out to annotators,
their corrections back in)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..layout import Layout
from .common import common_args, select_jobs, setup, shard_args


def register(sub: Any) -> None:
    rv = sub.add_parser("review", help="export candidate intervals for annotators; import their corrections",
                        description="The review loop: `review export` writes a Label Studio project and a "
                        "standalone HTML page; `review import FILE` stores the reviewed intervals.")
    rsub = rv.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    ex = rsub.add_parser("export", help="Label Studio project + standalone HTML review page for encoded clips",
                         description="Write <dest>/labelstudio/{label_config.xml,tasks.json} and <dest>/review.html "
                         "for every encoded clip (of one shard with --shard).")
    common_args(ex)
    shard_args(ex)
    ex.add_argument("--dest", type=Path, default=None, help="output folder (default: <out>/review/<name>[-shard<k>])")
    ex.add_argument("--candidates", choices=("diff", "mask"), default="diff",
                    help="which automatic intervals to propose (default: %(default)s)")
    ex.add_argument("--ls-url-prefix", default="/data/local-files/?d=",
                    help="prefix for clip paths (relative to <out>) in Label Studio tasks (default: %(default)s; "
                    "start Label Studio with LOCAL_FILES_DOCUMENT_ROOT=<out>)")
    ex.set_defaults(func=run)
    for name, text in (
            ("push", "export, then create a project in a running Label Studio, connect <out>/clips as "
             "Local Storage and import the tasks with their candidate intervals as predictions (Label Studio must "
             "run with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<out>)"),
            ("pull", "fetch the project's full JSON export into <dest>/labelstudio/ and import it "
             "(as `review import FILE`)")):
        sp = rsub.add_parser(name, help=text.split(" (")[0], description=text)
        common_args(sp)
        shard_args(sp)
        sp.add_argument("--dest", type=Path, default=None, help="review folder (default: <out>/review/<name>[-shard<k>])")
        sp.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL", "http://localhost:8080"),
                        help="Label Studio URL (default: $LABEL_STUDIO_URL or %(default)s)")
        sp.add_argument("--token", default=None, help="API token (default: $LABEL_STUDIO_API_KEY); a personal "
                        "access token or a legacy token")
        if name == "push":
            sp.add_argument("--candidates", choices=("diff", "mask"), default="diff",
                            help="which automatic intervals to propose (default: %(default)s)")
            sp.add_argument("--title", default=None, help="project title (default: mmviad <dest folder name>)")
            sp.add_argument("--new", action="store_true", help="create another project even though <dest> "
                            "records one that still exists")
        else:
            sp.add_argument("--project", type=int, default=None,
                            help="project id (default: the one `review push` recorded in <dest>/labelstudio/project.json)")
            sp.add_argument("--by", default=None, help="reviewer name where the export does not name one")
        sp.set_defaults(func=run)
    im = rsub.add_parser("import", help="store reviewed intervals from a Label Studio JSON export or the page's JSON",
                         description="Validate FILE completely (nothing is written if any task is bad), then store "
                         "the reviewed intervals with who/when in <out>/annotations/<job_id>.json.")
    im.add_argument("file", type=Path, metavar="FILE", help="Label Studio JSON export or the review page's download")
    common_args(im)
    im.add_argument("--by", default=None, help="reviewer name when FILE does not carry one")
    im.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the review action ``args.review_command`` names."""
    return {"export": run_export, "push": run_push, "pull": run_pull, "import": run_import}[args.review_command](args)


def run_export(args: argparse.Namespace) -> int:
    from ..review.export import export_review

    cfg, out = setup(args)
    jobs = select_jobs(args, cfg, out)
    r = export_review(out, cfg.name, jobs, _review_dest(args, cfg, out), args.candidates, args.ls_url_prefix)
    print(f"review export: {r['tasks']} clip(s) with {args.candidates} candidates → {r['html']} (open in a browser), "
          f"{r['tasks_json']} + {r['label_config']} (Label Studio)")
    return 0


def _review_dest(args: argparse.Namespace, cfg: Any, out: Path) -> Path:
    return args.dest or Layout(out).review_dir(cfg.name, args.shard)


def _ls_client(args: argparse.Namespace) -> Any:
    from ..review.ls_client import LabelStudioClient

    return LabelStudioClient(args.url, args.token or os.environ.get("LABEL_STUDIO_API_KEY", ""))


def run_push(args: argparse.Namespace) -> int:
    from ..review.labelstudio_sync import push_review

    cfg, out = setup(args)
    jobs = select_jobs(args, cfg, out)
    r = push_review(_ls_client(args), out, cfg.name, jobs, _review_dest(args, cfg, out), args.candidates, args.title,
                    args.new)
    print(f"review push: {r['tasks']} task(s) with {r['predictions']} prediction(s) → "
          f"Label Studio {r['label_studio']} "
          f"project {r['project']}: {r['url']}/projects/{r['project']}/data . When reviewed: `mmviad review pull`.")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from ..review.labelstudio_sync import pull_review

    cfg, out = setup(args)
    r = pull_review(_ls_client(args), out, _review_dest(args, cfg, out), args.project, args.by)
    _print_imported(f"review pull: project {r['project']} → {r['file']}; ", r)
    return 0


def _print_imported(prefix: str, r: dict[str, Any], origin: str = "") -> None:
    dec = ", ".join(f"{v} {k}" for k, v in r["decisions"].items()) or "none"
    print(f"{prefix}{r['reviews']} clip review(s){origin} ({dec}) into {r['jobs']} annotation file(s); "
          f"{r['skipped']} task(s) without an annotation skipped. Next: `mmviad clips` and `mmviad qa`.")


def run_import(args: argparse.Namespace) -> int:
    from ..review.importer import import_reviews

    _, out = setup(args)
    r = import_reviews(args.file, out, args.by)
    _print_imported("review import: ", r, f" from a {r['kind']} file")
    return 0
