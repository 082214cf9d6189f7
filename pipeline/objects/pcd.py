"""Readers for Anomaly-ShapeNet point files without open3d: PCD (ascii or binary) and GT txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("I", 1): "<i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
          ("U", 1): "<u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8"}


def read_pcd(path: str | Path) -> np.ndarray:
    """The ``x y z`` columns of a PCD file as an (N, 3) float64 array (``DATA ascii`` or ``binary``)."""
    path = Path(path)
    raw = path.read_bytes()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: DATA: header ends before a DATA line")
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
        if key.upper() == "DATA":
            break
    fields = header.get("FIELDS")
    if not fields:
        raise ValueError(f"{path}: FIELDS: missing")
    for axis in "xyz":
        if axis not in fields:
            raise ValueError(f"{path}: FIELDS: no '{axis}' field (have: {' '.join(fields)})")
    n = len(fields)
    sizes = header.get("SIZE", ["4"] * n)
    types = header.get("TYPE", ["F"] * n)
    counts = header.get("COUNT", ["1"] * n)
    if not (len(sizes) == len(types) == len(counts) == n):
        raise ValueError(f"{path}: SIZE/TYPE/COUNT: lengths do not match FIELDS ({n})")
    try:
        points = int(header.get("POINTS", [None])[0] or int(header["WIDTH"][0]) * int(header["HEIGHT"][0]))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path}: POINTS: missing or not a number") from None
    mode = header["DATA"][0].lower() if header["DATA"] else ""
    cols = []
    for name, s, t, c in zip(fields, sizes, types, counts):
        dt = _TYPES.get((t.upper(), int(s)))
        if dt is None:
            raise ValueError(f"{path}: TYPE/SIZE: unsupported {t}{s} for field {name!r}")
        cols.append((name if name != "_" else f"_pad{len(cols)}", dt, int(c)))
    if mode == "ascii":
        table = np.loadtxt(raw[pos:].decode("ascii").splitlines(), ndmin=2)
        offsets = np.cumsum([0] + [c for _, _, c in cols])
        idx = [int(offsets[fields.index(a)]) for a in "xyz"]
        xyz = table[:, idx]
    elif mode == "binary":
        dtype = np.dtype([(nm, dt, (c,)) if c > 1 else (nm, dt) for nm, dt, c in cols])
        need = dtype.itemsize * points
        if len(raw) - pos < need:
            raise ValueError(f"{path}: DATA: {len(raw) - pos} bytes of binary data, {points} points need {need}")
        rec = np.frombuffer(raw, dtype=dtype, count=points, offset=pos)
        xyz = np.stack([rec[a].astype(np.float64) for a in "xyz"], axis=1)
    elif mode == "binary_compressed":
        raise ValueError(f"{path}: DATA: binary_compressed PCD is not supported (save it as binary or ascii)")
    else:
        raise ValueError(f"{path}: DATA: unknown mode {mode!r} (expected ascii or binary)")
    if len(xyz) != points:
        raise ValueError(f"{path}: POINTS: header says {points}, file has {len(xyz)}")
    return np.asarray(xyz, dtype=np.float64)


def read_gt(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An Anomaly-ShapeNet GT file: comma-separated ``x,y,z,label`` rows, no header → (points, labels)."""
    path = Path(path)
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: GT file not found") from None
    except ValueError as e:
        raise ValueError(f"{path}: rows: expected comma-separated numbers x,y,z,label ({e})") from None
    if table.size == 0:
        raise ValueError(f"{path}: rows: the GT file is empty")
    if table.shape[1] != 4:
        raise ValueError(f"{path}: columns: expected 4 (x,y,z,label), got {table.shape[1]}")
    labels = table[:, 3]
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: label: expected 0 or 1 in the 4th column")
    return table[:, :3].astype(np.float64), labels.astype(bool)
