"""Blobs left by a crash between the store's write and the commit are found and removed, on
both backends; nothing a row names is ever touched, and nothing younger than the grace period."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from conftest import bearer, both_backends
from fastapi.testclient import TestClient

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.recordings import keys, orphans
from recordings.conftest import entered, new_recording, put, stored_keys


def _age(path: os.PathLike[str], hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


@both_backends
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
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 1, "sha256": keys_sha(b"chunk zero")},
        headers=bearer(token),
    )
    assert r.status_code == 200

    blobs, scratch = app_ctx.blobs, app_ctx.settings.scratch_dir
    # What a crash leaves: a chunk stored whose row never committed, a snapshot likewise, the
    # join of a finalize that lost its race, a scratch file of a body that was streaming in.
    stray_chunk = keys.chunk_key(attempt_id, rec, 1, "ab" * 32)
    stray_snap = keys.snapshot_key(attempt_id, "webcam", "f" * 32)
    stray_join = keys.original_key(attempt_id, rec, "ee" * 32)
    for key in (stray_chunk, stray_snap, stray_join):
        blobs.put(key, b"x" * 100)
    stray_tmp = scratch / "chunk-123"
    stray_tmp.write_bytes(b"x" * 100)
    _age(stray_tmp, 2)
    known = {*stored_keys(blobs, f"recordings/{attempt_id}")}
    known |= {*stored_keys(blobs, f"snapshots/{attempt_id}")}

    # Nothing is old enough yet (the blobs were all written just now).
    with transaction(app_ctx.db) as session:
        fresh = orphans.find(session, blobs, scratch)
    assert [k for k in fresh.keys if attempt_id in k] == [] and fresh.files == [stray_tmp]
    # With no grace, exactly the three strays of this attempt (other tests share an S3 bucket).
    with transaction(app_ctx.db) as session:
        found = orphans.find(session, blobs, scratch, grace=timedelta(0))
    mine = sorted(k for k in found.keys if attempt_id in k)
    assert mine == sorted([stray_chunk, stray_snap, stray_join])
    found.keys = mine
    found.files = [stray_tmp]
    assert orphans.remove(blobs, found) == 4
    left = {*stored_keys(blobs, f"recordings/{attempt_id}")}
    left |= {*stored_keys(blobs, f"snapshots/{attempt_id}")}
    assert left == known - {stray_chunk, stray_snap, stray_join} and not stray_tmp.exists()
    # The acknowledged chunk and the finalized join still read back.
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == [0]
    p1 = client.post("/api/v1/staff/login", json={"username": "p1", "password": "pw-p1"})
    original = client.get(
        f"/api/v1/recordings/{rec}/media?original=1",
        headers=bearer(p1.json()["token"]),
    )
    assert original.content == b"chunk zero"


def keys_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_storage_sweep_command(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    from evidence.conftest import run_cli

    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    assert put(client, token, rec, 0, b"chunk zero").status_code == 201
    stray = keys.chunk_key(attempt_id, rec, 1, "ab" * 32)
    app_ctx.blobs.put(stray, b"y" * 10)
    root = Path(app_ctx.settings.blob_dir)
    for p in root.rglob("*"):
        if p.is_file():
            _age(p, 3)
    dry = run_cli(app_ctx.settings, "storage", "sweep", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == stray
    assert "10 字节" in dry.stdout and app_ctx.blobs.exists(stray)
    done = run_cli(app_ctx.settings, "storage", "sweep", "--grace", "2h")
    assert done.returncode == 0 and "已删除 removed: 1" in done.stdout, done.stdout
    assert not app_ctx.blobs.exists(stray)
    assert client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()["received"] == [0]
