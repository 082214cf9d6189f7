"""A local working copy of a dataset kept in a remote store, so that every stage keeps working on
plain files while ``--out`` is an ``s3://`` (or other fsspec) URL.

A command run with a URL ``--out`` (see :func:`dataset_folder`):

1. **pulls** the files it reads from the store into a cache folder (only those that changed since
   the last pull; media files only for the commands that read them),
2. runs on the cache folder exactly as on a local dataset,
3. **pushes** the files it created, changed or deleted back; completion markers (``DONE``, the
   per-job clip indexes, ``clips.jsonl``) go last, so a reader of the store never sees a job whose
   marker is there and whose files are not.

Render tasks on a farm do not go through the driver's copy: ``render`` hands the store's URL to its
tasks, each publishes its finished job into the store itself (:mod:`pipeline.farm`), and the driver
pulls what they published when they are done. The cache's manifest (``.mmviad-mirror.json``)
records, per file, the store's signature and the local size and modification time at the last sync;
that is how a push knows what changed. A command that fails or is interrupted skips its push; what it
finished stays in the cache and goes up with the next successful run against the same ``--out``.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from tqdm import tqdm

from .io import atomic_write_text
from .store import Store, is_url

MANIFEST = ".mmviad-mirror.json"
#: local-only folders: work in progress and locks are never pushed
LOCAL_ONLY = ("renders/.staging/", "renders/.locks/")
#: keys pushed after everything else: their presence tells readers the rest is complete
MARKER_NAMES = ("DONE",)
MARKER_SUFFIXES = (".clips.json",)
MARKER_KEYS = ("clips.jsonl", "jobs.jsonl", "jobs.fingerprint")

#: what a command reads beyond the small files: ``meta`` (JSON/JSONL/text only), ``clips`` (also the
#: clip videos), ``all`` (also frames, mask videos and meshes)
MEDIA = (".mp4", ".mkv", ".png", ".npz")
PULL = {"plan": "meta", "render": "meta", "qa": "meta", "protocols": "meta", "review import": "meta",
        "review pull": "meta", "build": "clips", "card": "clips", "sheet": "clips", "eval": "clips",
        "review export": "clips", "review push": "clips"}


def wants(level: str) -> Callable[[str], bool]:
    """The pull filter for ``level`` (``meta``, ``clips`` or ``all``)."""
    if level == "all":
        return lambda key: True
    if level == "clips":
        return lambda key: not key.endswith(MEDIA) or (key.startswith("clips/") and key.endswith(".mp4"))
    if level == "meta":
        return lambda key: not key.endswith(MEDIA)
    raise ValueError(f"unknown pull level {level!r}")


def is_marker(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name in MARKER_NAMES or key in MARKER_KEYS or name.endswith(MARKER_SUFFIXES)


def default_cache(url: str) -> Path:
    """``$MMVIAD_CACHE/<name>-<hash>`` (default ``~/.cache/mmviad``): one working copy per store URL."""
    base = Path(os.environ.get("MMVIAD_CACHE") or Path.home() / ".cache" / "mmviad")
    name = url.rstrip("/").rsplit("/", 1)[-1] or "dataset"
    return base / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _stat(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Mirror:
    """The working copy ``cache`` of the dataset in ``store``."""

    store: Store
    cache: Path
    level: str = "all"   # what :meth:`refresh` pulls (see :func:`wants`)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = Path(self.cache)
        m = self.cache / MANIFEST
        if m.exists():
            data = json.loads(m.read_text())
            if data.get("url") != self.store.url:
                raise ValueError(f"{self.cache}: this cache belongs to {data.get('url')}, not {self.store.url}; "
                                 "use another --cache folder")
            self.files = data.get("files", {})

    def _save(self) -> None:
        atomic_write_text(self.cache / MANIFEST, json.dumps({"url": self.store.url, "files": self.files},
                                                            sort_keys=True, indent=0) + "\n")

    def _local(self, key: str) -> Path:
        return self.cache / key

    def pull(self, keep: Callable[[str], bool], progress: bool = True) -> int:
        """Download the files ``keep`` selects that are new or changed in the store; drop local copies of
        files the store no longer has (unless changed here since). Returns the number downloaded."""
        self.cache.mkdir(parents=True, exist_ok=True)
        remote = self.store.listing()
        todo = []
        for key, sig in sorted(remote.items()):
            if not keep(key) or key.startswith(LOCAL_ONLY) or key == MANIFEST:
                continue
            p, e = self._local(key), self.files.get(key)
            if e and e["remote"] == sig and p.exists() and _stat(p) == e["local"]:
                continue
            todo.append((key, sig))
        for key, e in list(self.files.items()):
            p = self._local(key)
            if key not in remote and keep(key):
                if p.exists() and _stat(p) == e["local"]:
                    p.unlink()   # deleted in the store since the last sync
                del self.files[key]
        for key, sig in tqdm(todo, desc="pull", unit="file", disable=not progress or not todo):
            p = self._local(key)
            self.store.get_file(key, p)
            self.files[key] = {"remote": sig, "local": _stat(p)}
        self._save()
        return len(todo)

    def refresh(self, progress: bool = True) -> int:
        """Pull again at this mirror's level: after render tasks published into the store."""
        return self.pull(wants(self.level), progress)

    def changes(self) -> tuple[list[str], list[str]]:
        """(keys created or changed here since the last sync, keys deleted here since then)."""
        changed = []
        for p in sorted(self.cache.rglob("*")):
            if not p.is_file() or p.name == MANIFEST or p.name.endswith(".tmp"):
                continue
            key = p.relative_to(self.cache).as_posix()
            if key.startswith(LOCAL_ONLY):
                continue
            e = self.files.get(key)
            if e is None or _stat(p) != e["local"]:
                changed.append(key)
        deleted = [k for k in sorted(self.files) if not self._local(k).exists()]
        return changed, deleted

    def push(self, progress: bool = True) -> int:
        """Upload what changed here (markers last) and delete from the store what was deleted here.
        Returns the number of files uploaded."""
        changed, deleted = self.changes()
        order = sorted(changed, key=lambda k: (is_marker(k), k))
        for key in deleted:
            self.store.remove(key)
            del self.files[key]
        for i, key in enumerate(tqdm(order, desc="push", unit="file", disable=not progress or not order)):
            p = self._local(key)
            self.store.put_file(p, key)
            self.files[key] = {"remote": None, "local": _stat(p)}
            if i % 200 == 199:
                self._save()
        if order:   # the store's signatures of what was just written, for the next pull
            remote = self.store.listing()
            for key in order:
                self.files[key]["remote"] = remote.get(key)
        self._save()
        return len(order)


def command_name(args: Any) -> str:
    """``review export`` for nested commands, else the command."""
    sub = getattr(args, "review_command", None)
    return f"{args.command} {sub}" if sub else args.command


@contextmanager
def dataset_folder(args: Any, progress: bool = True) -> Iterator[Optional[Mirror]]:
    """Run a command on a local folder: with a URL ``--out``, pull into the cache (``--cache`` or
    :func:`default_cache`), point ``args.out`` at it and push after a successful run."""
    out = getattr(args, "out", None)
    if out is None or not is_url(out):
        yield None
        return
    store = Store(out)
    mirror = Mirror(store, Path(getattr(args, "cache", None) or default_cache(store.url)),
                    PULL.get(command_name(args), "all"))
    mirror.refresh(progress)
    args.out, args.mirror = mirror.cache, mirror
    yield mirror
    mirror.push(progress)
