"""Importing an exam file: validate, enrol the photos' faces, then write everything at once.

Face enrolment is the slow part (about 0.1–0.2 s a photo), so it runs in a process pool with a
progress callback. The database write is one transaction: a file with any problem imports
nothing.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image
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


# What an admin should read about an enrolment photo (the FaceError texts speak to candidates):
# code -> (what is wrong, how to fix it), in Chinese and in English. The exam file's importer
# and the roster importer (exams/roster.py) both tell photo problems with these.
PHOTO_PROBLEMS: dict[str, tuple[str, str, str, str]] = {
    "no_face": (
        "报名照片中未检测到人脸（或人脸被遮挡、过暗、过小）",
        "换一张正面、光线充足、不戴口罩的本人证件照",
        "No face found in the enrolment photo (or it is covered, too dark or too small)",
        "Use a frontal, well-lit ID photo of the candidate without a mask",
    ),
    "multiple_faces": (
        "报名照片中有多张人脸，须为本人单人照",
        "换一张只有考生本人的照片（可裁掉其他人）",
        "The enrolment photo shows several faces; it must show the candidate alone",
        "Use a photo of the candidate alone (crop the others out)",
    ),
    "bad_image": (
        "无法读取报名照片，须为 JPEG 或 PNG 图片",
        "重新导出为 JPEG 或 PNG 图片（不要改扩展名冒充）",
        "The enrolment photo cannot be read; it must be a JPEG or PNG image",
        "Export it again as JPEG or PNG (renaming the file is not enough)",
    ),
    "face_covered": (
        "报名照片中的面部被遮挡（口罩、手或其他物体）",
        "换一张露出完整脸部的本人照片",
        "The face in the enrolment photo is covered (mask, hand or another object)",
        "Use a photo that shows the whole face",
    ),
    "photo_too_small": (
        "报名照片太小（{width}×{height} 像素）",
        "换一张至少 {min}×{min} 像素的照片（证件照原图即可）",
        "The enrolment photo is too small ({width}×{height} pixels)",
        "Use a photo of at least {min}×{min} pixels (the original ID photo)",
    ),
    "photo_too_large": (
        "报名照片文件太大（{size} MB）",
        "压缩到 {max} MB 以内（证件照无需原始大图）",
        "The enrolment photo file is too large ({size} MB)",
        "Reduce it below {max} MB (an ID photo needs no full-size original)",
    ),
}
# A photo smaller than this cannot be compared reliably (the face is under ~60 px).
PHOTO_MIN_SIDE = 80
PHOTO_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class PhotoCheck:
    """One photo's outcome: its embedding, or the code (and details) of why it has none."""

    embedding: bytes | None
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """The admin's sentence in Chinese (what is wrong)."""
        if self.code is None:
            return ""
        if self.code in PHOTO_PROBLEMS:
            return PHOTO_PROBLEMS[self.code][0].format(**self.params)
        return str(self.params.get("detail", self.code))


def check_photo(data: bytes) -> PhotoCheck:
    """The one validation of an enrolment photo: size, readable, exactly one uncovered face.
    Runs in pool workers too (module level, picklable in and out)."""
    if len(data) > PHOTO_MAX_BYTES:
        mb = f"{len(data) / 1048576:.1f}"
        return PhotoCheck(None, "photo_too_large", {"size": mb, "max": PHOTO_MAX_BYTES >> 20})
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception:
        return PhotoCheck(None, "bad_image")
    if min(width, height) < PHOTO_MIN_SIDE:
        params = {"width": width, "height": height, "min": PHOTO_MIN_SIDE}
        return PhotoCheck(None, "photo_too_small", params)
    try:
        return PhotoCheck(faces.embedding_to_bytes(faces.embed_single_face(data)))
    except faces.FaceError as exc:
        if exc.code in PHOTO_PROBLEMS:
            return PhotoCheck(None, exc.code)
        return PhotoCheck(None, "face_error", {"detail": exc.message})


PhotoSource = Path | bytes


def _enrol(source: PhotoSource) -> PhotoCheck:
    """Runs in a pool worker: the photo's embedding, or the reason it has none."""
    if isinstance(source, bytes):
        return check_photo(source)
    try:
        data = source.read_bytes()
    except OSError as exc:
        return PhotoCheck(None, "unreadable", {"detail": f"无法读取照片：{exc}"})
    return check_photo(data)


def enrol_photos(
    sources: Sequence[PhotoSource],
    progress: Progress | None = None,
    workers: int | None = None,
    *,
    spawn: bool = False,
) -> list[PhotoCheck]:
    """Check and embed every photo, in order, in a process pool when there are enough.

    ``spawn``: start the pool's processes fresh instead of forking, for callers inside a
    multi-threaded server (a fork there can inherit a lock another thread holds)."""
    workers = workers or max(1, min(len(sources), os.cpu_count() or 1))
    results: list[PhotoCheck] = []
    if workers == 1 or len(sources) < 4:
        for i, source in enumerate(sources, 1):
            results.append(_enrol(source))
            if progress:
                progress(i, len(sources))
        return results
    context = multiprocessing.get_context("spawn") if spawn else None
    try:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=faces.warm_up, mp_context=context
        ) as pool:
            for i, result in enumerate(pool.map(_enrol, sources, chunksize=8), 1):
                results.append(result)
                if progress:
                    progress(i, len(sources))
    except BrokenProcessPool:
        # A worker died (out of memory, or a host program that cannot spawn): the rest here.
        for i, source in enumerate(sources[len(results) :], len(results) + 1):
            results.append(_enrol(source))
            if progress:
                progress(i, len(sources))
    return results


def load_exam_file(
    path: Path, now: datetime, progress: Progress | None = None, *, roster: bool = False
) -> tuple[ExamSpec, dict[int, bytes]]:
    """Validate the file and enrol its photos; raises ExamFileError with every problem.

    A file with structural problems still has the photos of its valid candidates checked, so
    one run lists everything there is to fix."""
    structural: ExamFileError | None = None
    try:
        spec: ExamSpec | None = parse_exam_file(path, now, roster=roster)
        assert spec is not None
        candidates = list(enumerate(spec.candidates))
    except ExamFileError as exc:
        structural, spec, candidates = exc, None, exc.candidates
    with_photo = [(i, c) for i, c in candidates if c.photo is not None]
    problems: list[Problem] = list(structural.problems) if structural else []
    embeddings: dict[int, bytes] = {}
    if with_photo:
        results = enrol_photos([c.photo for _, c in with_photo if c.photo], progress)
        for (i, cand), checked in zip(with_photo, results, strict=True):
            if checked.embedding is None:
                shown = cand.photo.name if cand.photo else ""
                message = f"{checked.message()}（{shown}）"
                problems.append(Problem(f"{cand.where}.photo", message, cand.line))
            else:
                embeddings[i] = checked.embedding
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
        photo = c.photo_data if c.photo_data is not None else None
        if photo is None and c.photo is not None:
            photo = c.photo.read_bytes()
        add_candidate(
            session, blobs, exam.id, rooms[c.room].id, c.ticket, c.name, photo, embeddings.get(i)
        )

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


def photo_key(exam_id: str, candidate_id: str) -> str:
    return f"exams/{exam_id}/photos/{candidate_id}.jpg"


def add_candidate(
    session: Session,
    blobs: BlobStore,
    exam_id: str,
    room_id: str,
    ticket: str,
    name: str,
    photo: bytes | None,
    embedding: bytes | None,
    *,
    candidate_id: str | None = None,
    stored_photo: str | None = None,
) -> Candidate:
    """A candidate with their attempt, and their enrolment photo stored (exam file and roster).
    ``stored_photo``: the key the photo was already stored under (the roster stores first)."""
    candidate = Candidate(exam_id=exam_id, room_id=room_id, ticket=ticket, name=name)
    if candidate_id is not None:
        candidate.id = candidate_id
    session.add(candidate)
    session.flush()
    if photo is not None:
        candidate.photo_key = photo_key(exam_id, candidate.id)
        blobs.put(candidate.photo_key, photo)
    elif stored_photo is not None:
        candidate.photo_key = stored_photo
    if candidate.photo_key is not None:
        candidate.face_embedding = embedding
    session.add(Attempt(exam_id=exam_id, candidate_id=candidate.id, room_id=room_id))
    return candidate


__all__ = [
    "PHOTO_PROBLEMS",
    "ExamFileError",
    "PhotoCheck",
    "add_candidate",
    "check_photo",
    "create_exam",
    "enrol_photos",
    "load_exam_file",
]
