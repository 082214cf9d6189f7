"""Is the H.264 encoder deterministic in this process? A minimal reproduction (issue 16).

Encodes the same RGB frames with libx264 (PyAV, single-threaded, CRF) in fresh processes whose
heap starts filled with different byte patterns (glibc ``MALLOC_PERTURB_``), once with x264's CPU
features auto-detected and once with the pinned set the clips stage uses
(:data:`pipeline.clips.X264_PARAMS`). Identical frames must give identical bytes; any spread
means the encoder read memory it never wrote. Prints the number of distinct outputs per setting.

    .venv/bin/python bench/x264_determinism.py [--frames DIR] [--clips 6]

``--frames`` is a folder of ``NNNN.png`` (e.g. ``<out>/renders/<job_id>/unmarked`` of a built
dataset); without it a moving synthetic scene at 64x36 is used.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

PATTERNS = (0, 85, 170, 255)   # 0 = glibc's default (no perturbation)


def frames(folder: str | None, n: int):
    import cv2
    import numpy as np

    if folder:
        files = sorted(Path(folder).glob("*.png"))[:n]
        return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    rng = np.random.default_rng(0)   # a window sliding over smoothed noise
    big = cv2.GaussianBlur(rng.integers(0, 256, (36 + 2 * n, 64 + 3 * n, 3), dtype=np.uint8), (5, 5), 0)
    return [np.ascontiguousarray(big[2 * i:2 * i + 36, 3 * i:3 * i + 64]) for i in range(n)]


def encode(rgb_frames, params: str | None) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(10, 1))
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "20", "preset": "veryfast", "threads": "1", **({"x264-params": params} if params else {})}
        s.height, s.width = rgb_frames[0].shape[:2]
        for f in rgb_frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def child(args: argparse.Namespace) -> None:
    from pipeline.clips import X264_PARAMS

    allf = frames(args.frames, 20 * args.clips)
    out = {}
    for name, params in (("auto-detected", None), (f"pinned ({X264_PARAMS})", X264_PARAMS)):
        h = hashlib.sha256()
        for k in range(0, len(allf), 20):
            h.update(encode(allf[k:k + 20], params))
        out[name] = h.hexdigest()[:16]
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default=None, help="folder of NNNN.png frames (default: a synthetic scene)")
    ap.add_argument("--clips", type=int, default=3, help="20-frame clips to encode (default: %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    results: dict[str, set[str]] = {}
    for p in PATTERNS:
        env = {**os.environ, "MALLOC_PERTURB_": str(p)}
        cmd = [sys.executable, __file__, "--child", "--clips", str(args.clips)] + (["--frames", args.frames] if args.frames else [])
        r = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
        for name, h in r.items():
            results.setdefault(name, set()).add(h)
        print(f"MALLOC_PERTURB_={p}: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    for name, hs in results.items():
        verdict = "deterministic" if len(hs) == 1 else "NOT deterministic"
        print(f"{name}: {len(hs)} distinct output(s) over {len(PATTERNS)} heap patterns → {verdict}")


if __name__ == "__main__":
    main()
