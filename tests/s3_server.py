"""A real S3 server for the tests: INVIGIL_TEST_S3_ENDPOINT when set (.ci/run starts one with
scripts/s3-local and exports it), otherwise one that this session starts with scripts/s3-local
when Ceph's packages are installed. Without them the S3 runs fail when CI or
INVIGIL_REQUIRE_S3=1 is set (CI must test them) and are skipped elsewhere. Each session uses a
bucket of its own and removes it at the end.

Fixtures (registered by tests/conftest.py): ``s3_server``, ``s3_bucket``; and the settings of
a test on S3 (``s3_settings``), which the ``blob_backend`` fixture of tests/conftest.py uses.
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
from typing import Any

import pytest

from invigil.core.storage_s3 import MIN_PART, S3BlobStore

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "s3-local"
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


def s3_settings(server: S3Server, bucket: S3BlobStore) -> dict[str, Any]:
    """Settings fields that put a test's blobs in the session's bucket (keys are ids, so tests
    sharing it never meet); parts as small as S3 allows, so large files go multipart."""
    return {
        "blob_backend": "s3",
        "s3_endpoint": server.endpoint,
        "s3_region": server.region,
        "s3_bucket": bucket.bucket,
        "s3_access_key": server.access_key,
        "s3_secret_key": server.secret_key,
        "s3_path_style": True,
        "s3_multipart_threshold_mb": THRESHOLD // (1024 * 1024),
        "s3_part_size_mb": PART // (1024 * 1024),
    }


def blob_env(settings: Any) -> dict[str, str]:
    """The INVIGIL_* variables that give a subprocess (invigil serve, worker, CLI) the same
    blob store as the test's settings."""
    if settings.blob_backend != "s3":
        return {"INVIGIL_BLOB_BACKEND": "local"}
    return {
        "INVIGIL_BLOB_BACKEND": "s3",
        "INVIGIL_S3_ENDPOINT": str(settings.s3_endpoint),
        "INVIGIL_S3_REGION": settings.s3_region,
        "INVIGIL_S3_BUCKET": str(settings.s3_bucket),
        "INVIGIL_S3_ACCESS_KEY": str(settings.s3_access_key),
        "INVIGIL_S3_SECRET_KEY": str(settings.s3_secret_key),
        "INVIGIL_S3_PATH_STYLE": "true" if settings.s3_path_style else "false",
        "INVIGIL_S3_MULTIPART_THRESHOLD_MB": str(settings.s3_multipart_threshold_mb),
        "INVIGIL_S3_PART_SIZE_MB": str(settings.s3_part_size_mb),
    }
