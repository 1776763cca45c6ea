"""Blobs served over HTTP with Range, the same way on every blob backend.

Media goes through the server on local disk and on S3 alike: every request (each Range request
a <video> element makes while it plays or seeks) passes the route's access check and its audit
log first, then streams only the asked bytes from the store (a seek and read on local disk, a
ranged GET on S3), so a gigabyte recording is never held in memory or copied to local disk. A
presigned S3 URL would be a bearer credential that outlives the check and reaches the store
from the client's network; the store offers one (BlobStore.presigned_url) for other uses.

Range rules (RFC 9110 §14): one range of unit ``bytes`` is answered with 206 and
Content-Range; a range that starts past the end is 416 with ``Content-Range: bytes */size``;
several ranges, another unit or a malformed header are ignored (200 with the whole blob).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from invigil.core.storage import BlobStore

BLOCK = 256 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of the one range asked for, None for the whole blob; raises
    Unsatisfiable when it lies past the end."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None  # another unit, several ranges, or garbage: the whole blob
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        start = max(size - suffix, 0)
        return start, size - start
    start = int(first)
    if start >= size:
        raise Unsatisfiable()
    end = size - 1 if last == "" else min(int(last), size - 1)
    if end < start:
        return None  # invalid (last before first): ignored, as RFC 9110 says
    return start, end - start + 1


def _body(blobs: BlobStore, key: str, start: int, length: int) -> Iterator[bytes]:
    with blobs.open(key, start, length) as f:
        while block := f.read(BLOCK):
            yield block


def _disposition(kind: str, filename: str) -> str:
    quoted = quote(filename)
    if quoted == filename:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename*=utf-8''{quoted}"


def blob_response(
    blobs: BlobStore,
    key: str,
    range_header: str | None,
    *,
    media_type: str,
    headers: dict[str, str] | None = None,
    filename: str | None = None,
    disposition: str = "inline",
) -> Response:
    """The blob (or the asked range of it) as a streamed response. A missing blob raises
    FileNotFoundError, a purged one BlobPurged, before any byte is sent."""
    size = blobs.size(key)
    out = {"Accept-Ranges": "bytes", **(headers or {})}
    if filename is not None:
        out["Content-Disposition"] = _disposition(disposition, filename)
    try:
        asked = parse_range(range_header, size)
    except Unsatisfiable:
        out["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=out)
    if asked is None:
        start, length, status = 0, size, 200
    else:
        start, length = asked
        status = 206
        out["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    out["Content-Length"] = str(length)
    if length == 0:
        return Response(status_code=status, headers=out, media_type=media_type)
    return StreamingResponse(
        _body(blobs, key, start, length), status_code=status, headers=out, media_type=media_type
    )


def jpeg_response(blobs: BlobStore, key: str, headers: dict[str, str]) -> Response:
    """A small image, read whole (snapshots and photos are a few hundred kilobytes at most)."""
    return Response(blobs.get(key), media_type="image/jpeg", headers=headers)
