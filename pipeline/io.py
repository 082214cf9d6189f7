"""Atomic file writes and JSON/JSONL helpers. Every output goes to a temp name first, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataError(ValueError):
    """A file whose content cannot be used; the message is one line naming the file (and line)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then ``os.replace``.

    An ``OSError`` (read-only folder, full disk) is re-raised naming ``path`` itself rather than the
    temp name, with the same errno (so ``PermissionError`` etc. keep their type)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, f"cannot write ({e.strerror})", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, f"cannot write ({e.strerror})", str(path)) from None
        raise


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` through a temp file next to ``dst`` (``.<name>.<random>.tmp``),
    fsync, then ``os.replace``: readers see the old file or the whole copy, never a part."""
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with open(src, "rb") as fi, os.fdopen(fd, "wb") as fo:
            shutil.copyfileobj(fi, fo, 1 << 20)
            fo.flush()
            os.fsync(fo.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) so equal content gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, indent=indent, ensure_ascii=True) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file; bad bytes or a folder → :class:`DataError` naming the file and offset."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` with one-line errors naming ``where`` (also for nesting too deep to parse).
    NaN and Infinity parse to floats, so that a validator can name the field that holds them."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise DataError(f"{where}: not valid JSON (nested too deeply to read)") from None


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; any problem → :class:`DataError` naming the file."""
    return parse_json(read_text(path), str(path))


def iter_jsonl(path: str | os.PathLike) -> Iterator[Any]:
    """Yield rows; a malformed line raises :class:`DataError` naming the file and line number."""
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if line.strip():
            yield parse_json(line, f"{path}:{lineno}")


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    return list(iter_jsonl(path))
