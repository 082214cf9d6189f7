"""What became of one job in one stage: :class:`JobState` and the :class:`JobOutcome` record.

Render (:func:`pipeline.render.job.render_job`, the farm's per-job task), annotate
(:func:`pipeline.annotate.annotate_jobs`) and clips (:func:`pipeline.clips.clip_jobs`) all return
these, and the command line's per-stage report (``render: 3 done``, ``  FAILED <job_id>: ...``)
reads them. A Ray task returns its outcome as a plain dict (``vars(outcome)``); ``JobOutcome(**d)``
makes the record again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Optional


class JobState(StrEnum):
    """A job's state after a stage. The values are the words the summaries print, and a state
    compares equal to its word (``JobState.DONE == "done"``)."""

    DONE = "done"          # the stage did its work
    SKIPPED = "skipped"    # already up to date: nothing to do
    MISSING = "missing"    # the stage's input does not exist yet (e.g. annotate before render)
    FAILED = "failed"      # see ``error``


@dataclass
class JobOutcome:
    """One job's outcome in one stage. ``state`` also takes its word (``"done"``), as a dict from a
    Ray task passes it."""

    job_id: str
    state: JobState
    seconds: float = 0.0
    attempts: int = 0
    error: Optional[str] = None     # the one-line reason of a failure
    log: Optional[str] = None       # the job's log file for this stage, where one was written

    def __post_init__(self) -> None:
        self.state = JobState(self.state)

    @property
    def failed(self) -> bool:
        return self.state is JobState.FAILED

    @classmethod
    def failure(cls, job_id: str, error: str, **kw: object) -> "JobOutcome":
        """A failed outcome with its reason."""
        return cls(job_id, JobState.FAILED, error=error, **kw)  # type: ignore[arg-type]
