"""/metrics: who may read it, and that its numbers follow what happens (one process; the
several-process sums are in tests/multiprocess)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from conftest import bearer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from recordings.conftest import entered, new_recording, put, sha

from invigil.app import create_app
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.db import Database

LOOPBACK = ("127.0.0.1", 50123)
CHUNK_ROUTE = "/api/v1/recordings/{recording_id}/chunks/{seq}"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def local(app: FastAPI) -> Iterator[TestClient]:
    """A client whose address is loopback (the default allow list)."""
    with TestClient(app, client=LOOPBACK) as c:
        yield c


def test_only_allowed_addresses_read_metrics(
    settings: Settings, clock: FrozenClock, db: Database
) -> None:
    app = create_app(settings, clock=clock, db=db, start_worker=False)
    with TestClient(app, client=LOOPBACK) as c:
        assert c.get("/metrics").status_code == 200
    with TestClient(app, client=("192.0.2.10", 4000)) as c:
        r = c.get("/metrics")
        assert r.status_code == 404
        assert "invigil" not in r.text
        # A header does not make a stranger local: no proxy is trusted.
        assert c.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404

    # Behind a trusted reverse proxy the forwarded client decides, as for the rate limits.
    behind = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    app = create_app(behind, clock=clock, db=db, start_worker=False)
    with TestClient(app, client=LOOPBACK) as c:
        assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
        assert c.get("/metrics").status_code == 200

    # An operators' network.
    ops = settings.model_copy(update={"metrics_allow": "10.0.0.0/8"})
    app = create_app(ops, clock=clock, db=db, start_worker=False)
    with TestClient(app, client=("10.20.30.40", 4000)) as c:
        assert c.get("/metrics").status_code == 200
    with TestClient(app, client=LOOPBACK) as c:
        assert c.get("/metrics").status_code == 404


def test_malformed_allow_list_refuses_to_start(settings: Settings, db: Database) -> None:
    bad = settings.model_copy(update={"metrics_allow": "127.0.0.1,not-an-address"})
    with pytest.raises(SystemExit, match="INVIGIL_METRICS_ALLOW"):
        create_app(bad, db=db, start_worker=False)


def test_metrics_follow_uploads_jobs_and_sessions(
    local: TestClient, clock: FrozenClock, exam_id: str
) -> None:
    before = scrape(local)
    token, _ = entered(local, clock, exam_id)
    rec = new_recording(local, token)
    chunks = [b"first chunk bytes", b"second chunk"]
    for seq, data in enumerate(chunks):
        assert put(local, token, rec, seq, data).status_code == 201

    during = scrape(local)
    assert value(during, "invigil_recordings_open") == 1
    assert value(during, "invigil_upload_backlog_chunks") == 2
    assert value(during, "invigil_upload_backlog_bytes") == sum(map(len, chunks))
    assert value(during, "invigil_candidates_online") == 1
    committed = value(during, "invigil_group_commit_batch_size_sum") - value(
        before, "invigil_group_commit_batch_size_sum"
    )
    assert committed == 2  # two chunks, whatever the batches
    assert value(during, "invigil_group_commit_duration_seconds_count") > value(
        before, "invigil_group_commit_duration_seconds_count"
    )
    timed = value(
        during,
        "invigil_http_request_duration_seconds_count",
        route=CHUNK_ROUTE,
        method="PUT",
        status="2xx",
    ) - value(
        before,
        "invigil_http_request_duration_seconds_count",
        route=CHUNK_ROUTE,
        method="PUT",
        status="2xx",
    )
    assert timed == 2
    # One series per route template, never one per recording.
    assert not any(rec in dict(labels).get("route", "") for _, labels in during)

    r = local.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 2, "sha256": sha(b"".join(chunks))},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    after = scrape(local)
    assert value(after, "invigil_recordings_open") == 0
    assert value(after, "invigil_upload_backlog_chunks") == 0
    # The assembly job waits (no worker runs in this app): depth 1, lag grows with the clock.
    assert value(after, "invigil_job_queue_depth", kind="recording.assemble") == 1
    clock.advance(timedelta(seconds=30))
    later = scrape(local)
    assert value(later, "invigil_job_queue_lag_seconds", kind="recording.assemble") >= 30
    assert value(later, "invigil_candidates_online") == 0  # not seen for 30 s
    assert (
        value(
            later,
            "invigil_http_request_duration_seconds_count",
            route="/metrics",
            method="GET",
            status="2xx",
        )
        >= 3
    )
