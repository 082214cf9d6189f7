"""One switch for the progress bars drawn deep inside shared stages (planning runs from every
command): ``--no-progress`` turns them off without threading a flag through each call."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

_enabled = True


def set_enabled(on: bool) -> None:
    """Turn every :func:`bar` on or off (the CLI calls this once per command)."""
    global _enabled
    _enabled = bool(on)


def bar(iterable: Any = None, *, disable: bool = False, **kwargs: Any) -> tqdm:
    """``tqdm`` that also stays silent while bars are switched off."""
    return tqdm(iterable, disable=disable or not _enabled, **kwargs)
