"""GPU process environment for Blender: the one visible GPU and persistent kernel caches.

Ray sets ``CUDA_VISIBLE_DEVICES`` for a task that asked for one GPU; it is passed on explicitly to
the Blender process before it starts, so Cycles sees exactly that GPU. ``render.kernel_cache_dir``
points the compiled-kernel caches at a persistent (ideally node-local) volume so each fresh
Blender process does not recompile: ``CUDA_CACHE_PATH`` (the driver's PTX JIT cache),
``OPTIX_CACHE_PATH`` (OptiX's pipeline cache) and ``XDG_CACHE_HOME`` (Blender's user cache
folder, where Cycles keeps its own kernel cache on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

EXIT_CONFIG = 4  # render_job.py's exit code for setup errors a retry cannot fix (e.g. no GPU)

#: Test-only fake for machines without a GPU (tests/test_ray_cluster.py): with this variable set to
#: exactly ``1`` in Blender's environment, a ``device: gpu`` job renders on the CPU instead of failing,
#: and its ``meta.json`` says so (``render.backend`` = :data:`TEST_GPU_ON_CPU_BACKEND`; the dataset
#: card warns). Never set it in production: it turns the "no GPU" error into a slow CPU render.
TEST_GPU_ON_CPU_ENV = "MMVIAD_TEST_GPU_ON_CPU"
TEST_GPU_ON_CPU_BACKEND = "cpu (test switch)"


def kernel_cache_env(cache_dir: Optional[Path]) -> dict[str, str]:
    """Environment variables that move the GPU kernel caches under ``cache_dir`` (created)."""
    if not cache_dir:
        return {}
    root = Path(cache_dir).expanduser().resolve()
    env = {"CUDA_CACHE_PATH": root / "cuda", "OPTIX_CACHE_PATH": root / "optix", "XDG_CACHE_HOME": root / "xdg"}
    for p in env.values():
        p.mkdir(parents=True, exist_ok=True)
    return {"CUDA_CACHE_MAXSIZE": str(4 * 1024**3), **{k: str(v) for k, v in env.items()}}


def gpu_env(device: str, cache_dir: Optional[Path], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Extra environment for a Blender process rendering on ``device`` (empty for the CPU).

    ``CUDA_VISIBLE_DEVICES`` is copied from the task's environment as Ray set it; when Ray set
    nothing (e.g. a task run outside Ray), it stays unset and Blender sees every GPU."""
    if device != "gpu":
        return {}
    environ = os.environ if environ is None else environ
    env = kernel_cache_env(cache_dir)
    if "CUDA_VISIBLE_DEVICES" in environ:
        env["CUDA_VISIBLE_DEVICES"] = environ["CUDA_VISIBLE_DEVICES"]
    return env


def fatal_reason(log_path: Path) -> Optional[str]:
    """The last ``[render_job] FATAL:`` message in a Blender log, if any."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "[render_job] FATAL:" in line:
            return line.split("[render_job] FATAL:", 1)[1].strip()
    return None
