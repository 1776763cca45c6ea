"""The S3 backend of BlobStore: any S3-compatible object store (AWS S3, MinIO, Ceph RGW,
Aliyun OSS, Tencent COS), tested against a real Ceph RGW (scripts/s3-local).

Every write carries Content-MD5, so the store itself refuses bytes that changed on the way:
every S3 server checks it, while some (RGW 16) accept any x-amz-checksum-* value. Large files
go up as a multipart upload, each part with its own Content-MD5. Reads stream the response
body; ranges use HTTP Range. Why these choices: docs/storage.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from invigil.core.s3_signed import SignedRequests
from invigil.core.storage import BlobInfo, LimitedReader, check_key, check_prefix, download_to

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from invigil.core.config import Settings

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # the S3 minimum for every part but the last
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
TIMEOUTS = (5.0, 60.0)  # connect, read (s): botocore's requests and the signed ones alike


def content_md5(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw stream, so callers get an ordinary BinaryIO."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data: bytes = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3BlobStore:
    renames_sources = False

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        path_style: bool = False,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
        max_connections: int = 32,
    ) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"S3 parts must be at least {MIN_PART} bytes, not {part_size}")
        if multipart_threshold < part_size:
            raise ValueError("the multipart threshold must be at least one part")
        self.bucket = bucket
        self.endpoint = endpoint
        self.max_connections = max_connections
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "virtual"},
            # Content-MD5 is what every server checks; newer boto3 would otherwise add CRC32
            # trailers that some servers (RGW 16, older MinIO) reject or ignore.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=TIMEOUTS[0],
            read_timeout=TIMEOUTS[1],
            max_pool_connections=max_connections,
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self.client: S3Client = session.client("s3", endpoint_url=endpoint, config=config)
        # Single PUTs (every chunk and snapshot) and whole-object GETs skip botocore's request
        # pipeline: s3_signed.py.
        credentials = session.get_credentials()
        self._signed: SignedRequests | None = None
        if credentials is not None and SignedRequests.direct(self.client.meta.endpoint_url):
            self._signed = SignedRequests(
                self.client, bucket, credentials, max_connections, TIMEOUTS
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        if not settings.s3_bucket:
            raise SystemExit(
                "INVIGIL_BLOB_BACKEND=s3 需要 INVIGIL_S3_BUCKET。\n"
                "INVIGIL_BLOB_BACKEND=s3 needs INVIGIL_S3_BUCKET (and usually INVIGIL_S3_ENDPOINT)."
            )
        return cls(
            settings.s3_bucket,
            endpoint=settings.s3_endpoint,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            path_style=settings.s3_path_style,
            multipart_threshold=settings.s3_multipart_threshold_mb * MiB,
            part_size=settings.s3_part_size_mb * MiB,
        )

    def check(self) -> None:
        """Fail with a message that names the cause when the bucket cannot be used."""
        where = f"{self.endpoint or 'AWS S3'} / {self.bucket}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if _not_found(exc) or code == "NoSuchBucket":
                raise SystemExit(
                    f"对象存储中没有存储桶 {where}：请先创建它（INVIGIL_S3_BUCKET）。\n"
                    f"The bucket {where} does not exist: create it first (INVIGIL_S3_BUCKET)."
                ) from None
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise SystemExit(
                    f"对象存储拒绝访问 {where}（{code}）：请检查 INVIGIL_S3_ACCESS_KEY、"
                    "INVIGIL_S3_SECRET_KEY 和 INVIGIL_S3_REGION。\n"
                    f"The object store refused access to {where} ({code}): check "
                    "INVIGIL_S3_ACCESS_KEY, INVIGIL_S3_SECRET_KEY and INVIGIL_S3_REGION."
                ) from None
            raise SystemExit(
                f"对象存储 {where} 出错（{code}）。\nThe object store {where} answered {code}."
            ) from None
        except NoCredentialsError:
            raise SystemExit(
                "未找到对象存储的访问密钥：请设置 INVIGIL_S3_ACCESS_KEY 和 INVIGIL_S3_SECRET_KEY。\n"
                "No credentials for the object store: set INVIGIL_S3_ACCESS_KEY and "
                "INVIGIL_S3_SECRET_KEY."
            ) from None
        except BotoCoreError as exc:  # unreachable endpoint, bad URL, timeout
            raise SystemExit(
                f"无法连接对象存储 {where}：{exc}。请检查 INVIGIL_S3_ENDPOINT 与网络。\n"
                f"Cannot reach the object store {where}: {exc}. Check INVIGIL_S3_ENDPOINT "
                "and the network."
            ) from None

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_connections, thread_name_prefix="invigil-s3"
                )
            return self._executor

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (tests, a first start of a small install)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            self.client.create_bucket(Bucket=self.bucket)

    # --- writes ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        if len(data) >= self.multipart_threshold:
            self._multipart(key, _slices(data, self.part_size))
            return
        if self._signed is not None:
            self._signed.put(key, io.BytesIO(data))
            return
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=content_md5(data))

    def put_file(self, key: str, source: Path) -> None:
        check_key(key)
        size = source.stat().st_size
        with source.open("rb") as f:
            if size >= self.multipart_threshold:
                self._multipart(key, _parts(f, self.part_size))
            elif self._signed is not None:
                self._signed.put(key, f)
            else:
                digest = hashlib.md5()
                while block := f.read(1 << 20):
                    digest.update(block)
                f.seek(0)
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=f,
                    ContentLength=size,
                    ContentMD5=base64.b64encode(digest.digest()).decode(),
                )
        # Like the local store, which moves the file into place: the source is consumed.
        source.unlink(missing_ok=True)

    def put_files(self, items: Sequence[tuple[str, Path]]) -> None:
        if len(items) == 1:
            self.put_file(*items[0])
            return
        # Side by side: a group commit of many chunks waits for the slowest PUT, not the sum.
        futures = [self._pool().submit(self.put_file, key, source) for key, source in items]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """A stream that ends within one part goes up in one PUT, a longer one as a multipart
        upload; memory holds one part at a time either way."""
        check_key(key)
        parts = _parts(stream, self.part_size)
        first = next(parts, b"")
        if len(first) < self.part_size:
            self.put(key, first)
            return
        self._multipart(key, _chain(first, parts))

    def _multipart(self, key: str, parts: Iterator[bytes]) -> None:
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            done: list[CompletedPartTypeDef] = []
            for number, part in enumerate(parts, start=1):
                reply = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                    ContentMD5=content_md5(part),
                )
                done.append({"PartNumber": number, "ETag": reply["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            # The parts of a failed upload would otherwise stay (and be billed) forever.
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    # --- reads ----------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        if self._signed is not None:
            return self._signed.get(check_key(key))
        with self.open(key) as f:
            return f.read()

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        check_key(key)
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"invalid range start={start} length={length}")
        if length == 0:
            return io.BytesIO(b"")
        args: dict[str, Any] = {}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            args["Range"] = f"bytes={start}-{end}"
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=key, **args)
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(key) from exc
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                if not self.exists(key):
                    raise FileNotFoundError(key) from exc
                return io.BytesIO(b"")  # past the end, as a local file reads
            raise
        reader = _BodyReader(reply["Body"])
        return io.BufferedReader(reader if length is None else LimitedReader(reader, length))  # type: ignore[arg-type]

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key, start, length) as f:
            return f.read()

    def download(self, key: str, target: Path) -> None:
        download_to(self, key, target)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        check_key(key)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(key) from exc
            raise

    def delete(self, key: str) -> None:
        check_key(key)
        self.client.delete_object(Bucket=self.bucket, Key=key)  # S3 deletes are idempotent

    def presigned_url(self, key: str, expires: int) -> str | None:
        check_key(key)
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )

    # --- folders --------------------------------------------------------------------------

    def list_prefix(self, prefix: str) -> Iterator[BlobInfo]:
        folder = check_prefix(prefix) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield BlobInfo(obj["Key"], obj["Size"], obj["LastModified"].timestamp())

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list_prefix(prefix)]
        # One request per key, side by side: DeleteObjects needs a checksum header that not
        # every S3-compatible server accepts in the form boto3 now sends.
        list(self._pool().map(self.delete, keys))
        return len(keys)


def _parts(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Full parts of `size` bytes (a short read of a pipe or socket is not the end)."""
    while True:
        buf = bytearray()
        while len(buf) < size:
            block = stream.read(size - len(buf))
            if not block:
                break
            buf += block
        if not buf:
            return
        yield bytes(buf)
        if len(buf) < size:
            return


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), size):
        yield bytes(view[offset : offset + size])


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


__all__ = ["MIN_PART", "S3BlobStore", "content_md5"]
