"""Blob storage behind one small interface; the local-directory backend.

Keys are built by the server from its own ids (never from client input) and are checked
against path traversal anyway. A write is durable before it returns: temp file, fsync,
rename, fsync of the directory. The S3 backend lives in ``storage_s3`` (docs/storage.md);
``blob_store(settings)`` picks the one the settings name.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from invigil.core.config import Settings

_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*$")
_COPY_BUFFER = 1 << 20


class BlobPurged(LookupError):
    """The blob's key was cleared when its exam's retention period ended (evidence.retention):
    the bytes are gone on purpose, which callers answer with 410, not a server error."""


def check_key(key: str) -> str:
    """The one rule for keys on every backend: "" is a purged blob, the rest plain segments."""
    if key == "":
        raise BlobPurged()
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Missing blobs raise FileNotFoundError, purged ones (key "") BlobPurged, on every backend."""

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, source: Path) -> None:
        """Store a file's bytes under key; the source file is consumed (moved or deleted)."""
        ...

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store everything a stream yields, without holding it all in memory."""
        ...

    def get(self, key: str) -> bytes: ...
    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        """A stream of the blob's bytes from start (length of them, or to the end)."""
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to length bytes from start; fewer at the end of the blob, b"" past it."""
        ...

    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing one is not an error."""
        ...

    def presigned_url(self, key: str, expires: int) -> str | None:
        """A URL that fetches the blob for `expires` seconds without credentials, where the
        backend can make one (S3); None where clients must go through the server (local)."""
        ...

    # Local paths: only the local backend has them; callers move off them (issue 14).
    def local_path(self, key: str) -> Path: ...
    def temp_dir(self) -> Path: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_range(start: int, length: int | None) -> None:
    if start < 0 or (length is not None and length < 0):
        raise ValueError(f"invalid range start={start} length={length}")


class LimitedReader(io.RawIOBase):
    """At most `remaining` bytes of an underlying stream, closing it when closed."""

    def __init__(self, raw: BinaryIO, remaining: int | None) -> None:
        self._raw = raw
        self._remaining = remaining

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self._remaining is not None:
            want = min(want, self._remaining)
        if want == 0:
            return 0
        data = self._raw.read(want)
        n = len(data)
        buffer[:n] = data
        if self._remaining is not None:
            self._remaining -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    def temp_dir(self) -> Path:
        return self.root / ".tmp"

    def put(self, key: str, data: bytes) -> None:
        self.put_stream(key, io.BytesIO(data))

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        check_key(key)
        fd, tmp = tempfile.mkstemp(dir=self.temp_dir())
        try:
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(stream, f, _COPY_BUFFER)
                f.flush()
                os.fsync(f.fileno())
            self.put_file(key, Path(tmp))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, key: str, source: Path) -> None:
        """Move an already fsynced file (on the same filesystem) into place."""
        target = self.local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def get(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        _check_range(start, length)
        f = self.local_path(key).open("rb")
        if start:
            f.seek(start)
        if length is None:
            return f
        return io.BufferedReader(LimitedReader(f, length))

    def read_range(self, key: str, start: int, length: int) -> bytes:
        _check_range(start, length)
        with self.local_path(key).open("rb") as f:
            f.seek(start)
            return f.read(length)

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def size(self, key: str) -> int:
        return self.local_path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.local_path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires: int) -> str | None:
        check_key(key)
        return None


def blob_store(settings: Settings) -> BlobStore:
    """The store the settings name (INVIGIL_BLOB_BACKEND): local disk, or an S3 bucket."""
    if settings.blob_backend == "s3":
        from invigil.core.storage_s3 import S3BlobStore  # boto3 only where S3 is used

        return S3BlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)
