"""Uploads answered by one group commit: the rows they need are looked up together, their rows
inserted together, and each still gets its own answer (recordings/batch.py)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import bearer, both_backends
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import select

from invigil.attempts.models import AuthSession
from invigil.core import metrics
from invigil.core.clock import FrozenClock, ensure_utc
from invigil.core.context import AppContext
from invigil.core.security import token_digest
from invigil.recordings import batch
from recordings.conftest import entered, new_recording, phone_token, put, stored_keys

A, B = b"\x1aE\xdf\xa3" + os.urandom(2000), b"\x1aE\xdf\xa3" + os.urandom(2000)


def _snapshot(client: TestClient, token: str, kind: str) -> Response:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buf, "JPEG")
    files = {"image": ("s.jpg", buf.getvalue(), "image/jpeg")}
    return client.post("/api/v1/snapshots", data={"kind": kind}, files=files, headers=bearer(token))


def _in_one_batch(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    requests: list[Callable[[TestClient], Response]],
    queued: int | None = None,
) -> tuple[list[Response], list[int]]:
    """Send ``requests`` while the committer is held, so that one batch takes them all
    (``queued`` of them, if some are refused before the queue); their answers in order, and
    the sizes of the batches committed meanwhile."""
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    queued = len(requests) if queued is None else queued
    release = threading.Event()
    sizes: list[int] = []
    transact, observe = batch.Committer._transact, metrics.observe_batch

    def held(committer: batch.Committer, items: list[Any]) -> Any:
        release.wait(10)  # before the transaction: SQLite's lock stays free for the token gate
        return transact(committer, items)

    monkeypatch.setattr(batch.Committer, "_transact", held)
    monkeypatch.setattr(metrics, "observe_batch", lambda n, s: (sizes.append(n), observe(n, s)))
    first = batch.submit(ctx.db, lambda b: None)  # the committer takes it, and waits
    answers: list[Response | None] = [None] * len(requests)

    def send(i: int) -> None:
        with TestClient(client.app) as own:  # a client per thread: requests side by side
            answers[i] = requests[i](own)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while batch.queue_depth() < queued and time.monotonic() < deadline:
        time.sleep(0.01)
    depth = batch.queue_depth()
    release.set()
    first.result(timeout=10)
    for t in threads:
        t.join(timeout=20)
    assert depth == queued, "the uploads did not all reach the queue"
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None], sizes


@both_backends
def test_one_batch_of_mixed_uploads_answers_each_on_its_own(
    client: TestClient,
    clock: FrozenClock,
    exam_id: str,
    app_ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    other_token, _ = entered(client, clock, exam_id, ticket="1002")
    phone = phone_token(app_ctx, attempt_id)
    clock.advance(timedelta(minutes=11))  # past T: the sessions are due a seen mark
    webcam, screen = new_recording(client, token), new_recording(client, token, "screen")
    evidence = new_recording(client, phone, "evidence")
    assert put(client, token, webcam, 0, A).status_code == 201  # held before the batch
    clock.advance(timedelta(seconds=10))

    answers, sizes = _in_one_batch(
        client,
        monkeypatch,
        [
            lambda c: put(c, token, webcam, 0, A),  # held, same bytes: 200
            lambda c: put(c, token, webcam, 0, B),  # held, other bytes: 409
            lambda c: put(c, token, webcam, 1, A),  # new: 201 …
            lambda c: put(c, token, webcam, 1, A),  # … its twin in the same batch: 200
            lambda c: put(c, token, screen, 1, A),  # new: 201 …
            lambda c: put(c, token, screen, 1, B),  # … other bytes in the same batch: 409
            lambda c: put(c, phone, evidence, 0, B),  # the phone's own stream: 201
            lambda c: put(c, other_token, webcam, 2, A),  # another candidate's recording: 404
            lambda c: put(c, phone, webcam, 3, A),  # the phone may not write the webcam: 403
            lambda c: _snapshot(c, token, "webcam"),  # 201
            lambda c: _snapshot(c, phone, "evidence"),  # 201
            lambda c: _snapshot(c, phone, "webcam"),  # 403
        ],
    )
    # The threads reach the queue in any order; the answers that depend on which of two twins
    # came first are checked as a pair.
    codes = [a.status_code for a in answers]
    assert sizes[-1] == len(answers), sizes  # one batch took them all
    assert codes[0] == 200 and codes[1] == 409, [a.text for a in answers[:2]]
    assert sorted(codes[2:4]) == [200, 201] and sorted(codes[4:6]) == [201, 409]
    assert codes[6:] == [201, 404, 403, 201, 201, 403], [a.text for a in answers[6:]]
    assert answers[7].json()["error"]["code"] == "not_found"

    # Each stored chunk holds the bytes its 201 was given, and nothing else was stored.
    screen_won = A if codes[4] == 201 else B
    want = {(webcam, 0): A, (webcam, 1): A, (screen, 1): screen_won, (evidence, 0): B}
    for rec, seq in want:
        owner = phone if rec == evidence else token
        listing = client.get(f"/api/v1/recordings/{rec}", headers=bearer(owner)).json()
        assert seq in listing["received"], (rec, seq)
    keys = stored_keys(app_ctx.blobs, f"recordings/{attempt_id}")
    assert len(keys) == len(want), keys
    assert sorted(app_ctx.blobs.get(k) for k in keys) == sorted(want.values())
    loser = answers[5] if codes[4] == 201 else answers[4]
    assert loser.json()["error"]["code"] == "chunk_conflict"

    # The two accepted snapshots are stored under their own kind and id, and are the picture
    # that was sent (decoded: a red 64×48 frame), the refused one is not stored at all.
    shots = stored_keys(app_ctx.blobs, f"snapshots/{attempt_id}")
    assert shots == sorted(
        f"snapshots/{attempt_id}/{kind}/{answers[i].json()['snapshot_id']}.jpg"
        for i, kind in ((9, "webcam"), (10, "evidence"))
    )
    for key in shots:
        picture = Image.open(io.BytesIO(app_ctx.blobs.get(key))).convert("RGB")
        r, g, b = picture.resize((1, 1)).getpixel((0, 0))
        assert picture.size == (64, 48) and r > 200 and g < 50 and b < 50, (key, r, g, b)

    # Both devices' sessions were marked seen by that batch, each once.
    secret = app_ctx.settings.effective_secret()
    with app_ctx.db.session() as s:
        for t in (token, phone):
            seen = s.scalar(
                select(AuthSession.last_seen_at).where(
                    AuthSession.token_digest == token_digest(secret, t)
                )
            )
            assert seen is not None and ensure_utc(seen) == clock.now()


def test_a_batch_item_that_fails_its_checks_leaves_the_others_alone(
    client: TestClient,
    clock: FrozenClock,
    exam_id: str,
    app_ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown token and an unknown recording among good uploads of one batch."""
    token, _ = entered(client, clock, exam_id)
    clock.advance(timedelta(minutes=11))
    webcam = new_recording(client, token)
    answers, sizes = _in_one_batch(
        client,
        monkeypatch,
        [
            lambda c: put(c, token, webcam, 0, A),
            lambda c: put(c, "not-a-token", webcam, 1, A),
            lambda c: put(c, token, "0" * 32, 0, A),
            lambda c: put(c, token, webcam, 2, B),
        ],
        queued=3,
    )
    # The unknown token is refused before the queue (the token gate): three in the batch.
    codes: list[Any] = [a.status_code for a in answers]
    assert sizes[-1] == 3 and codes == [201, 401, 404, 201], [a.text for a in answers]
    listing = client.get(f"/api/v1/recordings/{webcam}", headers=bearer(token)).json()
    assert listing["received"] == [0, 2]
