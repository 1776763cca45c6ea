"""Face login and liveness limits (issue 13 #6): per client address, a ticket's own budget
that strangers cannot use up, no roster oracle, and the exemption for rehearsals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import FACES, T, exam_doc, import_exam
from fastapi import FastAPI
from fastapi.testclient import TestClient

from invigil.app import create_app
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import Database


@contextmanager
def from_address(app: FastAPI, address: str) -> Iterator[TestClient]:
    with TestClient(app, client=(address, 40000)) as c:
        yield c


def face_login(c: TestClient, exam: str, ticket: str, photo: str) -> Any:
    return c.post(
        "/api/v1/candidate/login",
        data={"exam_id": exam, "ticket": ticket},
        files={"face": ("face.jpg", (FACES / photo).read_bytes(), "image/jpeg")},
    )


def test_a_strangers_images_do_not_lock_the_candidate_out(
    app: FastAPI, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    with from_address(app, "203.0.113.50") as attacker:
        # The reported attack: images without a face (and a stranger's face) for a real ticket.
        for _ in range(10):
            assert face_login(attacker, exam_id, "1002", "empty.jpg").status_code == 422
        for _ in range(5):
            assert face_login(attacker, exam_id, "1002", "tom_hanks.jpg").status_code == 403
    with from_address(app, "198.51.100.20") as candidate:
        r = face_login(candidate, exam_id, "1002", "biden.jpg")
        assert r.status_code == 200, r.text
    with from_address(app, "203.0.113.50") as attacker:
        # The attacker's own address runs out (20 refusals in 10 minutes), for every ticket.
        codes = [face_login(attacker, exam_id, "9999", "empty.jpg").status_code for _ in range(6)]
        assert codes == [404] * 5 + [429]
        r = face_login(attacker, exam_id, "1001", "obama2.jpg")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "too_many_attempts"
        assert 0 < int(r.headers["Retry-After"]) <= 600
        clock.advance(timedelta(minutes=10, seconds=1))
        assert face_login(attacker, exam_id, "1001", "obama2.jpg").status_code == 200


def test_failures_from_the_candidates_own_address_use_its_budget(
    app: FastAPI, clock: FrozenClock, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    with from_address(app, "198.51.100.30") as desk:
        assert face_login(desk, exam_id, "1002", "biden.jpg").status_code == 200
        # The same desk later fails with a face that does not match: the ticket's own count.
        for _ in range(10):
            assert face_login(desk, exam_id, "1002", "tom_hanks.jpg").status_code == 403
        r = face_login(desk, exam_id, "1002", "biden.jpg")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "300"
    with from_address(app, "198.51.100.31") as elsewhere:
        assert face_login(elsewhere, exam_id, "1002", "biden.jpg").status_code == 429
        # No-face images from the verified desk never counted against the ticket anyway.
        clock.advance(timedelta(minutes=5, seconds=1))
        assert face_login(elsewhere, exam_id, "1001", "obama2.jpg").status_code == 200


def test_exempt_addresses_have_no_per_address_limit(
    settings: Settings, clock: FrozenClock, db: Database, exam_id: str
) -> None:
    clock.set(T - timedelta(minutes=20))
    exempt = settings.model_copy(update={"rate_limit_exempt": "10.0.0.0/8"})
    app = create_app(exempt, clock=clock, db=db, start_worker=False)
    with from_address(app, "10.20.30.40") as lab:
        codes = [face_login(lab, exam_id, "9999", "empty.jpg").status_code for _ in range(25)]
        assert codes == [404] * 25
        assert face_login(lab, exam_id, "1001", "obama2.jpg").status_code == 200


def _challenge(c: TestClient, exam: str, ticket: str) -> Any:
    return c.post("/api/v1/candidate/liveness", json={"exam_id": exam, "ticket": ticket})


def test_liveness_answers_unknown_tickets_like_known_ones(
    app: FastAPI, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path, exam_id: str
) -> None:
    doc = exam_doc()
    doc["exam"]["rules"]["liveness"] = "required"
    live = import_exam(app_ctx, tmp_path / "live", doc)
    clock.set(T - timedelta(minutes=20))
    with from_address(app, "203.0.113.60") as c:
        known, unknown = _challenge(c, live, "1001"), _challenge(c, live, "0000")
        assert known.status_code == unknown.status_code == 200
        assert set(known.json()) == set(unknown.json())
        assert known.json()["required"] is unknown.json()["required"] is True
        assert len(unknown.json()["challenge_id"]) == len(known.json()["challenge_id"])
        assert unknown.json()["frames"] == known.json()["frames"]
        # Without liveness both say so alike.
        assert _challenge(c, exam_id, "1001").json() == {"required": False}
        assert _challenge(c, exam_id, "0000").json() == {"required": False}
        # Limited per address: 40 challenges in 10 minutes (4 used above).
        codes = [_challenge(c, live, str(1000 + i)).status_code for i in range(37)]
        assert codes == [200] * 36 + [429]
        assert _challenge(c, live, "1001").status_code == 429
    with from_address(app, "203.0.113.61") as other:
        assert _challenge(other, live, "1001").status_code == 200


def test_logins_in_flight_hold_the_address_budget(
    app: FastAPI, app_ctx: AppContext, clock: FrozenClock, exam_id: str
) -> None:
    """A burst cannot overshoot: each login counts its hit before the face is judged (slow
    work), so the 21st request arriving while 20 are still being judged is refused at once;
    a login that succeeds gives its hit back."""
    from invigil.attempts.api import FACE_ADDRESS_RULE
    from invigil.core import ratelimit
    from invigil.core.db import transaction

    clock.set(T - timedelta(minutes=20))
    bucket = "face-login:addr:192.0.2.9"
    now = clock.now()
    held = []
    for _ in range(FACE_ADDRESS_RULE.limit):
        verdict, hit = ratelimit.reserve(app_ctx.db, bucket, FACE_ADDRESS_RULE, now)
        assert verdict.allowed and hit is not None
        held.append(hit)
    verdict, hit = ratelimit.reserve(app_ctx.db, bucket, FACE_ADDRESS_RULE, now)
    assert not verdict.allowed and hit is None and verdict.retry_after > 0
    with from_address(app, "192.0.2.9") as c:
        assert face_login(c, exam_id, "1001", "obama2.jpg").status_code == 429
    for hit in held:
        ratelimit.release(app_ctx.db, hit)
    with from_address(app, "192.0.2.9") as c:
        assert face_login(c, exam_id, "1001", "obama2.jpg").status_code == 200
    with transaction(app_ctx.db) as session:
        assert ratelimit.count(session, bucket, now - timedelta(hours=1)) == 0
