"""API errors: one shape for every failure, ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from invigil.core.limits import BodyTooLarge, too_large_response
from invigil.core.storage import BlobPurged

log = logging.getLogger(__name__)


class APIError(Exception):
    """A failure the client should see. ``keep_changes`` commits what the request wrote so far
    (e.g. the audit event of a refused login) instead of rolling it back."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        keep_changes: bool = False,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.keep_changes = keep_changes
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def not_found(what: str = "资源") -> APIError:
    return APIError(404, "not_found", f"{what}不存在。")


def unauthorized(message: str = "请先登录。") -> APIError:
    return APIError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "没有权限执行此操作。") -> APIError:
    return APIError(403, "forbidden", message)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_request",
}


def json_safe(value: Any) -> Any:
    """``value`` with NaN and ±Infinity as strings: an error that names a client's bad number
    must still be valid JSON (the response would otherwise fail as a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(json_safe(exc.body()), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BlobPurged)
    async def _purged(_: Request, exc: BlobPurged) -> JSONResponse:
        body = {"error": {"code": "purged", "message": "该数据已按考试的保存期限清除。"}}
        return JSONResponse(body, status_code=410)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Field names and reasons only: echoing the input could repeat a secret or a question.
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "reason": err.get("msg", "")}
            for err in exc.errors()
        ]
        body = {
            "error": {
                "code": "invalid_request",
                "message": "请求格式不正确。",
                "problems": problems,
            }
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # What the database refuses to store (PostgreSQL: a NUL character in text, a number
        # out of range) is the client's input, not a server fault.
        log.info("database refused the input: %s", type(exc.orig).__name__)
        body = {"error": {"code": "invalid_request", "message": "请求含有无法保存的字符或数值。"}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return too_large_response(exc.limit)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
