"""A small HTTP/1.1 client on asyncio streams: one keep-alive connection per simulated device
stream, as a browser keeps one, and little CPU per request so that one load-generator process
can play hundreds of candidates (a general client costs several times as much per request,
which would measure the generator instead of the server)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def retry_after(self, default: float = 5.0) -> float:
        value = self.headers.get("retry-after", "")
        return float(value) if value.strip().isdigit() else default


class HTTPError(Exception):
    """The connection failed or the answer was not HTTP (the request may be retried)."""


class Connection:
    """One keep-alive connection to ``base_url``; reconnects after an error."""

    def __init__(self, base_url: str, *, verify: bool = True, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.host_header = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.ssl: ssl.SSLContext | None = None
        if self.https:
            self.ssl = ssl.create_default_context()
            if not verify:
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Response:
        try:
            return await asyncio.wait_for(self._request(method, path, body, headers), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            raise HTTPError(f"{type(exc).__name__}: {exc}") from None

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl
            )
        assert self.reader is not None
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if body:
            self.writer.write(body)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        head = await self.reader.readuntil(b"\r\n\r\n")
        found: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                found[name.strip().lower()] = value.strip()
        if found.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(int(found.get("content-length", "0")))
        if found.get("connection", "").lower() == "close":
            self.close()
        return Response(int(status_line.split()[1]), found, data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = "----invigilrehearsal7d1f"
    out = bytearray()
    for name, value in fields.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, (filename, data, ctype) in files.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
