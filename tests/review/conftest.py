"""A finished exam to review and score: built straight in the database (no face logins), so
each test starts from the same facts.

R01: K1001 奥巴马 (lot 1, flags, two webcam recordings after a reconnect, notes, help),
     K1002 拜登 (lot 2, one focus_lost, the screen recording never arrived);
R02: K2001 汉克斯 absent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T, bearer, exam_doc, import_exam, staff_token
from fastapi.testclient import TestClient
from sqlalchemy import select

from invigil.attempts import events
from invigil.attempts.models import Attempt
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.exams.models import Candidate
from invigil.recordings.models import FINALIZED, Recording, Snapshot

STAFF = [
    {"username": "p1", "password": "pw-p1", "roles": ["proctor"], "rooms": ["R01"]},
    {"username": "rev", "password": "pw-rev", "roles": ["reviewer"]},
    {"username": "rev2", "password": "pw-rev2", "roles": ["reviewer"]},
    {"username": "adm", "password": "pw-adm", "roles": ["admin"]},
]


def examiners(n: int) -> list[dict[str, Any]]:
    return [
        {"username": f"exm{i}", "password": f"pw-exm{i}", "roles": ["examiner"]}
        for i in range(1, n + 1)
    ]


MEDIA = b"\x1a\x45\xdf\xa3" + b"fake-webm-bytes" * 64


def review_doc(n_examiners: int = 2, **exam_overrides: Any) -> dict[str, Any]:
    doc = exam_doc(staff=STAFF + examiners(n_examiners))
    doc["exam"]["questions"] = [
        {"text": "QUESTION-ONE 请谈谈你对本岗位的认识。", "points": 10},
        {"text": "QUESTION-TWO 第二题", "points": 20},
    ]
    doc["exam"].update(exam_overrides)
    # Tickets with a letter that is no hex digit, so a scan for them cannot hit a random id.
    for c in doc["candidates"]:
        c["ticket"] = "K" + c["ticket"]
    return doc


@dataclass
class World:
    client: TestClient
    ctx: AppContext
    clock: FrozenClock
    exam_id: str
    attempts: dict[str, str]  # ticket without its "K" -> attempt id
    recordings: dict[str, str] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)
    flag_seqs: dict[str, list[int]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            self.tokens[username] = staff_token(self.client, username, f"pw-{username}")
        return self.tokens[username]

    def get(self, username: str, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers={**bearer(self.token(username)), **(headers or {})})

    def post(self, username: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=bearer(self.token(username)), **kw)


def _recording(
    ctx: AppContext, attempt_id: str, kind: str, at: datetime, duration: float
) -> Recording:
    rid = hashlib.md5(f"{attempt_id}{kind}{at}".encode()).hexdigest()
    ctx.blobs.put(f"test/{rid}.orig", MEDIA)
    ctx.blobs.put(f"test/{rid}.webm", MEDIA)
    return Recording(
        id=rid,
        attempt_id=attempt_id,
        kind=kind,
        mime="video/webm;codecs=vp8,opus",
        state=FINALIZED,
        created_at=at,
        created_by="candidate",
        chunk_count=1,
        sha256=hashlib.sha256(MEDIA).hexdigest(),
        size=len(MEDIA),
        finalized_at=at + timedelta(seconds=duration),
        original_key=f"test/{rid}.orig",
        media_key=f"test/{rid}.webm",
        media_mime="video/webm",
        media_size=len(MEDIA),
        duration_s=duration,
        assembled_at=at + timedelta(seconds=duration),
    )


def build_world(
    client: TestClient, ctx: AppContext, clock: FrozenClock, folder: Path, doc: dict[str, Any]
) -> World:
    exam_id = import_exam(ctx, folder, doc)
    with transaction(ctx.db) as session:
        rows = session.execute(
            select(Attempt, Candidate).join(Candidate, Candidate.id == Attempt.candidate_id)
        ).all()
        attempts = {c.ticket[1:]: a for a, c in rows if a.exam_id == exam_id}
        world = World(client, ctx, clock, exam_id, {t: a.id for t, a in attempts.items()})
        a1, a2 = attempts["1001"], attempts["1002"]
        for lot, a in ((1, a1), (2, a2)):
            a.lot_number = lot
            a.lot_drawn_at = T - timedelta(minutes=15)
            a.face_verified_at = T - timedelta(minutes=20)
            a.entered_at = T - timedelta(minutes=5)
            a.finished_at = T + timedelta(minutes=18)
        session.flush()
        # 1001: webcam dropped for a minute (reconnect), screen throughout.
        recs = [
            _recording(ctx, a1.id, "webcam", T - timedelta(minutes=5), 600.0),
            _recording(ctx, a1.id, "webcam", T + timedelta(minutes=6), 720.0),
            _recording(ctx, a1.id, "screen", T - timedelta(minutes=5), 1380.0),
            _recording(ctx, a2.id, "webcam", T - timedelta(minutes=5), 1380.0),
        ]
        session.add_all(recs)
        world.recordings = {
            "webcam0": recs[0].id,
            "webcam1": recs[1].id,
            "screen": recs[2].id,
            "other": recs[3].id,
        }
        snaps = []
        for i, (kind, minute) in enumerate([("webcam", 2), ("screen", 4), ("webcam", 10)]):
            key = f"test/snap{i}.jpg"
            ctx.blobs.put(key, b"\xff\xd8jpeg" + bytes([i]))
            snaps.append(
                Snapshot(
                    attempt_id=a1.id,
                    kind=kind,
                    taken_at=T + timedelta(minutes=minute),
                    blob_key=key,
                    size=7,
                    sha256="0" * 64,
                )
            )
        session.add_all(snaps)
        session.flush()
        world.snapshots = [s.id for s in snaps]

        def add(a: Attempt, kind: str, minute: float, **data: Any) -> int:
            at = T + timedelta(minutes=minute)
            actor = "analysis" if "confidence" in data else "candidate"
            return events.append(session, a.id, kind, at=at, actor=actor, data=data).seq

        world.flag_seqs["1001"] = [
            add(a1, "face_mismatch", 2, confidence=0.93, distance=0.71),
            add(a1, "face_mismatch", 10, confidence=0.71, distance=0.62),
            add(a1, "focus_lost", 4),
            add(a1, "focus_lost", 4.5),
        ]
        add(a1, "help_message", 3, **{"from": "candidate", "text": "摄像头好像黑屏了"})
        add(a1, "help_message", 3.5, **{"from": "staff", "text": "请刷新设备"})
        add(a1, "proctor_note", 5, text="考生频繁低头", author="p1")
        add(a1, "warning", 5.5, text="请正视摄像头")
        add(a1, "answer_end", 9, source="audio", question=1)
        world.flag_seqs["1002"] = [add(a2, "focus_lost", 7)]
    clock.set(T + timedelta(hours=1))  # after the deadline and the upload grace
    return world


@pytest.fixture
def world(client: TestClient, app_ctx: AppContext, clock: FrozenClock, tmp_path: Path) -> World:
    return build_world(client, app_ctx, clock, tmp_path / "exam", review_doc())
