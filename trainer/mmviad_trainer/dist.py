"""Multi-process helpers: which rank am I, wait for the others, share Python objects.

Launched with ``accelerate launch`` or ``torchrun`` every rank runs the same ``train`` command.
Shared outputs (traces, ``final/``, ``run.json``, evaluation files) are written by the main process
only; work that splits by clip (trace synthesis, evaluation) is sharded ``records[rank::world]`` and
gathered with :func:`gather`. A single process (no ``WORLD_SIZE`` > 1) needs no process group and
every helper degrades to a no-op.
"""

from __future__ import annotations

import os
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Number of processes of this launch (1 when not launched by accelerate/torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the process that writes shared outputs."""
    return rank() == 0


def init() -> None:
    """Start the process group through accelerate (gloo on CPU, NCCL on GPU) when launched with
    several processes; the trainers reuse the same shared state."""
    if world_size() <= 1:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def _group_ready() -> bool:
    if world_size() <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        init()
    return dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def gather(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` in one process)."""
    if not _group_ready():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: Sequence[T]) -> list[tuple[int, T]]:
    """This rank's share of ``items`` as ``(index, item)`` pairs (round robin)."""
    return [(i, x) for i, x in enumerate(items) if i % world_size() == rank()]


def gather_shards(n: int, local: list[tuple[int, T]]) -> list[T]:
    """Reassemble ``n`` items from every rank's ``(index, value)`` pairs, in index order."""
    merged: dict[int, T] = {}
    for part in gather(local):
        merged.update(part)
    missing = [i for i in range(n) if i not in merged]
    if missing:
        raise RuntimeError(f"results for items {missing[:5]} came back from no rank")
    return [merged[i] for i in range(n)]
