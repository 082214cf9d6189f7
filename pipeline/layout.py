"""The output tree of a dataset: every path under ``--out`` is built here and nowhere else.

``Layout(out)`` names each file and folder a stage reads or writes (docs/architecture.md, "Output
layout"); the stages ask it instead of joining strings themselves, so the tree is written down once
and every id is checked (:func:`pipeline.ids.validate_id`) before it becomes part of a path. An id
that could climb out of the folder (``../x``, ``a/b``) raises :class:`~pipeline.ids.InvalidIdError`.

Every method returns a path and touches nothing on disk, except :meth:`Layout.is_done`, the one
question about the tree that stages ask often enough to name. Keeping the tree behind one
constructor and path-returning methods is what lets the output move to another store later (an
object-store URL in place of a local folder) by changing this class rather than the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Union

from .ids import validate_id

#: the per-object planning cache folder (see :mod:`pipeline.plan_cache`)
PLAN_CACHE = ".plan-cache"
#: suffix of a job's clip index under ``clips/``
CLIP_INDEX_SUFFIX = ".clips.json"


@dataclass(frozen=True)
class Layout:
    """Paths of the dataset folder ``root`` (the ``--out`` of every command)."""

    root: Path

    def __init__(self, out: Union[str, Path, "Layout"]) -> None:
        object.__setattr__(self, "root", out.root if isinstance(out, Layout) else Path(out))

    # ---- plan ----------------------------------------------------------------------------------
    def jobs(self) -> Path:
        """``jobs.jsonl``: one resolved job per orbit."""
        return self.root / "jobs.jsonl"

    def jobs_fingerprint(self) -> Path:
        """``jobs.fingerprint``: the config and code fingerprint the plan was made with."""
        return self.root / "jobs.fingerprint"

    def plan_cache(self) -> Path:
        """``.plan-cache/``: per-object planning results, so an interrupted plan resumes."""
        return self.root / PLAN_CACHE

    def calibration_dir(self, job_id: str) -> Path:
        """``calibration/<job_id>/``: the short timing render of ``mmviad plan --estimate``."""
        return self.root / "calibration" / validate_id(job_id, "job_id")

    # ---- render --------------------------------------------------------------------------------
    def renders(self) -> Path:
        """``renders/``: one folder per finished job."""
        return self.root / "renders"

    def render_dir(self, job_id: str) -> Path:
        """``renders/<job_id>/``: the frames of every pass, ``meta.json``, ``scene.json``, the meshes."""
        return self.renders() / validate_id(job_id, "job_id")

    def frames_dir(self, job_id: str, kind: str) -> Path:
        """``renders/<job_id>/<kind>/``: one pass's PNG frames (``unmarked``, ``marked``, ``mask``,
        ``objmask``, ``twin``), ``NNNN.png`` from 0. Published only as ``render.keep_frames`` asks."""
        return self.render_dir(job_id) / validate_id(kind, "pass")

    def mask_video(self, job_id: str) -> Path:
        """``renders/<job_id>/mask.mkv``: the exact defect mask of every frame, lossless (FFV1 gray8 in
        Matroska, :mod:`pipeline.mask_video`); re-annotation reads it when the PNGs were not kept."""
        return self.render_dir(job_id) / "mask.mkv"

    def staging_dir(self, job_id: str) -> Path:
        """``renders/.staging/<job_id>/``: where a job renders before it is moved into place."""
        return self.renders() / ".staging" / validate_id(job_id, "job_id")

    def lock_file(self, job_id: str) -> Path:
        """``renders/.locks/<job_id>.lock``: held while a process renders the job."""
        return self.renders() / ".locks" / f"{validate_id(job_id, 'job_id')}.lock"

    def done_marker(self, job_id: str) -> Path:
        """``renders/<job_id>/DONE``: written last, so its presence means the folder is complete."""
        return self.render_dir(job_id) / "DONE"

    def is_done(self, job_id: str) -> bool:
        """Whether the job's render is complete (its DONE marker exists)."""
        return self.done_marker(job_id).exists()

    # ---- annotate ------------------------------------------------------------------------------
    def annotation(self, job_id: str) -> Path:
        """``annotations/<job_id>.json``: per-frame scores, intervals, agreement, reviewed block."""
        return self.root / "annotations" / f"{validate_id(job_id, 'job_id')}.json"

    def reports_dir(self) -> Path:
        """``reports/``: dataset-level reports (agreement, planned vs rendered visibility)."""
        return self.root / "reports"

    def contact_sheet(self) -> Path:
        """``contact_sheet.png``: ``mmviad sheet``'s default picture."""
        return self.root / "contact_sheet.png"

    # ---- review --------------------------------------------------------------------------------
    def review_dir(self, name: str, shard: int | None = None) -> Path:
        """``review/<name>/`` (``review/<name>-shard<k>/`` for one shard): a review export (HTML page,
        Label Studio files)."""
        if shard is not None and (isinstance(shard, bool) or not isinstance(shard, int) or shard < 0):
            raise ValueError(f"shard {shard!r} is not a non-negative integer")
        return self.root / "review" / (validate_id(name, "review name") + ("" if shard is None else f"-shard{shard}"))

    # ---- clips ---------------------------------------------------------------------------------
    def clips_dir(self) -> Path:
        """``clips/``: the videos and the per-job clip indexes."""
        return self.root / "clips"

    def clip_index(self, job_id: str) -> Path:
        """``clips/<job_id>.clips.json``: a job's clips, written last (marks its clips complete)."""
        return self.clips_dir() / f"{validate_id(job_id, 'job_id')}{CLIP_INDEX_SUFFIX}"

    @staticmethod
    def clip_video_rel(clip_id: str, marked: bool = False) -> str:
        """The clip's video as records store it, relative to the dataset root:
        ``clips/<clip_id>.mp4``, or ``clips/<clip_id>.marked.mp4`` for the review video."""
        return f"clips/{validate_id(clip_id, 'clip_id')}{'.marked' if marked else ''}.mp4"

    def clip_video(self, clip_id: str, marked: bool = False) -> Path:
        """The clip's video file (see :meth:`clip_video_rel`)."""
        return self.root / self.clip_video_rel(clip_id, marked)

    def clips_jsonl(self) -> Path:
        """``clips.jsonl``: every finished job's clips in clip-id order."""
        return self.root / "clips.jsonl"

    def resolve(self, rel: str) -> Path:
        """A path stored in a record relative to the dataset root (a clip's ``video``), as a file.
        Refuses an absolute path or a ``..`` part, which would leave the dataset."""
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or "\\" in rel:
            raise ValueError(f"{rel!r} is not a path inside the dataset folder")
        return self.root / p

    # ---- qa, card, eval ------------------------------------------------------------------------
    def qa_dir(self, protocol: str) -> Path:
        """``qa/<protocol>/``: a protocol's QA files."""
        return self.root / "qa" / validate_id(protocol, "protocol")

    def qa_file(self, protocol: str, split: str) -> Path:
        """``qa/<protocol>/<split>.jsonl``: one QA record per clip."""
        return self.qa_dir(protocol) / f"{validate_id(split, 'split')}.jsonl"

    def card(self) -> Path:
        """``README.md``: the dataset card."""
        return self.root / "README.md"

    def card_dir(self) -> Path:
        """``card/``: the dataset card's pictures."""
        return self.root / "card"

    def eval_dir(self, name: str) -> Path:
        """``eval/<name>/``: one evaluation run's report, predictions and cache."""
        return self.root / "eval" / validate_id(name, "--name")

    # ---- logs ----------------------------------------------------------------------------------
    def log(self, stage: str, job_id: str) -> Path:
        """``logs/<stage>/<job_id>.log``: Blender's output (render) or a job's error (other stages)."""
        return self.root / "logs" / validate_id(stage, "stage") / f"{validate_id(job_id, 'job_id')}.log"

    def error_file(self, stage: str, job_id: str) -> Path:
        """``logs/<stage>/<job_id>.error.json``: the structured error of a failed job."""
        return self.root / "logs" / validate_id(stage, "stage") / f"{validate_id(job_id, 'job_id')}.error.json"


#: the layout relative to the dataset root: ``KEYS.done_marker(j).as_posix()`` is the key of a file
#: in an object store (:class:`pipeline.store.Store`)
KEYS = Layout(".")
