"""Throttles of the routes that take no token, counted in the database (docs/security.md)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_binding_code_guesses_are_capped_per_address(app: FastAPI, exam_id: str) -> None:
    with TestClient(app, client=("203.0.113.90", 40000)) as guesser:
        codes = [
            guesser.post("/api/v1/phone/bind", json={"code": f"{i:08d}"}).status_code
            for i in range(21)
        ]
        assert codes == [404] * 20 + [429]
        r = guesser.post("/api/v1/phone/bind", json={"code": "12345678"})
        assert r.json()["error"]["code"] == "too_many_attempts"
    with TestClient(app, client=("203.0.113.91", 40000)) as phone:
        assert phone.post("/api/v1/phone/bind", json={"code": "00000000"}).status_code == 404


def test_the_count_is_shared_by_every_process(app: FastAPI, exam_id: str) -> None:
    """A second application on the same database (another server process) sees the hits."""
    from invigil.app import create_app

    ctx = app.state.ctx
    other = create_app(ctx.settings, clock=ctx.clock, db=ctx.db, start_worker=False)
    address = ("203.0.113.92", 40000)
    with TestClient(app, client=address) as one, TestClient(other, client=address) as two:
        for i in range(10):
            assert one.post("/api/v1/phone/bind", json={"code": f"{i:08d}"}).status_code == 404
            assert two.post("/api/v1/phone/bind", json={"code": f"{i:08d}"}).status_code == 404
        assert one.post("/api/v1/phone/bind", json={"code": "12345678"}).status_code == 429
        assert two.post("/api/v1/phone/bind", json={"code": "12345678"}).status_code == 429
