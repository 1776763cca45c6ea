"""Blob storage behind one small interface; the local-directory backend.

Keys are built by the server from its own ids (never from client input) and are checked
against path traversal anyway. A write is durable before it returns: temp file, fsync,
rename, fsync of the directory.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*$")


class BlobPurged(LookupError):
    """The blob's key was cleared when its exam's retention period ended (evidence.retention):
    the bytes are gone on purpose, which callers answer with 410, not a server error."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, source: Path) -> None: ...
    def get(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path: ...
    def temp_dir(self) -> Path: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    def local_path(self, key: str) -> Path:
        if key == "":
            raise BlobPurged()
        if not _KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def temp_dir(self) -> Path:
        return self.root / ".tmp"

    def put(self, key: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.temp_dir())
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
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

    def open(self, key: str) -> BinaryIO:
        return self.local_path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def size(self, key: str) -> int:
        return self.local_path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.local_path(key).unlink(missing_ok=True)
