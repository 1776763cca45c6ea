"""The signed S3 PUT (core/s3_signed.py) against the real S3 server: what the store checks, what
is retried, what is not, and when the store keeps to botocore's put_object."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError
from s3_server import S3Server, s3_store

from invigil.core import s3_signed
from invigil.core.s3_signed import SignedRequests
from invigil.core.storage_s3 import S3BlobStore


def _key() -> str:
    return f"signed/{uuid.uuid4().hex}"


def _sent(store: S3BlobStore, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request the signed PUT hands to its connection pool, then sends for real."""
    signed = store._signed
    assert signed is not None
    calls: list[dict[str, Any]] = []
    urlopen = signed._pool.urlopen

    def recorded(method: str, url: str, body: Any = None, **kw: Any) -> Any:
        calls.append({"url": url, "headers": dict(kw["headers"])})
        return urlopen(method, url, body=body, **kw)

    monkeypatch.setattr(signed._pool, "urlopen", recorded)
    return calls


def test_a_put_is_stored_with_its_payload_hash_signed(
    s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _sent(s3_bucket, monkeypatch)
    data = os.urandom(300_000)
    key = _key()
    s3_bucket.put(key, data)
    (request,) = sent
    assert s3_bucket.get(key) == data
    assert request["url"].endswith("/" + key)
    # Plain HTTP: the SHA-256 of the body is part of the signature, as botocore signs it.
    assert request["headers"]["X-Amz-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.parametrize(
    ("wrong", "code"), [("md5", "BadDigest"), ("sha256", "XAmzContentSHA256Mismatch")]
)
def test_bytes_changed_on_the_way_are_refused(
    s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch, wrong: str, code: str
) -> None:
    """The MD5 (or, over plain HTTP, the signed SHA-256) of other bytes than the ones sent:
    the store refuses, nothing is stored."""
    real = s3_signed.digests

    def other_bytes(source: Any) -> tuple[str, str, int]:
        md5, sha256, size = real(source)
        if wrong == "md5":
            md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        else:
            sha256 = hashlib.sha256(b"other").hexdigest()
        return md5, sha256, size

    monkeypatch.setattr(s3_signed, "digests", other_bytes)
    key = _key()
    with pytest.raises(ClientError) as refused:
        s3_bucket.put(key, b"the bytes")
    assert refused.value.response["Error"]["Code"] == code
    assert not s3_bucket.exists(key)


def test_a_dropped_connection_is_tried_again(
    s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = s3_bucket._signed
    assert signed is not None
    urlopen = signed._pool.urlopen
    tries: list[int] = []

    def flaky(method: str, url: str, body: Any = None, **kw: Any) -> Any:
        tries.append(1)
        if len(tries) == 1:
            body.read(1000)  # part of the body went out before the reset
            raise urllib3.exceptions.ProtocolError("connection reset by peer")
        return urlopen(method, url, body=body, **kw)

    monkeypatch.setattr(signed._pool, "urlopen", flaky)
    monkeypatch.setattr(s3_signed.time, "sleep", lambda _s: None)
    key = _key()
    data = os.urandom(50_000)
    s3_bucket.put(key, data)
    assert len(tries) == 2
    assert s3_bucket.get(key) == data  # the retry sent the whole body again


def test_a_get_reads_the_whole_object_through_the_pool(
    s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(200_000)
    key = _key()
    s3_bucket.put(key, data)
    sent = _sent(s3_bucket, monkeypatch)
    assert s3_bucket.get(key) == data
    (request,) = sent
    assert request["url"].endswith("/" + key)
    assert request["headers"]["X-Amz-Content-SHA256"] == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        s3_bucket.get(_key())


def test_a_get_cut_short_is_tried_again(
    s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(80_000)
    key = _key()
    s3_bucket.put(key, data)
    signed = s3_bucket._signed
    assert signed is not None
    urlopen = signed._pool.urlopen
    tries: list[int] = []

    def cut(method: str, url: str, **kw: Any) -> Any:
        tries.append(1)
        if len(tries) == 1:
            raise urllib3.exceptions.ProtocolError("IncompleteRead(40000 bytes read)")
        return urlopen(method, url, **kw)

    monkeypatch.setattr(signed._pool, "urlopen", cut)
    monkeypatch.setattr(s3_signed.time, "sleep", lambda _s: None)
    assert s3_bucket.get(key) == data
    assert len(tries) == 2


def test_a_refusal_is_not_retried(s3_server: S3Server, s3_bucket: S3BlobStore) -> None:
    wrong = s3_store(s3_server, s3_bucket.bucket)
    signed = wrong._signed
    assert signed is not None
    signed._credentials = type(signed._credentials)("invigil-test-access", "not-the-secret")
    tries: list[int] = []
    urlopen = signed._pool.urlopen

    def counted(*args: Any, **kw: Any) -> Any:
        tries.append(1)
        return urlopen(*args, **kw)

    signed._pool.urlopen = counted  # type: ignore[method-assign]
    key = _key()
    with pytest.raises(ClientError) as refused:
        wrong.put(key, b"x")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(tries) == 1
    assert not s3_bucket.exists(key)


def test_a_file_is_read_from_its_start_and_consumed(s3_bucket: S3BlobStore, tmp_path: Any) -> None:
    source = tmp_path / "chunk"
    data = os.urandom(70_000)
    source.write_bytes(data)
    key = _key()
    s3_bucket.put_file(key, source)
    assert not source.exists()
    assert s3_bucket.get(key) == data
    assert s3_bucket.size(key) == len(data)


def test_behind_a_proxy_the_store_keeps_to_botocore(
    s3_server: S3Server, s3_bucket: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = s3_server.endpoint
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "")
    assert not SignedRequests.direct(endpoint)
    assert s3_store(s3_server, s3_bucket.bucket)._signed is None
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    assert SignedRequests.direct(endpoint)
    monkeypatch.delenv("http_proxy")
    store = s3_store(s3_server, s3_bucket.bucket)
    assert store._signed is not None
    key = _key()
    store.put(key, b"direct")
    assert store.get(key) == b"direct"


def test_digests_read_the_whole_file_once() -> None:
    data = os.urandom((1 << 20) + 17)
    md5, sha256, size = s3_signed.digests(io.BytesIO(data))
    assert size == len(data)
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert md5 == base64.b64encode(hashlib.md5(data).digest()).decode()
