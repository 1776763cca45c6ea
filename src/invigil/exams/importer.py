"""Importing an exam file: validate, enrol the photos' faces, then write everything at once.

Face enrolment is the slow part (about 0.1–0.2 s a photo), so it runs in a process pool with a
progress callback. The database write is one transaction: a file with any problem imports
nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.security import hash_password
from invigil.core.storage import BlobStore
from invigil.evidence import retention
from invigil.exams.examfile import (
    DEFAULT_POINTS,
    ExamFileError,
    ExamSpec,
    Problem,
    parse_exam_file,
)
from invigil.exams.lots import LOT_AUTO_ASSIGN
from invigil.exams.models import Attachment, Candidate, Exam, Question, Room
from invigil.identity import faces
from invigil.review.models import ExamStaff
from invigil.staff.models import StaffRoom, StaffUser

Progress = Callable[[int, int], None]


# What an admin should read about an enrolment photo (the FaceError texts speak to candidates).
_PHOTO_PROBLEMS = {
    "no_face": "报名照片中未检测到人脸（或人脸被遮挡、过暗、过小）",
    "multiple_faces": "报名照片中有多张人脸，须为本人单人照",
    "bad_image": "无法读取报名照片，须为 JPEG 或 PNG 图片",
}


def _enrol(path: str) -> tuple[bytes | None, str | None]:
    """Runs in a pool worker: the photo's embedding, or the reason it has none."""
    try:
        data = Path(path).read_bytes()
        return faces.embedding_to_bytes(faces.embed_single_face(data)), None
    except faces.FaceError as exc:
        return None, _PHOTO_PROBLEMS.get(exc.code, exc.message)
    except OSError as exc:
        return None, f"无法读取照片：{exc}"


def enrol_photos(
    paths: list[Path], progress: Progress | None = None, workers: int | None = None
) -> list[tuple[bytes | None, str | None]]:
    workers = workers or max(1, min(len(paths), os.cpu_count() or 1))
    results: list[tuple[bytes | None, str | None]] = []
    if workers == 1 or len(paths) < 4:
        for i, p in enumerate(paths, 1):
            results.append(_enrol(str(p)))
            if progress:
                progress(i, len(paths))
        return results
    with ProcessPoolExecutor(max_workers=workers, initializer=faces.warm_up) as pool:
        for i, result in enumerate(pool.map(_enrol, [str(p) for p in paths], chunksize=8), 1):
            results.append(result)
            if progress:
                progress(i, len(paths))
    return results


def load_exam_file(
    path: Path, now: datetime, progress: Progress | None = None
) -> tuple[ExamSpec, dict[int, bytes]]:
    """Validate the file and enrol its photos; raises ExamFileError with every problem.

    A file with structural problems still has the photos of its valid candidates checked, so
    one run lists everything there is to fix."""
    structural: ExamFileError | None = None
    try:
        spec: ExamSpec | None = parse_exam_file(path, now)
        assert spec is not None
        candidates = list(enumerate(spec.candidates))
    except ExamFileError as exc:
        structural, spec, candidates = exc, None, exc.candidates
    with_photo = [(i, c) for i, c in candidates if c.photo is not None]
    problems: list[Problem] = list(structural.problems) if structural else []
    embeddings: dict[int, bytes] = {}
    if with_photo:
        results = enrol_photos([c.photo for _, c in with_photo if c.photo], progress)
        for (i, cand), (embedding, error) in zip(with_photo, results, strict=True):
            if error is not None:
                shown = cand.photo.name if cand.photo else ""
                problems.append(Problem(f"{cand.where}.photo", f"{error}（{shown}）", cand.line))
            elif embedding is not None:
                embeddings[i] = embedding
    if problems or spec is None:
        raise ExamFileError(problems)
    return spec, embeddings


def create_exam(
    session: Session,
    blobs: BlobStore,
    spec: ExamSpec,
    embeddings: dict[int, bytes],
    now: datetime,
) -> Exam:
    exam = Exam(
        title=spec.title,
        starts_at=spec.starts_at,
        utc_offset_minutes=spec.utc_offset_minutes,
        duration_s=spec.duration_s,
        login_opens_before_s=spec.rules_s["login_opens_before"],
        entry_opens_before_s=spec.rules_s["entry_opens_before"],
        entry_closes_after_s=spec.rules_s["entry_closes_after"],
        lot_closes_before_s=spec.rules_s["lot_closes_before"],
        upload_grace_after_s=spec.rules_s["upload_grace_after"],
        evidence_camera=spec.evidence_camera,
        liveness=spec.liveness,
        practice=spec.practice,
        help_phone=spec.help_phone,
        scoring_rule=spec.scoring_rule,
        scoring_min_examiners=spec.scoring_min_examiners,
        flags=spec.flags or None,
        resit_rule=spec.resit,
        created_at=now,
    )
    session.add(exam)
    session.flush()

    points = spec.question_points or [DEFAULT_POINTS] * len(spec.questions)
    for position, (text, most) in enumerate(zip(spec.questions, points, strict=True), 1):
        session.add(Question(exam_id=exam.id, position=position, text=text, points=most))
    for position, a in enumerate(spec.attachments, 1):
        content = a.file.read_bytes()
        key = f"exams/{exam.id}/attachments/{position}"
        blobs.put(key, content)
        session.add(
            Attachment(
                exam_id=exam.id,
                position=position,
                title=a.title,
                filename=a.file.name,
                content_type=a.content_type,
                blob_key=key,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
            )
        )

    rooms: dict[str, Room] = {}
    for code, name in spec.rooms:
        rooms[code] = Room(exam_id=exam.id, code=code, name=name)
        session.add(rooms[code])
    session.flush()

    for i, c in enumerate(spec.candidates):
        candidate = Candidate(
            exam_id=exam.id, room_id=rooms[c.room].id, ticket=c.ticket, name=c.name
        )
        session.add(candidate)
        session.flush()
        if c.photo is not None:
            candidate.photo_key = f"exams/{exam.id}/photos/{candidate.id}.jpg"
            blobs.put(candidate.photo_key, c.photo.read_bytes())
            candidate.face_embedding = embeddings[i]
        session.add(Attempt(exam_id=exam.id, candidate_id=candidate.id, room_id=candidate.room_id))

    for s in spec.staff:
        user = session.scalar(select(StaffUser).where(StaffUser.username == s.username))
        if user is None:
            user = StaffUser(username=s.username, created_at=now, roles=[])
            session.add(user)
        # The latest exam file is the authority on a staff member's password and roles.
        if s.password:
            user.password_hash = hash_password(s.password)
        elif user.id is None:
            # A new account listed without a password stays locked (no password matches an
            # invalid hash) until one is set.
            user.password_hash = "!locked"
        user.roles = sorted(set(s.roles))
        session.flush()
        for code in s.rooms:
            session.add(StaffRoom(staff_id=user.id, room_id=rooms[code].id))
        # Examiners have no rooms: this row is what ties them to the exams they score.
        session.add(ExamStaff(exam_id=exam.id, staff_id=user.id, roles=sorted(set(s.roles))))

    jobs.enqueue(
        session,
        LOT_AUTO_ASSIGN,
        {"exam_id": exam.id},
        now=now,
        run_at=exam.lot_closes_at,
        dedupe_key=f"lot-auto:{exam.id}",
    )
    retention.schedule(session, exam, spec.rules_s["retention"], now)
    session.flush()
    return exam


__all__ = ["ExamFileError", "create_exam", "enrol_photos", "load_exam_file"]
