"""Stores for the storage tests: the local backend and the S3 backend on a real S3 server
(tests/s3_server.py: the server, the session's bucket, when the S3 half skips or fails)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from invigil.core.storage import BlobStore, LocalBlobStore
from invigil.core.storage_s3 import S3BlobStore


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
        # As the server's scratch folder: beside the store, so put_file is a rename.
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        return Backend("local", store, scratch, prefix)
    s3: S3BlobStore = request.getfixturevalue("s3_bucket")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Backend("s3", s3, scratch, prefix)
