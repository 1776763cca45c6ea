"""Security headers on every response (issue 13 #13)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def test_every_response_carries_the_headers(client: TestClient) -> None:
    responses = [
        client.get("/api/v1/health"),
        client.get("/desk/"),
        client.get("/proctor/app.js"),
        client.get("/api/v1/staff/me"),  # 401
        client.get("/no/such/page"),  # 404
        client.post("/api/v1/staff/login", content=b"x" * 20000),  # 413
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 401, 404, 413]
    for r in responses:
        for name, value in EXPECTED.items():
            assert r.headers[name] == value, (r.url, name)
        policy = r.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self' 'unsafe-eval';" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "connect-src 'self' ws://testserver wss://testserver" in policy
        # Plain HTTP: no HSTS (a LAN server reached over HTTP must stay reachable).
        assert "strict-transport-security" not in r.headers


def test_hsts_only_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://exam.example.org") as c:
        r = c.get("/api/v1/health")
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert "wss://exam.example.org" in r.headers["content-security-policy"]
