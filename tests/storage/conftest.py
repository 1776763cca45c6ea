"""Stores for the storage tests: the local backend and the S3 backend on a real S3 server.

The S3 server is INVIGIL_TEST_S3_ENDPOINT when set (.ci/run starts one with scripts/s3-local
and exports it), otherwise one that this session starts with scripts/s3-local when Ceph's
packages are installed. Without them the S3 half fails when CI or INVIGIL_REQUIRE_S3=1 is set
(CI must test it) and is skipped elsewhere. Each run uses its own bucket and removes it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from invigil.core.storage import BlobStore, LocalBlobStore
from invigil.core.storage_s3 import MIN_PART, S3BlobStore

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "s3-local"
CEPH = ("ceph-mon", "ceph-osd", "radosgw")
# Small parts so a multipart upload costs megabytes, not the production 16 MiB parts.
PART = MIN_PART
THRESHOLD = 8 * 1024 * 1024


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    region: str
    access_key: str
    secret_key: str


def ceph_missing() -> list[str]:
    return [b for b in CEPH if shutil.which(b) is None]


def require_ceph() -> None:
    missing = ceph_missing()
    if not missing:
        return
    reason = (
        f"no local S3 server: {', '.join(missing)} not installed "
        "(apt-get install --no-install-recommends ceph-mon ceph-osd radosgw, "
        "or set INVIGIL_TEST_S3_ENDPOINT)"
    )
    if os.environ.get("CI") or os.environ.get("INVIGIL_REQUIRE_S3") == "1":
        pytest.fail(f"the S3 tests must run here: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    endpoint = os.environ.get("INVIGIL_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Server(
            endpoint,
            os.environ.get("INVIGIL_TEST_S3_REGION", "us-east-1"),
            os.environ["INVIGIL_TEST_S3_ACCESS_KEY"],
            os.environ["INVIGIL_TEST_S3_SECRET_KEY"],
        )
        return
    require_ceph()
    root = tmp_path_factory.mktemp("s3-local")
    started = subprocess.run(
        [str(SCRIPT), "start", str(root), str(free_port()), str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert started.returncode == 0, f"scripts/s3-local failed:\n{started.stderr}"
        env = _env_lines(started.stdout)
        yield S3Server(
            env["INVIGIL_S3_ENDPOINT"],
            env["INVIGIL_S3_REGION"],
            env["INVIGIL_S3_ACCESS_KEY"],
            env["INVIGIL_S3_SECRET_KEY"],
        )
    finally:
        subprocess.run([str(SCRIPT), "stop", str(root)], capture_output=True, timeout=60)


def s3_store(server: S3Server, bucket: str) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        endpoint=server.endpoint,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        path_style=True,
        multipart_threshold=THRESHOLD,
        part_size=PART,
    )


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> Iterator[S3BlobStore]:
    store = s3_store(s3_server, f"invigil-test-{uuid.uuid4().hex[:16]}")
    store.ensure_bucket()
    yield store
    # A shared server (CI runs SQLite and PostgreSQL side by side against one) keeps no litter.
    client = store.client
    for upload in client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []):
        client.abort_multipart_upload(
            Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=store.bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=store.bucket)


@dataclass
class Backend:
    """A store under test, a folder for source files it may consume, and a key prefix of
    this test's own (tests share the session's bucket)."""

    name: str
    store: BlobStore
    scratch: Path
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def keys_under(self, prefix: str) -> list[str]:
        if isinstance(self.store, S3BlobStore):
            reply = self.store.client.list_objects_v2(Bucket=self.store.bucket, Prefix=prefix)
            return sorted(o["Key"] for o in reply.get("Contents", []))
        assert isinstance(self.store, LocalBlobStore)
        root = self.store.root
        return sorted(
            p.relative_to(root).as_posix() for p in (root / prefix).rglob("*") if p.is_file()
        )


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    if request.param == "local":
        store = LocalBlobStore(tmp_path / "blobs")
        # put_file moves the file into place: its source lies on the store's filesystem.
        return Backend("local", store, store.temp_dir(), prefix)
    s3: S3BlobStore = request.getfixturevalue("s3_bucket")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Backend("s3", s3, scratch, prefix)
