"""Per-object planning results: computed in a process pool, kept on disk so an interrupted plan resumes.

Planning one object (cutting its defect, ray casting its orbits) is independent of every other
object, so :func:`run_objects` spreads the objects that are not cached yet over worker processes
and writes each result to ``<cache>/<key>.json`` (atomically) as soon as it is done. The key is a
sha256 of everything that determines the result (see ``pipeline.plan.object_key``), so a rerun —
after Ctrl-C, a killed process, or a config change that does not touch objects — recomputes only
what is missing. Results are JSON text everywhere (also when computed fresh), so a resumed plan is
byte-identical to an uninterrupted one, whatever the number of processes.
"""

from __future__ import annotations

import json
import os
import signal
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .io import atomic_write_text
from .layout import PLAN_CACHE

CACHE_DIR = PLAN_CACHE   # the folder under <out> (pipeline.layout.Layout.plan_cache)
# Results of repeated planning in one process (tests, `build` after `plan`): key → JSON text.
_MEMO: "OrderedDict[str, str]" = OrderedDict()
_MEMO_SIZE = 8192


class ObjectCache:
    """One JSON file per object result under ``root`` (``None``: memory only)."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The stored text for ``key``, or None when there is none (or it does not parse: a file
        damaged outside our atomic writes is recomputed rather than trusted)."""
        text = _MEMO.get(key)
        if text is None and self.root is not None:
            try:
                text = self._path(key).read_text(encoding="utf-8")
                if json.loads(text).get("key") != key:
                    text = None
            except (OSError, ValueError, AttributeError):
                text = None
        if text is not None:
            _remember(key, text)
        return text

    def put(self, key: str, text: str) -> None:
        _remember(key, text)
        if self.root is not None:
            atomic_write_text(self._path(key), text)

    def prune(self, keep: set[str]) -> int:
        """Remove entries not in ``keep`` (results of an older config or code) and temp files left
        by a killed writer; return how many files were removed."""
        if self.root is None or not self.root.is_dir():
            return 0
        removed = 0
        for p in self.root.iterdir():
            stale = p.name.endswith(".tmp") or (p.suffix == ".json" and p.stem not in keep)
            if stale and p.is_file():
                p.unlink(missing_ok=True)
                removed += 1
        return removed


def _remember(key: str, text: str) -> None:
    _MEMO[key] = text
    _MEMO.move_to_end(key)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)


def default_workers() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def _one_blas_thread() -> None:
    """Limit numpy's BLAS to one thread in this process (the planning processes already fill the
    cores)."""
    import numpy  # noqa: F401  (load BLAS first: the limit applies to the libraries loaded now)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _worker_cores(workers: int) -> list[list[int]]:
    """Disjoint sets of this process's cores, one per worker, when every worker gets one (else none)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return []
    return [cores[i::workers] for i in range(workers)] if 2 <= workers <= len(cores) else []


def _start_worker(slots: Any) -> None:
    """A planning worker: on its own cores, with one BLAS thread. Embree (TBB) and manifold size their
    thread pools by the cores a process may use, and threads that spin waiting for a core another
    worker holds cost about 1.7× the CPU time for the same result (docs/performance.md, "Planning")."""
    # Ctrl-C reaches the whole process group: the parent stops the pool; the workers must not each
    # print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One core set per first worker (written before the pool starts, so none is missing); a worker
    # that replaces a dead one finds the queue empty and runs on any core.
    if slots is not None and not slots.empty():
        try:
            os.sched_setaffinity(0, slots.get())
        except (OSError, AttributeError):
            pass
    _one_blas_thread()


def _run_task(fn: Callable[[Any, Any], dict[str, Any]], cfg: Any, root: Path | None,
              items: Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Compute and store each (key, unit) of one task; return the texts in order."""
    cache = ObjectCache(root)
    out = []
    for key, unit in items:
        text = _encode(key, fn(cfg, unit))
        cache.put(key, text)
        out.append((key, text))
    return out


def _encode(key: str, result: dict[str, Any]) -> str:
    from .io import dumps

    return dumps({"key": key, **result})


def _tasks(items: list[tuple[str, Any]], group: Callable[[Any], Any], size: int) -> list[list[tuple[str, Any]]]:
    """Consecutive items of one group (e.g. one category, whose mesh a worker builds once), at most
    ``size`` per task."""
    tasks: list[list[tuple[str, Any]]] = []
    for key, unit in items:
        if tasks and len(tasks[-1]) < size and group(tasks[-1][-1][1]) == group(unit):
            tasks[-1].append((key, unit))
        else:
            tasks.append([(key, unit)])
    return tasks


def run_objects(fn: Callable[[Any, Any], dict[str, Any]], cfg: Any, units: Sequence[Any], keys: Sequence[str],
                cache: ObjectCache, group: Callable[[Any], Any], workers: int | None = None,
                progress: bool = True, desc: str = "plan") -> list[dict[str, Any]]:
    """``fn(cfg, unit)`` for every unit, in order, each result read from ``cache`` when present and
    otherwise computed (in ``workers`` processes; default: one per core, when each gets at least
    four objects) and stored there at once.

    ``fn`` must be a module-level function (it is sent to spawned workers) and return JSON-able
    data. On any exception, KeyboardInterrupt included, the pool is stopped and the exception
    re-raised; results finished so far stay in the cache."""
    texts: dict[str, str] = {}
    todo: list[tuple[str, Any]] = []
    for key, unit in zip(keys, units):
        text = cache.get(key)
        if text is None:
            todo.append((key, unit))
        else:
            texts[key] = text
    n = len(units)
    bar = tqdm(total=n, initial=n - len(todo), desc=desc, unit="object", disable=not progress or n < 8)
    try:
        # A spawned worker costs ~2 s to start: by default only when each gets 4+ objects.
        workers = max(1, min(workers, len(todo)) if workers else min(default_workers(), len(todo) // 4))
        if workers == 1:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):  # as in the workers: a second BLAS thread costs CPU, saves no time
                for item in todo:
                    for key, text in _run_task(fn, cfg, cache.root, [item]):
                        texts[key] = text
                    bar.update(1)
        else:
            _run_pool(fn, cfg, cache, todo, group, workers, texts, bar)
    finally:
        bar.close()
    for key, text in texts.items():
        _remember(key, text)
    return [json.loads(texts[k]) for k in keys]


def _run_pool(fn: Callable[[Any, Any], dict[str, Any]], cfg: Any, cache: ObjectCache, todo: list[tuple[str, Any]],
              group: Callable[[Any], Any], workers: int, texts: dict[str, str], bar: tqdm) -> None:
    """Spawned (not forked) workers: the parent may hold Embree/TBB or manifold threads, which a
    fork would copy in an undefined state."""
    import multiprocessing
    from functools import partial

    # Small tasks balance the load; whole groups (≤ size) save rebuilding a category's mesh.
    size = max(1, -(-len(todo) // (workers * 4)))
    tasks = _tasks(todo, group, size)
    ctx = multiprocessing.get_context("spawn")
    slots = None
    if cores := _worker_cores(workers):
        slots = ctx.SimpleQueue()  # written synchronously: no feeder thread to race the workers
        for c in cores:
            slots.put(c)
    pool = ctx.Pool(workers, initializer=_start_worker, initargs=(slots,))
    try:
        for done in pool.imap_unordered(partial(_run_task, fn, cfg, cache.root), tasks):
            for key, text in done:
                texts[key] = text
            bar.update(len(done))
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()
