"""A rehearsal exam in the deployment's own database: a practice exam (模拟考试) with N
synthetic candidates, an open entry window for the whole rehearsal, and one staff account to
watch it on the proctor console. Practice exams take each candidate's first login face as the
reference, so no enrolment photos are needed. ``cleanup`` removes the exam, its recordings and
the account; it refuses any exam that is not a rehearsal."""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, select

from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.storage import blob_store
from invigil.exams.importer import create_exam, load_exam_file
from invigil.exams.models import Exam
from invigil.exams.removal import remove_exam
from invigil.review.models import ExamStaff
from invigil.staff.models import StaffUser

TITLE = "演练 rehearsal"
ROOM_SIZE = 30  # candidates per room, as a proctor watches them
TICKET_PREFIX = "9"  # tickets 9 + exam number + candidate number: never a real one's shape


class NotARehearsal(Exception):
    pass


@dataclass
class Prepared:
    exam_id: str
    title: str
    tickets: list[str]
    staff_username: str
    staff_password: str

    def as_json(self) -> dict[str, Any]:
        return {
            "exam_id": self.exam_id,
            "title": self.title,
            "candidates": len(self.tickets),
            "first_ticket": self.tickets[0],
            "last_ticket": self.tickets[-1],
            "staff": {"username": self.staff_username, "password": self.staff_password},
        }


def tickets_for(exam_number: int, candidates: int) -> list[str]:
    return [f"{TICKET_PREFIX}{exam_number:03d}{i:05d}" for i in range(1, candidates + 1)]


def exam_doc(
    title: str, candidates: int, exam_number: int, hours: int, username: str, password: str
) -> dict[str, Any]:
    now = SystemClock().now()
    # T lies an hour ahead and login and entry stay open from now until the end, so the run can
    # start at any moment of the window and enter at once; the questions are released at T.
    starts_at = (now + timedelta(hours=1)).replace(microsecond=0)
    open_s = f"{3600 + 300}s"
    tickets = tickets_for(exam_number, candidates)
    rooms = [
        {"id": f"Y{n + 1:02d}", "name": f"演练第{n + 1}考场"}
        for n in range((candidates + ROOM_SIZE - 1) // ROOM_SIZE)
    ]
    return {
        "exam": {
            "title": title,
            "starts_at": starts_at.astimezone(timezone(timedelta(hours=8))).isoformat(),
            "duration": f"{hours}h",
            "practice": True,
            "rules": {
                "login_opens_before": open_s,
                "entry_opens_before": open_s,
                "entry_closes_after": f"{hours}h",
                "lot_closes_before": "1m",
                "upload_grace_after": "30m",
                "evidence_camera": "required",
                "liveness": "off",
            },
            "questions": [{"text": "演练题目：请做自我介绍。"}],
        },
        "rooms": rooms,
        "candidates": [
            {"ticket": t, "name": f"演练考生{i + 1}", "room": rooms[i // ROOM_SIZE]["id"]}
            for i, t in enumerate(tickets)
        ],
        "staff": [
            {
                "username": username,
                "password": password,
                "roles": ["proctor", "tech"],
                "rooms": [r["id"] for r in rooms],
            }
        ],
    }


def prepare(settings: Settings, candidates: int, hours: int = 4) -> Prepared:
    now = SystemClock().now()
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            count = len(list(session.scalars(select(Exam.id).where(Exam.title.like(f"{TITLE}%")))))
        number = count + 1
        title = f"{TITLE} {number} ({now:%Y-%m-%d %H:%M} UTC)"
        username = f"rehearsal{number}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        doc = exam_doc(title, candidates, number, hours, username, password)
        with tempfile.TemporaryDirectory(prefix="invigil-rehearsal-") as folder:
            path = Path(folder) / "exam.yaml"
            path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
            spec, embeddings = load_exam_file(path, now)
        with transaction(db) as session:
            exam = create_exam(session, blob_store(settings), spec, embeddings, now)
            exam_id = exam.id
    finally:
        db.dispose()
    return Prepared(exam_id, title, tickets_for(number, candidates), username, password)


def cleanup(settings: Settings, exam_id: str) -> str:
    """Remove a rehearsal exam with everything it recorded, and its staff account."""
    now = SystemClock().now()
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            exam = session.get(Exam, exam_id)
            if exam is None or not exam.practice or not exam.title.startswith(TITLE):
                raise NotARehearsal(
                    f"{exam_id} 不是演练考试，未删除任何内容。 Not a rehearsal exam: nothing removed."
                )
            title = exam.title

            staff_ids = list(
                session.scalars(select(ExamStaff.staff_id).where(ExamStaff.exam_id == exam_id))
            )
            remove_exam(session, blob_store(settings), exam_id, now)
            if staff_ids:
                session.execute(
                    delete(StaffUser).where(
                        StaffUser.id.in_(staff_ids), StaffUser.username.like("rehearsal%")
                    )
                )
            return title
    finally:
        db.dispose()
