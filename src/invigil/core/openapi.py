"""The OpenAPI document, completed where FastAPI cannot see what a route does.

FastAPI documents the success status and 422 of each route. Routes also answer with the
project's error shape for the reasons every route shares (no or a bad token, a role or room
that is not allowed, an unknown id, a state that does not allow it, a body too large, a rate
limit), some return files rather than JSON, some read their body by hand, and some string
parameters accept only a fixed set of values. This adds all of that, so a client generated
from the document — or schemathesis, tests/security/test_schemathesis.py — knows every
answer it can get.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from invigil.attempts.api import CLIENT_EVENT_KINDS
from invigil.attempts.phone_api import PHONE_EVENT_KINDS
from invigil.core.backpressure import DEFERRABLE
from invigil.recordings.models import KINDS
from invigil.review.exports import FORMATS, WHATS

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}
ERRORS = {
    "400": "请求不正确 / bad request",
    "401": "未登录或登录已失效 / no valid token",
    "403": "无权访问或不在允许的时间 / not allowed (role, room, time window)",
    "404": "不存在 / not found",
    "409": "当前状态不允许 / conflicts with the current state",
    "410": "已按保存期限清除 / purged after the retention period",
    "413": "请求内容过大 / body too large",
    "422": "请求格式不正确 / invalid request",
    "429": "请求过于频繁 / rate limited (see Retry-After)",
}
# What a loaded process answers the traffic it may defer (core/backpressure.py).
BUSY = "服务器繁忙，请按 Retry-After 稍后重试 / server busy, retry after Retry-After seconds"
BINARY = {"schema": {"type": "string", "format": "binary"}}
JPEG = {"image/jpeg": BINARY}
VIDEO = {"video/webm": BINARY, "video/mp4": BINARY, "application/octet-stream": BINARY}

# (method, path) → the content of its 200 answer, for routes that return files.
FILES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/snapshots/{snapshot_id}"): JPEG,
    ("get", "/api/v1/candidate/evidence/snapshot"): JPEG,
    ("get", "/api/v1/review/attempts/{attempt_id}/photo"): JPEG,
    ("get", "/api/v1/staff/login-help/{request_id}/face"): JPEG,
    ("get", "/api/v1/staff/login-help/{request_id}/photo"): JPEG,
    ("get", "/api/v1/recordings/{recording_id}/media"): VIDEO,
    ("get", "/api/v1/scoring/sheets/{sheet_id}/media/{index}"): VIDEO,
    ("get", "/api/v1/candidate/attachments/{attachment_id}"): {"*/*": BINARY},
    ("get", "/api/v1/admin/exams/{exam_id}/export"): {
        "text/csv": BINARY,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": BINARY,
    },
}
# Media with Range requests also answer 206 with part of the file.
PARTIAL = {
    "/api/v1/recordings/{recording_id}/media",
    "/api/v1/scoring/sheets/{sheet_id}/media/{index}",
}

# Query parameters with a fixed set of values: (path, name) → values.
QUERY_ENUMS: dict[tuple[str, str], list[str]] = {
    ("/api/v1/admin/exams/{exam_id}/export", "what"): list(WHATS),
    ("/api/v1/admin/exams/{exam_id}/export", "format"): list(FORMATS),
}
# Body fields with a fixed set of values: (component schema, property) → values.
BODY_ENUMS: dict[tuple[str, str], list[str]] = {
    ("CreateBody", "kind"): list(KINDS),
    ("ClientEvent", "kind"): sorted(CLIENT_EVENT_KINDS | PHONE_EVENT_KINDS),
}

# Routes that read their body themselves (streamed), documented here.
CHUNK_PUT = ("put", "/api/v1/recordings/{recording_id}/chunks/{seq}")
SNAPSHOT_POST = ("post", "/api/v1/snapshots")


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not path.startswith("/api/") or not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(status, {"description": description, "content": error})
            if (method.upper(), path) in DEFERRABLE:
                responses.setdefault("503", {"description": BUSY, "content": error})
            files = FILES.get((method, path))
            if files is not None and "200" in responses:
                responses["200"]["content"] = files
            if path in PARTIAL:
                responses["206"] = {"description": "Range 请求的部分内容", "content": VIDEO}
                responses["416"] = {"description": "Range 超出文件范围 / range not satisfiable"}
            for param in op.get("parameters", []):
                values = QUERY_ENUMS.get((path, param.get("name", "")))
                if values is not None:
                    param["schema"] = {**param.get("schema", {}), "enum": values}
    for (schema, prop), values in BODY_ENUMS.items():
        field = components.get(schema, {}).get("properties", {}).get(prop)
        if field is not None:
            field["enum"] = values
            field.pop("maxLength", None)
    _document_streamed_bodies(doc)
    return doc


def _document_streamed_bodies(doc: dict[str, Any]) -> None:
    paths = doc.get("paths", {})
    chunk = paths.get(CHUNK_PUT[1], {}).get(CHUNK_PUT[0])
    if chunk is not None:
        chunk["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": BINARY},
        }
        chunk.setdefault("parameters", []).append(
            {
                "name": "X-Chunk-SHA256",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
            }
        )
        # 201 stored; 200 the same bytes were already held.
        chunk["responses"].setdefault("200", chunk["responses"].get("201", {"description": "OK"}))
    snapshot = paths.get(SNAPSHOT_POST[1], {}).get(SNAPSHOT_POST[0])
    if snapshot is not None:
        snapshot["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["kind", "image"],
                        "properties": {
                            "kind": {"type": "string", "enum": list(KINDS)},
                            "image": {"type": "string", "format": "binary"},
                        },
                    }
                }
            },
        }


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = _complete(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
