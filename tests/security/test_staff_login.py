"""Staff login throttle (issue 13 #5) and logout (#12)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from conftest import bearer, staff_token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.app import create_app
from invigil.attempts import sessions
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database, transaction

LOGIN = "/api/v1/staff/login"


@contextmanager
def from_address(app: FastAPI, address: str) -> Iterator[TestClient]:
    with TestClient(app, client=(address, 40000)) as c:
        yield c


def _try(c: TestClient, user: str, password: str) -> int:
    return c.post(LOGIN, json={"username": user, "password": password}).status_code


def test_wrong_passwords_back_off_per_username(
    app: FastAPI, clock: FrozenClock, exam_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="invigil.staff.service")
    with from_address(app, "203.0.113.5") as c:
        assert [_try(c, "p1", f"guess{i}") for i in range(5)] == [401] * 5
        r = c.post(LOGIN, json={"username": "p1", "password": "pw-p1"})
        # Even the right password waits: a guesser cannot tell a hit while throttled.
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2"
        assert r.json()["error"]["code"] == "too_many_attempts"
        assert r.json()["error"]["retry_after"] == 2
        assert "2 秒" in r.json()["error"]["message"]
    assert "staff login throttled: user='p1' address=203.0.113.5" in caplog.text
    assert "staff login failed: user='p1' address=203.0.113.5" in caplog.text
    assert "pw-p1" not in caplog.text and "guess" not in caplog.text

    # From another address the username is just as throttled (the per-username count).
    with from_address(app, "198.51.100.7") as c:
        assert _try(c, "p1", "pw-p1") == 429
        clock.advance(timedelta(seconds=2))
        assert _try(c, "p1", "guess5") == 401  # the sixth failure: the wait doubles
        r = c.post(LOGIN, json={"username": "p1", "password": "pw-p1"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "4"
        clock.advance(timedelta(seconds=3))
        assert _try(c, "p1", "pw-p1") == 429
        clock.advance(timedelta(seconds=1))
        assert _try(c, "p1", "pw-p1") == 200
        # Success resets the username's count: the next typo is an ordinary 401.
        assert _try(c, "p1", "typo") == 401
        assert _try(c, "p1", "pw-p1") == 200
        # Other usernames were never affected.
        assert _try(c, "p2", "pw-p2") == 200


def test_one_address_cannot_guess_across_usernames(
    app: FastAPI, clock: FrozenClock, exam_id: str
) -> None:
    with from_address(app, "203.0.113.9") as c:
        codes = [_try(c, f"user{i}", "x") for i in range(20)]
        assert codes == [401] * 20
        r = c.post(LOGIN, json={"username": "rev", "password": "pw-rev"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    with from_address(app, "203.0.113.10") as c:
        assert _try(c, "rev", "pw-rev") == 200  # the user from elsewhere is not locked out


def test_forty_fast_guesses_then_the_right_password_fails(app: FastAPI, exam_id: str) -> None:
    """The reported attack: 40 wrong passwords in quick succession, then the right one."""
    with from_address(app, "203.0.113.20") as c:
        codes = [_try(c, "rev", f"wrong{i}") for i in range(40)]
        assert codes.count(401) == 5 and codes.count(429) == 35
        assert _try(c, "rev", "pw-rev") == 429


def test_exempt_addresses_skip_the_address_limit_only(
    settings: Settings, clock: FrozenClock, db: Database, exam_id: str
) -> None:
    exempt = settings.model_copy(update={"rate_limit_exempt": "10.0.0.0/8, 192.0.2.1"})
    app = create_app(exempt, clock=clock, db=db, start_worker=False)
    with from_address(app, "10.1.2.3") as c:
        assert [_try(c, f"user{i}", "x") for i in range(25)] == [401] * 25
        # The per-username limit still holds for an exempt address.
        assert [_try(c, "p2", "x") for _ in range(6)] == [401] * 5 + [429]


def test_forwarded_for_counts_only_from_trusted_proxies(
    settings: Settings, clock: FrozenClock, db: Database, exam_id: str
) -> None:
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    app = create_app(proxied, clock=clock, db=db, start_worker=False)
    # Through the proxy each client is its own address: 20 failures lock out only that one.
    with from_address(app, "127.0.0.1") as c:
        for i in range(20):
            r = c.post(
                LOGIN,
                json={"username": f"u{i}", "password": "x"},
                headers={"X-Forwarded-For": "203.0.113.77"},
            )
            assert r.status_code == 401
        blocked = {"X-Forwarded-For": "203.0.113.77"}
        other = {"X-Forwarded-For": "203.0.113.78"}
        body = {"username": "rev", "password": "pw-rev"}
        assert c.post(LOGIN, json=body, headers=blocked).status_code == 429
        assert c.post(LOGIN, json=body, headers=other).status_code == 200
    # From an untrusted peer the header is ignored: it cannot dodge its own count.
    with from_address(app, "198.51.100.1") as c:
        for i in range(20):
            spoof = {"X-Forwarded-For": f"192.0.2.{i}"}
            assert c.post(LOGIN, json={"username": f"v{i}", "password": "x"}, headers=spoof)
        r = c.post(LOGIN, json={"username": "rev", "password": "pw-rev"})
        assert r.status_code == 429


def test_malformed_exempt_setting_refuses_to_start(
    settings: Settings, clock: FrozenClock, db: Database
) -> None:
    bad = settings.model_copy(update={"rate_limit_exempt": "10.0.0.0/33"})
    with pytest.raises(SystemExit, match="RATE_LIMIT_EXEMPT"):
        create_app(bad, clock=clock, db=db, start_worker=False)


def test_logout_revokes_the_token_and_its_signed_links(
    client: TestClient, app_ctx: AppContext, clock: FrozenClock, exam_id: str
) -> None:
    token = staff_token(client, "rev", "pw-rev")
    other = staff_token(client, "rev", "pw-rev")
    assert client.get("/api/v1/staff/me", headers=bearer(token)).status_code == 200
    with transaction(app_ctx.db) as session:
        auth = sessions.find(session, app_ctx, token)
        assert auth is not None
        link = sessions.signed_link(app_ctx, auth, f"/api/v1/recordings/{'0' * 32}/media")
    # The link authenticates (the recording is unknown: 404, not 401) until logout.
    assert client.get(link).status_code == 404
    r = client.post("/api/v1/staff/logout", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"logged_out": True}
    r = client.get("/api/v1/staff/me", headers=bearer(token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_revoked"
    assert client.post("/api/v1/staff/logout", headers=bearer(token)).status_code == 401
    r = client.get(link)
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_revoked"
    # Another session of the same user lives on.
    assert client.get("/api/v1/staff/me", headers=bearer(other)).status_code == 200
    assert client.post("/api/v1/staff/logout").status_code == 401
