"""Security headers on every HTTP response, pages and API alike.

The pages are buildless ES modules with no inline script or style, so scripts and styles come
from the server only. What else the pages use, and why the policy allows it:
- ``blob:`` images, media, frames and objects: photos, recordings and attachments fetched
  with the bearer token are shown through object URLs (a blob: URL is always same-origin);
- ``data:`` images: the binding QR code is an SVG data URL, the favicon is ``data:,``;
- WebSockets to this host: the proctor console;
- ``'unsafe-eval'`` in script-src: no page evaluates strings, but browser automation does —
  Playwright's ``wait_for_function`` compiles its predicate inside the page, and exam offices
  drive these pages with it for rehearsals and acceptance checks. Inline and foreign scripts,
  the way injected markup would run, stay blocked.
"""

from __future__ import annotations

from functools import lru_cache

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"


@lru_cache(maxsize=256)  # one string per Host seen, instead of one join per response
def content_security_policy(host: str) -> str:
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-eval'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "frame-src 'self' blob:",
            "object-src 'self' blob:",
            "worker-src 'self' blob:",
            f"connect-src 'self'{sockets}",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The Host header only shapes the policy of the response to this same request.
        host = "".join(
            c for c in Headers(scope=scope).get("host", "") if c.isalnum() or c in ".:-[]"
        )
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", content_security_policy(host))
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if https:
                    # Only over HTTPS: a browser ignores it on plain HTTP, and a server reached
                    # by plain HTTP on a LAN must stay reachable.
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
