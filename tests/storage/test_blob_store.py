"""One behaviour suite for every BlobStore backend: local disk and a real S3 server."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from s3_server import PART, SCRIPT, S3Server, free_port, require_ceph, s3_store

from invigil.core.config import Settings
from invigil.core.storage import BlobPurged, LocalBlobStore, blob_store
from invigil.core.storage_s3 import S3BlobStore, content_md5

from .conftest import Backend


def _random(n: int) -> bytes:
    return os.urandom(n)


class _Trickle(io.RawIOBase):
    """A pipe-like stream: short reads of uneven size, as a socket or request body gives."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        n = min(len(buffer), self._step + self.reads % 7, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_put_get_exists_size_delete(backend: Backend) -> None:
    store, key = backend.store, backend.key("chunks/000001.webm")
    data = _random(64 * 1024)
    assert not store.exists(key)
    store.put(key, data)
    assert store.exists(key)
    assert store.size(key) == len(data)
    assert store.get(key) == data
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting what is gone is not an error (retention runs twice)
    with pytest.raises(FileNotFoundError):
        store.get(key)
    with pytest.raises(FileNotFoundError):
        store.size(key)
    with pytest.raises(FileNotFoundError):
        store.read_range(key, 0, 10)


def test_read_range_and_open(backend: Backend) -> None:
    store, key = backend.store, backend.key("media.webm")
    data = _random(1000)
    store.put(key, data)
    assert store.read_range(key, 0, 1) == data[:1]
    assert store.read_range(key, 10, 20) == data[10:30]
    assert store.read_range(key, 990, 50) == data[990:]  # short at the end
    assert store.read_range(key, 1000, 10) == b""  # past the end
    assert store.read_range(key, 5, 0) == b""
    with store.open(key) as f:
        assert f.read(100) == data[:100]
        assert f.read() == data[100:]
    with store.open(key, 100, 50) as f:
        assert f.read() == data[100:150]
    with store.open(key, 900) as f:
        assert f.read() == data[900:]
    with pytest.raises(ValueError):
        store.read_range(key, -1, 5)


def test_content_addressed_put_of_the_same_bytes_twice(backend: Backend) -> None:
    store = backend.store
    data = _random(250 * 1024)
    key = backend.key(f"snapshots/{hashlib.sha256(data).hexdigest()}.jpg")
    store.put(key, data)
    store.put(key, data)  # a client retrying a chunk whose answer it never saw
    assert store.get(key) == data
    assert backend.keys_under(backend.prefix) == [key]


def test_put_file_consumes_the_source(backend: Backend) -> None:
    store, key = backend.store, backend.key("original.webm")
    data = _random(300 * 1024)
    source = backend.scratch / "join-1"
    source.write_bytes(data)
    store.put_file(key, source)
    assert not source.exists()
    assert store.get(key) == data


def test_put_stream_with_short_reads_larger_than_a_part(backend: Backend) -> None:
    store, key = backend.store, backend.key("streamed.webm")
    data = _random(2 * PART + 12345)
    stream = _Trickle(data, 300 * 1024)
    store.put_stream(key, io.BufferedReader(stream, 64 * 1024))
    assert stream.reads > 30
    assert store.size(key) == len(data)
    assert hashlib.sha256(store.get(key)).digest() == hashlib.sha256(data).digest()


def test_put_stream_of_a_small_object(backend: Backend) -> None:
    store, key = backend.store, backend.key("small")
    store.put_stream(key, io.BytesIO(b"abc"))
    store.put_stream(backend.key("empty"), io.BytesIO(b""))
    assert store.get(key) == b"abc"
    assert store.get(backend.key("empty")) == b""


def test_multipart_file_is_joined_exactly(backend: Backend) -> None:
    store, key = backend.store, backend.key("recording.webm")
    data = _random(2 * PART + 3 * 1024 * 1024 + 123)  # above the threshold: three parts
    source = backend.scratch / "big"
    source.write_bytes(data)
    store.put_file(key, source)
    assert store.size(key) == len(data)
    assert store.get(key) == data
    assert store.read_range(key, PART - 5, 10) == data[PART - 5 : PART + 5]  # across a seam
    in_memory = backend.key("recording-2.webm")
    store.put(in_memory, data)  # bytes above the threshold take the same path
    assert store.get(in_memory) == data
    if isinstance(store, S3BlobStore):
        # A multipart object's ETag is the MD5 of its parts' MD5s, "-" and the part count.
        md5s = b"".join(hashlib.md5(data[i : i + PART]).digest() for i in range(0, len(data), PART))
        for k in (key, in_memory):
            etag = store.client.head_object(Bucket=store.bucket, Key=k)["ETag"].strip('"')
            assert etag == f"{hashlib.md5(md5s).hexdigest()}-3"


def test_presigned_url(backend: Backend) -> None:
    store, key = backend.store, backend.key("media.mp4")
    data = _random(4096)
    store.put(key, data)
    url = store.presigned_url(key, 60)
    if backend.name == "local":
        assert url is None  # clients fetch through the server
        return
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.read() == data
    request = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 206
        assert reply.read() == data[100:200]
    # The URL names this one key: another key with the same signature is refused.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace("media.mp4", "other.mp4"), timeout=10)
    assert refused.value.code == 403
    short = store.presigned_url(key, 1)
    assert short is not None
    time.sleep(2.2)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(short, timeout=10)
    assert expired.value.code == 403


def test_purged_key_raises_blob_purged(backend: Backend) -> None:
    store = backend.store
    for call in (
        lambda: store.get(""),
        lambda: store.open(""),
        lambda: store.read_range("", 0, 1),
        lambda: store.size(""),
        lambda: store.exists(""),
        lambda: store.delete(""),
        lambda: store.put("", b"x"),
        lambda: store.presigned_url("", 60),
    ):
        with pytest.raises(BlobPurged):
            call()


@pytest.mark.parametrize("key", ["../x", "a/../b", "/abs", "a//b", "a b", "a/b/"])
def test_invalid_keys_are_refused(backend: Backend, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        backend.store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        backend.store.get(key)


# --- S3 only --------------------------------------------------------------------------------


def test_the_server_refuses_a_wrong_content_md5(s3_bucket: S3BlobStore) -> None:
    """Sent by hand: bytes that changed on the way are refused by the store itself."""
    key = "md5/refused"
    with pytest.raises(ClientError) as refused:
        s3_bucket.client.put_object(
            Bucket=s3_bucket.bucket, Key=key, Body=b"hello", ContentMD5=content_md5(b"hellO")
        )
    assert refused.value.response["Error"]["Code"] == "BadDigest"
    assert not s3_bucket.exists(key)


def test_every_put_sends_its_content_md5(
    s3_bucket: S3BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single PUTs go out through the signed PUT (core/s3_signed.py), parts through botocore:
    each carries the MD5 of exactly the bytes it sends."""
    sent: list[tuple[str, str | None]] = []

    def md5_of(raw: bytes, header: Any) -> None:
        value = header.decode() if isinstance(header, bytes) else header
        sent.append((base64.b64encode(hashlib.md5(raw).digest()).decode(), value))

    def record(request: Any, **_: Any) -> None:
        body = request.body
        if hasattr(body, "read"):  # a file: read it without moving the sender's position
            pos = body.tell()
            raw = body.read()
            body.seek(pos)
        else:
            raw = body or b""
        md5_of(raw, request.headers.get("Content-MD5"))

    signed = s3_bucket._signed
    assert signed is not None
    pool = signed._pool
    urlopen = pool.urlopen

    def recording_urlopen(method: str, url: str, body: Any = None, **kw: Any) -> Any:
        pos = body.tell()
        md5_of(body.read(), kw["headers"]["Content-MD5"])
        body.seek(pos)
        return urlopen(method, url, body=body, **kw)

    monkeypatch.setattr(pool, "urlopen", recording_urlopen)
    events = s3_bucket.client.meta.events
    events.register("before-send.s3.UploadPart", record)
    try:
        s3_bucket.put("md5/put", b"chunk bytes")
        source = tmp_path / "file"
        source.write_bytes(_random(1000))
        s3_bucket.put_file("md5/file", source)
        s3_bucket.put_stream("md5/stream", io.BytesIO(_random(PART + 10)))
    finally:
        events.unregister("before-send.s3.UploadPart", record)
    assert len(sent) == 4  # put, put_file, two parts of the stream
    for actual, header in sent:
        assert header == actual


def test_a_failed_multipart_upload_leaves_nothing(s3_bucket: S3BlobStore) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.given = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.given > PART + 1024:
                raise ConnectionResetError("client went away")
            n = min(len(buffer), 1 << 20)
            buffer[:n] = b"x" * n
            self.given += n
            return n

    key = "broken/upload"
    with pytest.raises(ConnectionResetError):
        s3_bucket.put_stream(key, io.BufferedReader(Broken()))
    assert not s3_bucket.exists(key)
    uploads = s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.bucket, Prefix="broken/")
    assert uploads.get("Uploads", []) == []


def test_no_local_paths_on_either_backend(backend: Backend) -> None:
    # Callers store from their own scratch files and read through the store (issue 14).
    for name in ("local_path", "temp_dir"):
        assert not hasattr(backend.store, name)


def test_folders_list_and_delete(backend: Backend) -> None:
    store = backend.store
    keys = [backend.key(k) for k in ("a/1", "a/2", "a/deep/3", "ab/4", "b/5")]
    for i, key in enumerate(keys):
        store.put(key, b"x" * (i + 1))
    listed = {i.key: i.size for i in store.list_prefix(backend.key("a"))}
    # A folder, not a string prefix: "ab/4" is not under "a".
    assert listed == {keys[0]: 1, keys[1]: 2, keys[2]: 3}
    assert all(abs(i.modified - time.time()) < 600 for i in store.list_prefix(backend.key("a")))
    assert list(store.list_prefix(backend.key("nothing"))) == []
    assert store.delete_prefix(backend.key("a")) == 3
    assert backend.keys_under(backend.prefix) == sorted([keys[3], keys[4]])
    assert store.delete_prefix(backend.key("a")) == 0
    with pytest.raises(ValueError):
        store.delete_prefix("")
    with pytest.raises(ValueError):
        list(store.list_prefix("../x"))


def test_put_files_stores_all_and_consumes_the_sources(backend: Backend) -> None:
    store = backend.store
    items = []
    for i in range(5):
        source = backend.scratch / f"src-{i}"
        source.write_bytes(f"file {i}".encode() * 1000)
        items.append((backend.key(f"many/{i}"), source))
    store.put_files(items)
    for i, (key, source) in enumerate(items):
        assert store.get(key) == f"file {i}".encode() * 1000
        assert not source.exists()
    target = backend.scratch / "copy"
    store.download(items[2][0], target)
    assert target.read_bytes() == b"file 2" * 1000
    with pytest.raises(FileNotFoundError):
        store.download(backend.key("many/missing"), backend.scratch / "none")


def test_blob_store_from_settings(
    s3_server: S3Server, s3_bucket: S3BlobStore, tmp_path: Path
) -> None:
    local = blob_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlobStore)
    assert local.root == (tmp_path / "blobs").resolve()
    s3 = blob_store(
        Settings(
            data_dir=tmp_path,
            blob_backend="s3",
            s3_endpoint=s3_server.endpoint,
            s3_region=s3_server.region,
            s3_bucket=s3_bucket.bucket,
            s3_access_key=s3_server.access_key,
            s3_secret_key=s3_server.secret_key,
            s3_path_style=True,
        )
    )
    s3.put("settings/x", b"through the settings")
    assert s3_bucket.get("settings/x") == b"through the settings"
    assert blob_store(Settings(data_dir=tmp_path)) is local  # one store per configuration

    def s3_with(**changes: Any) -> Settings:
        fields: dict[str, Any] = {
            "data_dir": tmp_path,
            "blob_backend": "s3",
            "s3_endpoint": s3_server.endpoint,
            "s3_bucket": s3_bucket.bucket,
            "s3_access_key": s3_server.access_key,
            "s3_secret_key": s3_server.secret_key,
            "s3_path_style": True,
        }
        return Settings(**{**fields, **changes})

    # A misconfigured or unreachable store stops the program at start, saying why (zh + en).
    with pytest.raises(SystemExit, match=r"(?s)拒绝访问.*INVIGIL_S3_SECRET_KEY") as denied:
        blob_store(s3_with(s3_secret_key="not-the-secret"))
    assert "(403)" in str(denied.value)
    with pytest.raises(SystemExit, match=r"(?s)没有存储桶.*does not exist"):
        blob_store(s3_with(s3_bucket="no-such-bucket-here"))
    with pytest.raises(SystemExit, match=r"(?s)无法连接对象存储.*INVIGIL_S3_ENDPOINT"):
        blob_store(s3_with(s3_endpoint=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(SystemExit, match="INVIGIL_S3_BUCKET"):
        blob_store(Settings(data_dir=tmp_path, blob_backend="s3"))


def test_s3_local_refuses_a_taken_port(tmp_path: Path) -> None:
    require_ceph()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(SCRIPT), "start", str(tmp_path / "s3"), str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "s3" / "fsid").exists()


@pytest.mark.slow
def test_s3_local_stops_by_pid_files_and_restarts_with_its_data(tmp_path: Path) -> None:
    require_ceph()
    root = tmp_path / "s3"
    ports = [str(free_port()), str(free_port())]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
        )

    try:
        first = run("start", str(root), *ports)
        assert first.returncode == 0, first.stderr
        env = dict(line.split("=", 1) for line in first.stdout.splitlines())
        assert env["INVIGIL_S3_ENDPOINT"] == f"http://127.0.0.1:{ports[0]}"
        server = S3Server(
            env["INVIGIL_S3_ENDPOINT"],
            env["INVIGIL_S3_REGION"],
            env["INVIGIL_S3_ACCESS_KEY"],
            env["INVIGIL_S3_SECRET_KEY"],
        )
        store = s3_store(server, "restart-test")
        store.ensure_bucket()
        store.put("kept/across/restart", b"still here")
        pids = [int(p.read_text()) for p in (root / "run").glob("*.pid")]
        assert len(pids) == 3  # monitor, OSD, radosgw

        assert run("stop", str(root)).returncode == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert run("status", str(root)).returncode == 1

        again = run("start", str(root), *ports)
        assert again.returncode == 0, again.stderr
        assert run("status", str(root)).returncode == 0
        assert store.get("kept/across/restart") == b"still here"
    finally:
        run("stop", str(root))


def test_local_put_files_syncs_the_filesystem_once_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group commit's files are made durable by one syncfs of the store's filesystem; where
    there is none, by an fsync of each file and folder; a failed sync is an error."""
    from invigil.core import storage

    store = LocalBlobStore(tmp_path / "blobs")

    def sources(n: int) -> list[tuple[str, Path]]:
        out = []
        for i in range(n):
            src = tmp_path / f"src-{n}-{i}"
            src.write_bytes(b"x" * (i + 1))
            out.append((f"a{i % 2}/k{n}-{i}", src))
        return out

    synced: list[int] = []
    monkeypatch.setattr(storage, "_SYNCFS", lambda fd: synced.append(fd) or 0)
    store.put_files(sources(3))
    assert len(synced) == 1
    assert store.get("a0/k3-0") == b"x" and store.get("a0/k3-2") == b"xxx"

    fsynced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(storage, "_SYNCFS", None)
    monkeypatch.setattr(storage.os, "fsync", recording_fsync)
    store.put_files(sources(4))
    root = store.root
    assert sorted(fsynced) == sorted(
        [str(root / f"a{i % 2}" / f"k4-{i}") for i in range(4)]
        + [str(root / "a0"), str(root / "a1")]
    )

    monkeypatch.setattr(storage, "_SYNCFS", lambda fd: -1)
    with pytest.raises(OSError, match="syncfs"):
        store.put_files(sources(1))
