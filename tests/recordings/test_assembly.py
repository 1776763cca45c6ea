"""A real WebM in arbitrary chunks, shuffled, with duplicates, conflicts and corrupted bodies;
finalized, remuxed and served with Range."""

from __future__ import annotations

import random
import threading

from conftest import bearer, both_backends, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.jobs import Job, run_due_jobs
from invigil.recordings import assembly
from invigil.recordings.models import Recording, RecordingAccess
from recordings.conftest import (
    decode_check,
    entered,
    mp4_bytes,
    new_recording,
    put,
    sha,
    split,
    stored_keys,
    webm_bytes,
)


def _upload_messy(
    client: TestClient, token: str, rec: str, chunks: list[bytes], rng: random.Random
) -> None:
    order = list(range(len(chunks)))
    rng.shuffle(order)
    for seq in order:
        data = chunks[seq]
        # A corrupted body first (a flipped byte): refused, nothing kept.
        broken = bytearray(data)
        broken[rng.randrange(len(broken))] ^= 0xFF
        r = put(client, token, rec, seq, bytes(broken), digest=sha(data))
        assert r.status_code == 422, r.text
        assert put(client, token, rec, seq, data).status_code == 201
        if rng.random() < 0.4:  # a duplicate
            assert put(client, token, rec, seq, data).status_code == 200
        if rng.random() < 0.3:  # a conflict: other bytes under a used seq
            r = put(client, token, rec, seq, data[::-1] + b"!")
            assert r.status_code == 409, r.text


@both_backends
def test_webm_round_trip_decodes_every_frame_with_duration_and_seeking(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext, rng: random.Random
) -> None:
    source, frames = webm_bytes()
    assert decode_check(source)["duration"] is None  # like Chrome's: no duration
    chunks = split(source, 17, rng)
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    _upload_messy(client, token, rec, chunks, rng)

    listing = client.get(f"/api/v1/recordings/{rec}", headers=bearer(token)).json()
    assert listing["received"] == list(range(17)) and listing["bytes"] == len(source)
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 17, "sha256": sha(source)},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "finalized"

    with app_ctx.db.session() as s:
        jobs = list(s.scalars(select(Job).where(Job.kind == "recording.assemble")))
    assert len(jobs) == 1 and jobs[0].payload == {"recording_id": rec}
    run_due_jobs(app_ctx.job_context())
    with app_ctx.db.session() as s:
        assert s.get(Job, jobs[0].id).state == "done"  # type: ignore[union-attr]
    with app_ctx.db.session() as s:
        stored = s.get(Recording, rec)
        assert stored is not None and stored.media_key is not None
        assert stored.media_mime == "video/webm"
        assert stored.duration_s is not None and abs(stored.duration_s - 4.0) < 0.2
        media_key = stored.media_key

    p1 = staff_token(client, "p1", "pw-p1")
    original = client.get(f"/api/v1/recordings/{rec}/media?original=1", headers=bearer(p1))
    assert original.status_code == 200 and original.content == source

    media = client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p1))
    assert media.status_code == 200
    assert media.headers["content-type"] == "video/webm"
    assert media.headers["accept-ranges"] == "bytes"
    assert media.content == app_ctx.blobs.get(media_key)
    check = decode_check(media.content)
    assert check["frames"] == frames
    assert check["duration"] is not None and abs(check["duration"] - 4.0) < 0.2
    assert 1.0 <= check["seek_to"] <= check["seek_target"] + 0.01

    size = len(media.content)
    part = client.get(
        f"/api/v1/recordings/{rec}/media", headers={**bearer(p1), "Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == media.content[100:200]
    tail = client.get(
        f"/api/v1/recordings/{rec}/media", headers={**bearer(p1), "Range": "bytes=-50"}
    )
    assert tail.status_code == 206 and tail.content == media.content[-50:]
    bad = client.get(
        f"/api/v1/recordings/{rec}/media", headers={**bearer(p1), "Range": f"bytes={size + 10}-"}
    )
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{size}"

    # Candidates and other rooms' staff do not get media; every staff read is logged.
    assert client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(token)).status_code == 401
    p2 = staff_token(client, "p2", "pw-p2")
    assert client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p2)).status_code == 403
    exm = staff_token(client, "exm", "pw-exm")
    assert client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(exm)).status_code == 403
    with app_ctx.db.session() as s:
        log = [
            (a.username, a.what, a.byte_range)
            for a in s.scalars(select(RecordingAccess).order_by(RecordingAccess.id))
        ]
    assert log == [
        ("p1", "original", None),
        ("p1", "media", None),
        ("p1", "media", "bytes=100-199"),
        ("p1", "media", "bytes=-50"),
        ("p1", "media", f"bytes={size + 10}-"),
    ]
    # Append-only, enforced by the database.
    with app_ctx.db.session() as s:
        for statement in (
            "UPDATE recording_access_log SET what = 'x'",
            "DELETE FROM recording_access_log",
        ):
            try:
                with s.begin():
                    s.execute(text(statement))
            except Exception as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{statement} was allowed")

    # Status for the staff attempt view and the candidate.
    view = client.get(f"/api/v1/staff/attempts/{attempt_id}", headers=bearer(p1)).json()
    assert [(r["id"], r["kind"], r["state"], r["bytes"]) for r in view["recordings"]] == [
        (rec, "webcam", "finalized", len(source))
    ]

    # The job again (a retry after a lost lease) changes nothing.
    before = app_ctx.blobs.get(media_key)
    assembly.assemble_job(None, {"recording_id": rec}, app_ctx.job_context())
    with app_ctx.db.session() as s:
        assert s.get(Recording, rec).media_key == media_key  # type: ignore[union-attr]
    assert app_ctx.blobs.get(media_key) == before


@both_backends
def test_media_is_remuxed_on_demand_and_safely_alongside_the_job(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext, rng: random.Random
) -> None:
    source, frames = webm_bytes()
    token, attempt_id = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    for seq, data in enumerate(split(source, 5, rng)):
        assert put(client, token, rec, seq, data).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 5, "sha256": sha(source)},
        headers=bearer(token),
    )
    assert r.status_code == 200
    p1 = staff_token(client, "p1", "pw-p1")

    # The job and two requests at once: all succeed, one file, every frame there.
    results: list[int] = []
    job = threading.Thread(target=run_due_jobs, args=(app_ctx.job_context(),))
    job.start()
    readers = [
        threading.Thread(
            target=lambda: results.append(
                client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p1)).status_code
            )
        )
        for _ in range(2)
    ]
    for t in readers:
        t.start()
    for t in [job, *readers]:
        t.join()
    assert results == [200, 200]
    media = client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p1))
    assert decode_check(media.content)["frames"] == frames
    media = [k for k in stored_keys(app_ctx.blobs, f"recordings/{attempt_id}") if "/media-" in k]
    assert len(media) == 1
    assert not any(app_ctx.settings.scratch_dir.iterdir())  # no scratch file left behind


@both_backends
def test_safari_mp4_becomes_faststart_mp4(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext, rng: random.Random
) -> None:
    source, frames = mp4_bytes()
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token, "screen", "video/mp4")
    chunks = split(source, 4, rng)
    for seq in (3, 1, 0, 2):
        assert put(client, token, rec, seq, chunks[seq]).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 4, "sha256": sha(source)},
        headers=bearer(token),
    )
    assert r.status_code == 200
    p1 = staff_token(client, "p1", "pw-p1")
    media = client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p1))  # on demand
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    # faststart: the index (moov) comes before the data (mdat)
    assert 0 <= media.content.find(b"moov") < media.content.find(b"mdat")
    check = decode_check(media.content)
    assert check["frames"] == frames and check["duration"] is not None


def test_garbage_recording_fails_assembly_but_keeps_the_original(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, _ = entered(client, clock, exam_id)
    rec = new_recording(client, token)
    junk = b"not a video at all" * 100
    assert put(client, token, rec, 0, junk).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 1, "sha256": sha(junk)},
        headers=bearer(token),
    )
    assert r.status_code == 200
    p1 = staff_token(client, "p1", "pw-p1")
    r = client.get(f"/api/v1/recordings/{rec}/media", headers=bearer(p1))
    assert r.status_code == 409 and r.json()["error"]["code"] == "assembly_failed"
    r = client.get(f"/api/v1/recordings/{rec}/media?original=1", headers=bearer(p1))
    assert r.status_code == 200 and r.content == junk
