"""Files left by a crash between the rename and the commit are found and removed; nothing a
row names is ever touched, and nothing younger than the grace period."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from conftest import bearer
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.recordings import keys, orphans
from recordings.conftest import entered, new_recording, put


def _age(path: os.PathLike[str], hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_orphans_are_found_by_age_and_reference_only(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, b"chunk zero").status_code == 201
    jpeg = b"\xff\xd8\xff" + b"snap" * 10
    r = client.post(
        "/api/v1/snapshots",
        data={"kind": "webcam"},
        files={"image": ("s.jpg", jpeg, "image/jpeg")},
        headers=bearer(token),
    )
    assert r.status_code == 201

    blobs = app_ctx.blobs
    # What a crash leaves: a chunk renamed into place whose row never committed, a snapshot
    # likewise, a temp file of a body that was streaming in; plus one fresh orphan-to-be (an
    # upload between its rename and its commit right now).
    stray_chunk = blobs.local_path(keys.chunk_key(attempt_id, rec, 1, "ab" * 32))
    stray_snap = blobs.local_path(keys.snapshot_key(attempt_id, "webcam", "f" * 32))
    stray_tmp = blobs.temp_dir() / "upload-123"
    fresh = blobs.local_path(keys.chunk_key(attempt_id, rec, 2, "cd" * 32))
    for p in (stray_chunk, stray_snap, stray_tmp, fresh):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 100)
    every_file = [p for p in blobs.root.rglob("*") if p.is_file()]
    for p in every_file:
        if p != fresh:
            _age(p, 2)

    with transaction(app_ctx.db) as session:
        found = orphans.find(session, blobs)
    assert sorted(found.files) == sorted([stray_chunk, stray_snap, stray_tmp])
    assert found.bytes == 300
    assert orphans.remove(found) == 3
    left = {p for p in blobs.root.rglob("*") if p.is_file()}
    assert left == set(every_file) - {stray_chunk, stray_snap, stray_tmp}
    # The acknowledged chunk still reads back; a second sweep finds nothing.
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == [0]
    with transaction(app_ctx.db) as session:
        assert orphans.find(session, blobs).files == []
        assert orphans.find(session, blobs, grace=timedelta(0)).files == [fresh]


def test_storage_sweep_command(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    from evidence.conftest import run_cli

    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, b"chunk zero").status_code == 201
    stray = app_ctx.blobs.local_path(keys.chunk_key(attempt_id, rec, 1, "ab" * 32))
    stray.write_bytes(b"y" * 10)
    for p in app_ctx.blobs.root.rglob("*"):
        if p.is_file():
            _age(p, 3)
    dry = run_cli(app_ctx.settings, "storage", "sweep", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == stray.relative_to(app_ctx.blobs.root).as_posix()
    assert "10 字节" in dry.stdout and stray.exists()
    done = run_cli(app_ctx.settings, "storage", "sweep", "--grace", "2h")
    assert done.returncode == 0 and "已删除 removed: 1" in done.stdout, done.stdout
    assert not stray.exists()
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == [0]
