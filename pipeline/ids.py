"""Identifier rules (docs/architecture.md, Conventions): ids are ``[a-z0-9_-]`` only and are checked before any path is built; also the defect label of a job (``good`` for none) and the orbit frames each clip id covers."""

from __future__ import annotations

import re

_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")  # used with fullmatch: no "$" newline hole
DEFECT_TYPES: tuple[str, ...] = ("crack", "scratch", "concavity", "bulge", "broken", "hole")
GOOD = "good"


class InvalidIdError(ValueError):
    """An id that would be unsafe or ambiguous in a path or a file name."""


def validate_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a safe id, else raise :class:`InvalidIdError` naming ``what``."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidIdError(f"{what} {value!r} is not a valid id (allowed: lowercase a-z, 0-9, '_', '-'; "
                             "must start with a letter or digit; at most 128 characters)")
    return value


def label_of(defect: str | None) -> str:
    """A defect as a label: its type, or ``good`` for a normal object (``None`` in a job)."""
    return defect or GOOD


def defect_of_label(label: str) -> str | None:
    """The inverse of :func:`label_of`: ``None`` for ``good``, else the defect type."""
    return None if label == GOOD else label


def job_id(category: str, object_index: int, defect: str | None, trajectory: int) -> str:
    """``<category>-<object>-<defect>-t<k>``; a normal object uses ``good`` as its defect part."""
    validate_id(category, "category")
    if defect is not None and defect not in DEFECT_TYPES:
        raise InvalidIdError(f"defect {defect!r} is not one of {', '.join(DEFECT_TYPES)}")
    if object_index < 0 or trajectory < 0:
        raise InvalidIdError("object index and trajectory must be non-negative")
    return validate_id(f"{category}-{object_index:04d}-{label_of(defect)}-t{trajectory}", "job_id")


def clip_id(job: str, clip_index: int) -> str:
    """``<job_id>-c<i>``."""
    validate_id(job, "job_id")
    return validate_id(f"{job}-c{clip_index}", "clip_id")


def clip_window(index: int, clip_frames: int) -> tuple[int, int]:
    """Orbit frames ``[start, end)`` of clip ``index``: clips cut the orbit back to back from frame 0."""
    return index * clip_frames, (index + 1) * clip_frames


def clip_windows(orbit_frames: int, clip_frames: int) -> list[tuple[int, int]]:
    """Every whole clip of an orbit, in order (a remainder shorter than a clip is not a clip)."""
    return [clip_window(i, clip_frames) for i in range(orbit_frames // clip_frames if clip_frames > 0 else 0)]
