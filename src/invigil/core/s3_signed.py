"""Signed S3 PUTs and GETs of whole objects without botocore's request pipeline.

Each chunk and snapshot of an exam is one PUT, acknowledged before the group commit. Through
``client.put_object`` a PUT cost about 1.5 ms of CPU even for 100 bytes (endpoint rules,
parameter validation, event hooks, response parsing), held under the GIL beside every other
upload of the process (docs/benchmarks.md, "CPU per upload"). Here the request is built by
hand and signed by botocore's own SigV4 signer with the client's credentials, then sent over a
pooled keep-alive connection: the same bytes on the wire, the same guarantees (Content-MD5
that the store checks; over plain HTTP the payload's SHA-256 signed as well, as botocore
does), a ClientError like boto3's when the store refuses. GETs of whole objects (a snapshot for
its analysis, each chunk of a recording when finalize joins them) go the same way.

The object's URL comes from botocore once (a presigned URL of a probe key), so endpoint,
region, path or virtual-host style all resolve as for every other request of the client.
Where a proxy is configured for the endpoint, the store keeps to botocore.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path

if TYPE_CHECKING:
    from botocore.credentials import Credentials
    from mypy_boto3_s3 import S3Client

ATTEMPTS = 3  # as the client's retry config: a connection reset or a 5xx is tried again
RETRY_STATUS = {500, 502, 503, 504}
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_PROBE = "invigil-probe"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, with the payload hash we computed while reading the file."""

    def payload(self, request: AWSRequest) -> str:
        known = request.context.get("payload_sha256")
        return known if isinstance(known, str) else str(super().payload(request))


def digests(source: BinaryIO) -> tuple[str, str, int]:
    """(Content-MD5, SHA-256 hex, size) of a file from its start, in one read."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    while block := source.read(1 << 20):
        md5.update(block)
        sha.update(block)
        size += len(block)
    return base64.b64encode(md5.digest()).decode(), sha.hexdigest(), size


class SignedRequests:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        credentials: Credentials,
        max_connections: int,
        timeouts: tuple[float, float],
    ) -> None:
        probe = client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": _PROBE}
        )
        url = probe.split("?", 1)[0]
        if not url.endswith("/" + _PROBE):
            raise ValueError(f"unexpected object URL from the S3 client: {url}")
        self.base = url[: -len(_PROBE)]
        self.region = client.meta.region_name
        self._credentials = credentials
        self._pool = urllib3.PoolManager(
            maxsize=max_connections,
            timeout=urllib3.Timeout(connect=timeouts[0], read=timeouts[1]),
            ca_certs=os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True),
        )

    @staticmethod
    def direct(endpoint_url: str) -> bool:
        """No proxy configured for the endpoint (a proxy is left to botocore)."""
        parts = urllib.parse.urlsplit(endpoint_url)
        proxies = urllib.request.getproxies()
        return parts.scheme not in proxies or bool(
            urllib.request.proxy_bypass(parts.hostname or "")
        )

    def put(self, key: str, source: BinaryIO) -> None:
        """PUT the file from its start under ``key``; returns once the store acknowledged it."""
        md5, sha256, size = digests(source)
        headers = {"Content-MD5": md5, "Content-Length": str(size)}

        def rewind() -> BinaryIO:
            source.seek(0)
            return source

        self._send("PUT", key, headers, sha256, rewind, "PutObject")

    def get(self, key: str) -> bytes:
        """The whole object; FileNotFoundError when there is none."""
        try:
            reply = self._send("GET", key, {}, EMPTY_SHA256, lambda: None, "GetObject")
        except ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(key) from exc
            raise
        data: bytes = reply.data
        return data

    def _send(
        self,
        method: str,
        key: str,
        headers: dict[str, str],
        payload_sha256: str,
        body: Callable[[], BinaryIO | None],
        operation: str,
    ) -> Any:
        url = self.base + urllib.parse.quote(key, safe="/~")
        for attempt in range(1, ATTEMPTS + 1):
            signed = self._signed(method, url, headers, payload_sha256)
            try:
                # The whole answer is read here (a GET's body too): urllib3 checks its length.
                reply = self._pool.urlopen(
                    method, url, body=body(), headers=signed, retries=False, redirect=False
                )
            except urllib3.exceptions.HTTPError:  # reset, refused, timed out, cut short
                if attempt == ATTEMPTS:
                    raise
            else:
                if reply.status == 200:
                    return reply
                if reply.status not in RETRY_STATUS or attempt == ATTEMPTS:
                    raise _client_error(reply, operation)
            time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _signed(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=headers)
        # As botocore signs a PutObject: over HTTPS with Content-MD5 the payload is not hashed
        # into the signature, over plain HTTP it is.
        request.context["has_streaming_input"] = method == "PUT"
        request.context["payload_sha256"] = payload_sha256
        # Frozen: a refreshing credential (an instance role) cannot change halfway through.
        frozen = self._credentials.get_frozen_credentials()
        _Signer(frozen, "s3", self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}


def _client_error(reply: Any, operation: str) -> ClientError:
    found = _CODE.search(reply.data or b"")
    code = found.group(1).decode(errors="replace") if found else str(reply.status)
    error: Any = {
        "Error": {"Code": code, "Message": f"HTTP {reply.status}"},
        "ResponseMetadata": {"HTTPStatusCode": reply.status},
    }
    return ClientError(error, operation)
