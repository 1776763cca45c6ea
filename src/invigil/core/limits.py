"""Request size limits: headers and bodies are bounded before anything buffers them.

Two layers, because either alone leaves a gap:

- ``BodyLimitMiddleware`` (pure ASGI, inside the app): a request whose Content-Length exceeds
  its route's limit gets 413 before the application runs; a body without a length (chunked)
  is counted as it streams and the read that crosses the limit raises 413, so no endpoint ever
  holds more than the limit in memory. It also refuses oversized headers (431) for servers
  that do not bound them.
- ``BoundedHttpToolsProtocol`` (the HTTP server, used by ``invigil serve``): uvicorn's default
  httptools parser buffers a header of any size before the application sees it; this one
  counts the bytes of a request's head as they arrive and answers 431 past the cap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Request line plus every header; browsers send a few kilobytes at most (cookies included).
MAX_HEADER_BYTES = 32 * 1024
# JSON bodies of every route without a rule of its own: help texts, events, scores.
DEFAULT_BODY_BYTES = 256 * 1024
# Multipart framing around the files a form carries.
FORM_OVERHEAD = 64 * 1024

TOO_LARGE_MESSAGE = "请求内容过大。"

# The largest integer a request may carry where the database keeps an INTEGER (event and
# chunk numbers): larger values are a 422, never an overflow inside the database.
MAX_INT = 2**31 - 1


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body crosses its limit. An HTTPException, so
    FastAPI passes it through body parsing unchanged and the error handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, TOO_LARGE_MESSAGE)
        self.limit = limit


@dataclass(frozen=True)
class BodyRule:
    method: str
    path: re.Pattern[str]
    limit: int


def rule(method: str, pattern: str, limit: int) -> BodyRule:
    return BodyRule(method, re.compile(pattern), limit)


def too_large_response(limit: int) -> JSONResponse:
    body = {"error": {"code": "too_large", "message": TOO_LARGE_MESSAGE, "limit": limit}}
    # The client may still be sending: tell it the connection ends here.
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        rules: Sequence[BodyRule],
        default: int = DEFAULT_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.rules = list(rules)
        self.default = default
        self.max_header_bytes = max_header_bytes

    def limit_for(self, method: str, path: str) -> int:
        for r in self.rules:
            if r.method == method and r.path.fullmatch(path):
                return r.limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        head += sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head > self.max_header_bytes:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009})
                return
            body = {"error": {"code": "headers_too_large", "message": "请求头过大。"}}
            await JSONResponse(body, status_code=431, headers={"Connection": "close"})(
                scope, receive, send
            )
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope["path"]:
            # No identifier or parameter of this API holds a NUL; PostgreSQL text cannot.
            body = {"error": {"code": "invalid_request", "message": "请求地址含有无效字符。"}}
            await JSONResponse(body, status_code=422)(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large_response(limit)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            # Only reached when nothing inside turned it into a response (e.g. a raw ASGI
            # route); once a response started there is nothing left to tell the client.
            if started:
                raise
            await too_large_response(exc.limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on each request's head (request line and
    headers): bytes that arrive before the head is complete are counted, and past
    ``MAX_HEADER_BYTES`` the connection gets 431 and is closed."""

    max_head_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_body = False

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            end = data.find(b"\r\n\r\n")  # a body may follow the head in the same read
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def _refuse_head(self) -> None:
        msg = b"Request header fields too large."
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(msg)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + msg
        )
        self.transport.close()
