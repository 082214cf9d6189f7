"""Where a dataset is kept: a local folder, or any URL that fsspec understands (``s3://``, ``gs://``,
``file://``, ...).

A :class:`Store` names files by *key*: the path relative to the dataset root, with ``/`` separators
(the same relative paths :class:`pipeline.layout.Layout` builds under a local root). It offers the
few operations the pipeline needs, each safe to interrupt:

- :meth:`Store.put_file` / :meth:`Store.put_bytes` make a file appear whole or not at all. On an
  object store that is what a PUT (also a multipart upload) already guarantees: the object is
  visible only once the upload completes. On a filesystem the data goes to a temp name first and is
  renamed into place.
- A job counts as finished only when its ``DONE`` key exists, and publishers write it last, so a task
  killed in the middle of an upload leaves a job that is simply not finished yet.

Credentials and endpoints come from the usual places for each backend (for S3: ``AWS_*``
environment variables, ``~/.aws``, instance roles; ``AWS_ENDPOINT_URL`` points it at an
S3-compatible server such as MinIO or Ceph). ``s3://`` needs the ``s3fs`` package
(``pip install -e '.[s3]'``), ``gs://`` needs ``gcsfs``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Union
from urllib.parse import urlparse

#: URL schemes that name a local folder (handled without fsspec's remote machinery)
LOCAL_SCHEMES = ("", "file", "local")


def is_url(out: Union[str, os.PathLike]) -> bool:
    """Whether ``out`` names a remote store (``s3://bucket/x``) rather than a local folder (a plain
    path or a ``file://`` URL)."""
    text = os.fspath(out)
    if "://" not in text:
        return False
    return urlparse(text).scheme.lower() not in LOCAL_SCHEMES


def local_path(out: Union[str, os.PathLike]) -> Path:
    """A local folder named by a path or a ``file://`` URL."""
    text = os.fspath(out)
    if is_url(text):
        raise ValueError(f"{text}: not a local folder")
    if "://" in text:
        p = urlparse(text)
        return Path(p.netloc + p.path) if p.netloc not in ("", "localhost") else Path(p.path)
    return Path(text)


def check_key(key: str) -> str:
    """A key must stay inside the dataset: relative, ``/``-separated, no ``..`` or empty part."""
    p = PurePosixPath(key)
    if not key or p.is_absolute() or "\\" in key or any(part in ("..", ".", "") for part in key.split("/")):
        raise ValueError(f"{key!r} is not a key inside the dataset (a relative path with / separators)")
    return key


@dataclass(frozen=True)
class Store:
    """The dataset at ``url`` (a local path, ``file://`` or an fsspec URL such as ``s3://bucket/x``)."""

    url: str

    def __init__(self, out: Union[str, os.PathLike, "Store"]) -> None:
        text = out.url if isinstance(out, Store) else os.fspath(out)
        if is_url(text):
            text = text.rstrip("/")
            if not urlparse(text).netloc:
                raise ValueError(f"{text}: a store URL needs a bucket or host (e.g. s3://bucket/dataset)")
        else:
            text = str(local_path(text).resolve())
        object.__setattr__(self, "url", text)

    # ---- the backend ---------------------------------------------------------------------------
    @property
    def remote(self) -> bool:
        """True for an object store (a URL), False for a local folder."""
        return is_url(self.url)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (created once per process and protocol by fsspec's own cache). Listings
        are never cached: other processes (render tasks on other nodes) change the store."""
        import fsspec

        if not self.remote:
            return fsspec.filesystem("file")
        protocol = urlparse(self.url).scheme
        try:
            return fsspec.filesystem(protocol, use_listings_cache=False)
        except ImportError as e:
            raise RuntimeError(f"{self.url}: the {protocol}:// backend is not installed ({e}); for s3:// "
                               "run pip install -e '.[s3]'") from None

    def path(self, key: str) -> str:
        """The backend path of ``key`` (``bucket/x/key`` for S3, an absolute path locally)."""
        check_key(key)
        if not self.remote:
            return str(Path(self.url) / key)
        p = urlparse(self.url)
        return f"{p.netloc}{p.path}/{key}"

    def _key_of(self, path: str) -> str:
        root = self.path("x")[:-1]
        return path[len(root):] if path.startswith(root) else path

    # ---- writing -------------------------------------------------------------------------------
    def put_file(self, local: Union[str, os.PathLike], key: str) -> None:
        """Copy the local file to ``key``; the key holds the old content or the whole new file,
        never a part."""
        dest = self.path(key)
        if self.remote:
            self.fs.put_file(os.fspath(local), dest)
        else:
            from .io import atomic_copy

            atomic_copy(local, dest)

    def put_bytes(self, data: bytes, key: str) -> None:
        """Write ``data`` to ``key`` whole or not at all."""
        if self.remote:
            self.fs.pipe_file(self.path(key), data)
        else:
            from .io import atomic_write_bytes

            atomic_write_bytes(self.path(key), data)

    def remove(self, key: str) -> None:
        """Delete ``key`` and, if it is a folder (a key prefix), everything under it. Missing is fine."""
        p = self.path(key)
        fs = self.fs
        if self.remote:
            found = fs.find(p)   # objects under the prefix, or the object itself
            if found:
                fs.rm(found)
            return
        if os.path.isdir(p):
            import shutil

            shutil.rmtree(p)
        else:
            Path(p).unlink(missing_ok=True)

    # ---- reading -------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url}/{key}: not found") from None

    def get_file(self, key: str, local: Union[str, os.PathLike]) -> None:
        """Download ``key`` to the local path atomically (temp name, then rename)."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.fs.get_file(self.path(key), str(tmp))
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)

    def listing(self, prefix: str = "") -> dict[str, str]:
        """Every file under ``prefix`` (all of them by default) → a signature that changes when the
        file does (size and ETag on object stores, size and modification time locally)."""
        root = self.path(prefix) if prefix else self.path("x")[:-2]
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            key = self._key_of(path)
            if any(part.endswith(".tmp") for part in key.split("/")[-1:]):
                continue   # a local temp file of a write in progress
            sig = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
            out[key] = f"{info.get('size')}:{sig}"
        return out
