"""The two hottest routes, chunk PUT and snapshot POST, reached without FastAPI's router.

Every upload used to walk the router's list of a hundred-odd routes (each a regex match),
solve the endpoint's dependencies and pass the exception middleware before reaching code
that needs only the request. This pure ASGI layer, innermost of the app's middleware (so
body limits, backpressure and security headers still apply), recognises exactly those two
requests by method and path and calls the same endpoint functions (recordings/api.py, token
gate included); their errors are rendered by the app's own exception handlers, so the answers
are byte for byte what the routed endpoints give. Everything else passes through untouched,
and the routes stay registered for the OpenAPI document. INVIGIL_FAST_UPLOAD_ROUTES=false
turns it off (bench/profile_upload.py measures both).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

CHUNK = re.compile(r"/api/v1/recordings/([^/]+)/chunks/([^/]+)")
SNAPSHOTS = "/api/v1/snapshots"


CHUNK_ROUTE = "/api/v1/recordings/{recording_id}/chunks/{seq}"


class FastUploadRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[str, Any] | None = None

    def _route(self, path_format: str) -> Any:
        """The registered route, put in the scope as the router would (per-route metrics and
        logs read ``scope["route"]``)."""
        if self._routes is None:
            from invigil.recordings import api

            self._routes = {getattr(r, "path_format", ""): r for r in api.router.routes}
        return self._routes.get(path_format)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "PUT" and path.startswith("/api/v1/recordings/"):
                found = CHUNK.fullmatch(path)
                if found:
                    await self._serve(scope, receive, send, "chunk", found.groups())
                    return
            elif method == "POST" and path == SNAPSHOTS:
                await self._serve(scope, receive, send, "snapshot", ())
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, what: str, args: tuple[str, ...]
    ) -> None:
        from invigil.recordings import api  # late: api imports the app's domains (cached)

        if what == "chunk":
            scope["path_params"] = {"recording_id": args[0], "seq": args[1]}
            route = self._route(CHUNK_ROUTE)
        else:
            route = self._route(SNAPSHOTS)
        if route is not None:
            scope["route"] = route
        request = Request(scope, receive)
        try:
            if what == "chunk":
                response: Any = await api.put_chunk(args[0], args[1], request)
            else:
                response = await api.post_snapshot(request)
        except Exception as exc:
            handler = _handler_for(scope["app"], exc)
            if handler is None:
                raise  # a 500, exactly as through the router
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(app: Any, exc: Exception) -> Any:
    handlers = getattr(app, "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
