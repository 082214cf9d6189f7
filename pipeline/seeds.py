"""Per-purpose seeds derived by hashing (docs/architecture.md), in the spirit of Infinigen's ``int_hash``.

Python's ``hash()`` is salted per process and is never used for seeds.
"""

from __future__ import annotations

import hashlib

import numpy as np

PURPOSES = ("object", "defect", "pose", "camera", "environment", "material", "cycles", "split", "qa")


def derive_seed(global_seed: int, key: str, purpose: str, bits: int = 63) -> int:
    """``int(sha256(f"{global_seed}/{key}/{purpose}"))`` truncated to ``bits`` bits."""
    digest = hashlib.sha256(f"{global_seed}/{key}/{purpose}".encode("utf-8")).digest()
    return int.from_bytes(digest, "big") >> (256 - bits)


def rng_for(global_seed: int, key: str, purpose: str) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` for one (key, purpose) pair."""
    return np.random.default_rng(derive_seed(global_seed, key, purpose))


def cycles_seed(global_seed: int, job: str) -> int:
    """Cycles takes a signed 32-bit seed; keep it in ``[0, 2**31)``."""
    return derive_seed(global_seed, job, "cycles", bits=31)
