"""An exam as its exam file: what the web created, written so ``invigil exam import`` of the
unpacked ZIP recreates it (a scripted setup and the web agree).

Passwords never leave the server: staff are listed with their roles and rooms only, and an
import keeps the password of an account that exists (``exams.importer``). Photos are written
as they would lie in a folder (``photos/<ticket>.jpg``), attachments as
``attachments/<n>-<file name>``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import IO, Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.core.storage import BlobStore
from invigil.exams import editing
from invigil.exams.models import Candidate, Exam, Room
from invigil.review.models import ExamStaff
from invigil.staff.models import StaffRoom, StaffUser

EXAM_FILE = "exam.yaml"
_UNSAFE = re.compile(r"[^\w.\-]+")


def _safe_name(name: str) -> str:
    """A file name that stays inside its folder on every system."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "file"
    return cleaned[-120:]


def photo_path(ticket: str) -> str:
    return f"photos/{_safe_name(ticket)}.jpg"


def attachment_path(position: int, filename: str) -> str:
    return f"attachments/{position}-{_safe_name(filename)}"


def document(session: Session, exam: Exam) -> dict[str, Any]:
    """The exam file as a mapping (no passwords)."""
    v = editing.values(session, exam)
    section: dict[str, Any] = {
        "title": v["title"],
        "starts_at": v["starts_at"],
        "duration": v["duration"],
        "rules": v["rules"],
        "help_phone": v["help_phone"],
    }
    if exam.practice:
        section["practice"] = True
    scoring: dict[str, Any] = {"rule": v["scoring"]["rule"]}
    if v["scoring"]["min_examiners"] is not None:
        scoring["min_examiners"] = v["scoring"]["min_examiners"]
    section["scoring"] = scoring
    if v["flags"]:
        section["flags"] = v["flags"]
    section["questions"] = v["questions"]
    section["attachments"] = [
        {"title": a.title, "file": attachment_path(a.position, a.filename)}
        for a in exam.attachments
    ]
    rooms = list(session.scalars(select(Room).where(Room.exam_id == exam.id).order_by(Room.code)))
    codes = {r.id: r.code for r in rooms}
    candidates = []
    for c in session.scalars(
        select(Candidate).where(Candidate.exam_id == exam.id).order_by(Candidate.ticket)
    ):
        row: dict[str, Any] = {"ticket": c.ticket, "name": c.name, "room": codes[c.room_id]}
        if c.photo_key:
            row["photo"] = photo_path(c.ticket)
        candidates.append(row)
    return {
        "exam": section,
        "rooms": [{"id": r.code, "name": r.name} for r in rooms],
        "candidates": candidates,
        "staff": _staff(session, exam, codes),
    }


def _staff(session: Session, exam: Exam, codes: dict[str, str]) -> list[dict[str, Any]]:
    roles: dict[str, set[str]] = {}
    rooms: dict[str, set[str]] = {}
    for es in session.scalars(select(ExamStaff).where(ExamStaff.exam_id == exam.id)):
        roles.setdefault(es.staff_id, set()).update(es.roles or [])
    for sr in session.scalars(select(StaffRoom).where(StaffRoom.room_id.in_(list(codes)))):
        rooms.setdefault(sr.staff_id, set()).add(codes[sr.room_id])
    out = []
    ids = set(roles) | set(rooms)
    users: list[StaffUser] = (
        list(session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))) if ids else []
    )
    for user in sorted(users, key=lambda u: u.username):
        row: dict[str, Any] = {
            "username": user.username,
            "roles": sorted(roles.get(user.id) or set(user.roles)),
        }
        if rooms.get(user.id):
            row["rooms"] = sorted(rooms[user.id])
        out.append(row)
    return out


def exam_yaml(session: Session, exam: Exam) -> str:
    header = (
        f"# 考试文件：由 invigil 考务管理导出（考试 {exam.id}）。不含密码：导入时已有账号保留原密码，\n"
        "# 新账号须补上 password 一行。\n"
    )
    body = yaml.safe_dump(document(session, exam), allow_unicode=True, sort_keys=False, width=100)
    return header + body


def write_zip(session: Session, blobs: BlobStore, exam: Exam, out: IO[bytes] | Path) -> int:
    """The exam file with its photos and attachments; returns how many files it holds."""
    files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(EXAM_FILE, exam_yaml(session, exam))
        files += 1
        for a in exam.attachments:
            z.writestr(attachment_path(a.position, a.filename), blobs.get(a.blob_key))
            files += 1
        for c in session.scalars(select(Candidate).where(Candidate.exam_id == exam.id)):
            if c.photo_key:
                # Photos are already compressed: stored, not deflated again.
                z.writestr(
                    zipfile.ZipInfo(photo_path(c.ticket)),
                    blobs.get(c.photo_key),
                    compress_type=zipfile.ZIP_STORED,
                )
                files += 1
    return files
