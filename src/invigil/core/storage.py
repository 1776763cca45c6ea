"""Blob storage behind one small interface; the local-directory backend.

Keys are built by the server from its own ids (never from client input) and are checked
against path traversal anyway. A write is durable before it returns: the file is renamed into
place, then its filesystem is synced (syncfs: one call for a whole batch of files; an fsync of
each file and folder where there is no syncfs). The S3 backend lives in ``storage_s3`` (docs/storage.md);
``blob_store(settings)`` picks the one the settings name.
"""

from __future__ import annotations

import ctypes
import errno
import io
import itertools
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

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


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob as a listing names it."""

    key: str
    size: int
    modified: float  # seconds since the epoch


def check_prefix(prefix: str) -> str:
    """A folder of keys ("recordings/<attempt id>"): the same rule as a key."""
    if prefix == "":
        raise ValueError("an empty prefix would name every blob")
    return check_key(prefix)


class BlobStore(Protocol):
    """Missing blobs raise FileNotFoundError, purged ones (key "") BlobPurged, on every backend.

    No method hands out a local path: callers write their working files in their own scratch
    folder (Settings.scratch_dir) and give them to put_file/put_files, and read with open and
    read_range, so the same code runs on local disk and on S3.
    """

    # True where put_file moves the source file into place (local disk) and makes it durable
    # there; False where it is uploaded (S3). Either way the caller need not fsync the file.
    renames_sources: bool

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, source: Path) -> None:
        """Store a file's bytes under key; the source file is consumed (moved or deleted)."""
        ...

    def put_files(self, items: Sequence[tuple[str, Path]]) -> None:
        """Store several files at once, each as put_file, all durable when this returns
        (local: one syncfs for them all; S3: the uploads run side by side). One failure
        raises; the others may be stored or not (content-addressed keys make a retry safe)."""
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

    def download(self, key: str, target: Path) -> None:
        """Copy the blob into a local file (PyAV and the audio analysis read files)."""
        ...

    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing one is not an error."""
        ...

    def list_prefix(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob under the folder `prefix` (its keys start with prefix + "/")."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under the folder `prefix`; returns how many there were."""
        ...

    def presigned_url(self, key: str, expires: int) -> str | None:
        """A URL that fetches the blob for `expires` seconds without credentials, where the
        backend can make one (S3); None where clients must go through the server (local)."""
        ...


def scratch_file(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new working file in a scratch folder (made when missing): its fd and path.

    Named by process and a counter rather than by ``tempfile.mkstemp``'s random names: every
    upload makes one, and mkstemp's name drawing was a few per cent of a chunk's CPU. O_EXCL
    still refuses a name that exists (a previous process's leftover with the same pid)."""
    while True:
        path = folder / f"{prefix}{os.getpid()}-{next(_scratch_names)}"
        try:
            return os.open(path, _SCRATCH_FLAGS, 0o600), path
        except FileExistsError:
            continue
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)


_scratch_names = itertools.count()
_SCRATCH_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@contextmanager
def seekable_source(
    blobs: BlobStore, key: str, scratch: Path, prefix: str
) -> Iterator[Path | BinaryIO]:
    """The blob as a decoder (PyAV) reads it: the stored file itself, opened read-only, where
    the store hands out a seekable one (local disk: no copy), else a copy in a scratch file
    (S3: one download, removed afterwards)."""
    with blobs.open(key) as stream:
        if stream.seekable():
            yield stream
            return
    fd, copy = scratch_file(scratch, prefix)
    os.close(fd)
    try:
        blobs.download(key, copy)
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def download_to(blobs: BlobStore, key: str, target: Path) -> None:
    """The generic download: stream the blob into target."""
    with blobs.open(key) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, _COPY_BUFFER)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None, use_errno=True).syncfs)
    except (OSError, AttributeError):  # not Linux
        return None


# syncfs(2) flushes every file of one filesystem, data and metadata, and on Linux waits for
# it: the guarantee of an fsync of each file and folder, in one call (and one journal commit)
# for a whole group commit's uploads instead of two per upload. ctypes drops the GIL for it.
_SYNCFS = _libc_syncfs()


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
    renames_sources = True

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"  # put_stream's own temp files; never a key (no dots)
        self._tmp.mkdir(exist_ok=True)
        # Directories known to exist: the chunk hot path makes each one once.
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _folder(self, prefix: str) -> Path:
        return self.root / check_prefix(prefix)

    def put(self, key: str, data: bytes) -> None:
        self.put_stream(key, io.BytesIO(data))

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        check_key(key)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(stream, f, _COPY_BUFFER)
            self.put_file(key, Path(tmp))  # made durable there
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, key: str, source: Path) -> None:
        """Move a file into place, durably."""
        self.put_files([(key, source)])

    def put_files(self, items: Sequence[tuple[str, Path]]) -> None:
        targets = []
        for key, source in items:
            target = self._path(key)
            self._move(source, target)
            targets.append(target)
        if not targets:
            return
        if _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) == 0:
                    return
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}")
            finally:
                os.close(fd)
        for target in targets:
            _fsync_path(target)
        for folder in {t.parent for t in targets}:
            _fsync_path(folder)

    def _move(self, source: Path, target: Path) -> None:
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(self._made) > 10_000:
                self._made.clear()
            self._made.add(target.parent)
        try:
            os.replace(source, target)
        except FileNotFoundError:  # the folder went away since we made it
            if not source.exists():
                raise
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The scratch folder lies on another filesystem: copy, fsync, then rename.
            fd, tmp = tempfile.mkstemp(dir=self._tmp)
            try:
                with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                    shutil.copyfileobj(src, out, _COPY_BUFFER)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            source.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        _check_range(start, length)
        f = self._path(key).open("rb")
        if start:
            f.seek(start)
        if length is None:
            return f
        return io.BufferedReader(LimitedReader(f, length))

    def read_range(self, key: str, start: int, length: int) -> bytes:
        _check_range(start, length)
        with self._path(key).open("rb") as f:
            f.seek(start)
            return f.read(length)

    def download(self, key: str, target: Path) -> None:
        shutil.copyfile(self._path(key), target)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_prefix(self, prefix: str) -> Iterator[BlobInfo]:
        folder = self._folder(prefix)
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed while we looked
                continue
            if stat.S_ISREG(st.st_mode):
                key = path.relative_to(self.root).as_posix()
                yield BlobInfo(key, st.st_size, st.st_mtime)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._folder(prefix)
        count = sum(1 for _ in self.list_prefix(prefix))
        shutil.rmtree(folder, ignore_errors=True)
        self._made = {d for d in self._made if not d.is_relative_to(folder)}
        return count

    def presigned_url(self, key: str, expires: int) -> str | None:
        check_key(key)
        return None


_stores: dict[tuple[object, ...], BlobStore] = {}
_stores_lock = threading.Lock()


def blob_store(settings: Settings) -> BlobStore:
    """The store the settings name (INVIGIL_BLOB_BACKEND): local disk, or an S3 bucket.

    One instance per configuration and process (the S3 client and its connection pool are
    shared by every request and job). The first call checks an S3 store: a bucket that is
    missing, unreachable or refused ends the program with a message saying which (SystemExit),
    at start rather than at the first upload.
    """
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    if settings.blob_backend == "s3":
        ident: tuple[object, ...] = (
            "s3",
            settings.s3_endpoint,
            settings.s3_region,
            settings.s3_bucket,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_path_style,
            settings.s3_multipart_threshold_mb,
            settings.s3_part_size_mb,
        )
    else:
        ident = ("local", settings.blob_dir.resolve())
    with _stores_lock:
        found = _stores.get(ident)
        if found is None:
            if settings.blob_backend == "s3":
                from invigil.core.storage_s3 import S3BlobStore  # boto3 only where S3 is used

                s3 = S3BlobStore.from_settings(settings)
                s3.check()
                found = s3
            else:
                found = LocalBlobStore(settings.blob_dir)
            _stores[ident] = found
        return found
