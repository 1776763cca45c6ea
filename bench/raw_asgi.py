"""The baseline for bench/ingest.py: the least a Python ASGI server can do per upload.

Every request's body is written to a new file and fsynced, then 201. No routing, no auth, no
hashing, no database. Served by uvicorn exactly like ``invigil serve`` (httptools, uvloop), but
without the access log. Run: ``python bench/raw_asgi.py --port 8100 --dir /tmp/raw``.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DIR = os.environ.get("RAW_ASGI_DIR", "/tmp/raw-asgi")
_names = itertools.count()


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                os.makedirs(DIR, exist_ok=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(parts)
    status = 200
    if scope["method"] in ("PUT", "POST"):
        # fsync blocks: off the event loop, as any real server must.
        await anyio.to_thread.run_sync(_write, os.path.join(DIR, str(next(_names))), body)
        status = 201
    payload = b'{"ok":true}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--dir", default=os.environ.get("RAW_ASGI_DIR", "/tmp/raw-asgi"))
    args = parser.parse_args()
    global DIR
    DIR = args.dir
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
