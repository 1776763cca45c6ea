"""考场与人员: the exam office's rooms and staff accounts.

Every change is written to the audit log (review.audit) with who did it; passwords never are.
A password the server makes (a new account without one, a reset, an import) is returned once
and kept only as its hash. Disabling an account revokes all its sessions at once, so every
open page and live console of that person stops working within its next request or status
check; the login refuses the account until it is enabled again.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from invigil.attempts.models import AuthSession
from invigil.core.clock import iso
from invigil.core.context import AppContext
from invigil.core.errors import APIError, not_found
from invigil.core.security import hash_password
from invigil.exams.models import Candidate, Exam, Room
from invigil.review import audit
from invigil.review.models import ExamStaff
from invigil.staff.models import ROLES, StaffRoom, StaffUser

# No 0/O, 1/l/I: read aloud or copied from a printout without mistakes.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 12
MIN_PASSWORD = 8


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def exam_of(session: Session, exam_id: str) -> Exam:
    exam = session.get(Exam, exam_id)
    if exam is None:
        raise not_found("考试")
    return exam


# --- rooms -------------------------------------------------------------------------------------


def rooms(session: Session, exam: Exam) -> list[dict[str, Any]]:
    counts = dict(
        session.execute(
            select(Candidate.room_id, func.count())
            .where(Candidate.exam_id == exam.id)
            .group_by(Candidate.room_id)
        ).all()
    )
    staff: dict[str, list[str]] = defaultdict(list)
    for room_id, username in session.execute(
        select(StaffRoom.room_id, StaffUser.username)
        .join(StaffUser, StaffUser.id == StaffRoom.staff_id)
        .join(Room, Room.id == StaffRoom.room_id)
        .where(Room.exam_id == exam.id)
        .order_by(StaffUser.username)
    ):
        staff[room_id].append(username)
    return [
        {
            "room_id": r.id,
            "code": r.code,
            "name": r.name,
            "candidates": int(counts.get(r.id, 0)),
            "staff": staff.get(r.id, []),
            "console_url": f"/proctor/?room={r.id}",
        }
        for r in session.scalars(select(Room).where(Room.exam_id == exam.id).order_by(Room.code))
    ]


def _clean(text: str, what: str, most: int) -> str:
    value = text.strip()
    if not value:
        raise APIError(422, "invalid", f"{what}不能为空。")
    if len(value) > most:
        raise APIError(422, "invalid", f"{what}过长（最多 {most} 个字符）。")
    return value


def room_of(session: Session, exam: Exam, room_id: str) -> Room:
    room = session.get(Room, room_id)
    if room is None or room.exam_id != exam.id:
        raise not_found("考场")
    return room


def create_room(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, code: str, name: str
) -> dict[str, Any]:
    code, name = _clean(code, "考场编号", 64), _clean(name, "考场名称", 200)
    taken = session.scalar(select(Room.id).where(Room.exam_id == exam.id, Room.code == code))
    if taken is not None:
        raise APIError(409, "room_exists", f"考场编号 {code} 已存在。")
    room = Room(exam_id=exam.id, code=code, name=name)
    session.add(room)
    session.flush()
    audit.record(
        session, ctx, user, "room_create", exam_id=exam.id, detail={"code": code, "name": name}
    )
    return {"room_id": room.id, "code": code, "name": name}


def rename_room(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, room_id: str, name: str
) -> dict[str, Any]:
    room = room_of(session, exam, room_id)
    name = _clean(name, "考场名称", 200)
    before = room.name
    room.name = name
    audit.record(
        session,
        ctx,
        user,
        "room_rename",
        exam_id=exam.id,
        detail={"code": room.code, "from": before, "to": name},
    )
    return {"room_id": room.id, "code": room.code, "name": name}


def delete_room(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, room_id: str
) -> dict[str, Any]:
    room = room_of(session, exam, room_id)
    held = session.scalar(select(func.count()).where(Candidate.room_id == room.id)) or 0
    if held:
        raise APIError(
            409, "room_not_empty", f"考场 {room.code} 还有 {held} 名考生，不能删除。", count=held
        )
    session.execute(delete(StaffRoom).where(StaffRoom.room_id == room.id))
    session.delete(room)
    audit.record(session, ctx, user, "room_delete", exam_id=exam.id, detail={"code": room.code})
    return {"deleted": room.id}


# --- staff accounts ----------------------------------------------------------------------------


def _check_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise APIError(
            422, "unknown_role", f"未知角色：{'、'.join(unknown)}（可选 {', '.join(ROLES)}）"
        )
    if not roles:
        raise APIError(422, "no_role", "至少选择一个角色。")
    return sorted(set(roles))


def _check_rooms(session: Session, room_ids: list[str]) -> list[Room]:
    found = list(session.scalars(select(Room).where(Room.id.in_(set(room_ids)))))
    if len(found) != len(set(room_ids)):
        raise not_found("考场")
    return found


def staff_of(session: Session, staff_id: str) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise not_found("工作人员账号")
    return user


def _describe(
    user: StaffUser, rooms_of: dict[str, list[Room]], exams_of: dict[str, set[str]]
) -> dict[str, Any]:
    rooms = rooms_of.get(user.id, [])
    return {
        "staff_id": user.id,
        "username": user.username,
        "name": user.name,
        "roles": list(user.roles),
        "disabled": user.disabled_at is not None,
        "disabled_at": iso(user.disabled_at) if user.disabled_at else None,
        "rooms": [
            {"room_id": r.id, "code": r.code, "name": r.name, "exam_id": r.exam_id} for r in rooms
        ],
        "exam_ids": sorted(exams_of.get(user.id, set()) | {r.exam_id for r in rooms}),
    }


def list_staff(session: Session, exam: Exam | None) -> list[dict[str, Any]]:
    """Accounts of one exam (listed for it, or working in one of its rooms), or every account."""
    rooms_of: dict[str, list[Room]] = defaultdict(list)
    for staff_id, room in session.execute(
        select(StaffRoom.staff_id, Room)
        .join(Room, Room.id == StaffRoom.room_id)
        .order_by(Room.exam_id, Room.code)
    ):
        rooms_of[staff_id].append(room)
    exams_of: dict[str, set[str]] = defaultdict(set)
    for staff_id, exam_id in session.execute(select(ExamStaff.staff_id, ExamStaff.exam_id)):
        exams_of[staff_id].add(exam_id)
    users = list(session.scalars(select(StaffUser).order_by(StaffUser.username)))
    out = [_describe(u, rooms_of, exams_of) for u in users]
    if exam is not None:
        out = [s for s in out if exam.id in s["exam_ids"]]
    return out


def describe_one(session: Session, user: StaffUser) -> dict[str, Any]:
    rooms = list(
        session.scalars(
            select(Room)
            .join(StaffRoom, StaffRoom.room_id == Room.id)
            .where(StaffRoom.staff_id == user.id)
            .order_by(Room.exam_id, Room.code)
        )
    )
    exams = set(session.scalars(select(ExamStaff.exam_id).where(ExamStaff.staff_id == user.id)))
    return _describe(user, {user.id: rooms}, {user.id: exams})


def _tie_to_exam(session: Session, user: StaffUser, exam_id: str) -> None:
    link = session.get(ExamStaff, (exam_id, user.id))
    if link is None:
        session.add(ExamStaff(exam_id=exam_id, staff_id=user.id, roles=list(user.roles)))
    else:
        link.roles = list(user.roles)


def _set_rooms(session: Session, user: StaffUser, rooms: list[Room]) -> None:
    session.execute(delete(StaffRoom).where(StaffRoom.staff_id == user.id))
    for room in rooms:
        session.add(StaffRoom(staff_id=user.id, room_id=room.id))
    session.flush()
    for exam_id in {r.exam_id for r in rooms}:
        _tie_to_exam(session, user, exam_id)


def create_staff(
    session: Session,
    ctx: AppContext,
    actor: StaffUser,
    *,
    username: str,
    name: str,
    roles: list[str],
    room_ids: list[str],
    password: str | None,
    exam: Exam | None,
    audit_action: str = "staff_create",
) -> dict[str, Any]:
    username = _clean(username, "用户名", 100)
    roles = _check_roles(roles)
    rooms = _check_rooms(session, room_ids)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise APIError(409, "username_taken", f"用户名 {username} 已存在。")
    if password is not None and len(password) < MIN_PASSWORD:
        raise APIError(422, "password_too_short", f"密码至少 {MIN_PASSWORD} 位。")
    shown = password is None
    password = password or new_password()
    user = StaffUser(
        username=username,
        name=name.strip()[:200],
        password_hash=hash_password(password),
        roles=roles,
        created_at=ctx.clock.now(),
    )
    session.add(user)
    session.flush()
    _set_rooms(session, user, rooms)
    if exam is not None:
        _tie_to_exam(session, user, exam.id)
    audit.record(
        session,
        ctx,
        actor,
        audit_action,
        exam_id=exam.id if exam else None,
        detail={"username": username, "roles": roles, "rooms": sorted(r.code for r in rooms)},
    )
    out = describe_one(session, user)
    if shown:
        out["password"] = password  # once: only its hash is kept
    return out


def revoke_sessions(session: Session, ctx: AppContext, user: StaffUser, reason: str) -> int:
    result = session.execute(
        update(AuthSession)
        .where(
            AuthSession.staff_id == user.id,
            AuthSession.kind == "staff",
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=ctx.clock.now(), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def reset_password(
    session: Session, ctx: AppContext, actor: StaffUser, user: StaffUser
) -> dict[str, Any]:
    """A new password, shown once; the account's open sessions end (the old password may be
    what leaked)."""
    password = new_password()
    user.password_hash = hash_password(password)
    ended = revoke_sessions(session, ctx, user, "password_reset")
    audit.record(session, ctx, actor, "staff_password_reset", detail={"username": user.username})
    return {"staff_id": user.id, "username": user.username, "password": password, "ended": ended}


def set_disabled(
    session: Session, ctx: AppContext, actor: StaffUser, user: StaffUser, disabled: bool
) -> dict[str, Any]:
    if disabled and user.id == actor.id:
        raise APIError(409, "cannot_disable_self", "不能停用自己的账号。")
    ended = 0
    if disabled and user.disabled_at is None:
        user.disabled_at = ctx.clock.now()
        ended = revoke_sessions(session, ctx, user, "disabled")
        audit.record(session, ctx, actor, "staff_disable", detail={"username": user.username})
    elif not disabled and user.disabled_at is not None:
        user.disabled_at = None
        audit.record(session, ctx, actor, "staff_enable", detail={"username": user.username})
    return {**describe_one(session, user), "ended": ended}


def update_staff(
    session: Session,
    ctx: AppContext,
    actor: StaffUser,
    user: StaffUser,
    *,
    name: str | None,
    roles: list[str] | None,
    room_ids: list[str] | None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {"username": user.username}
    if name is not None and name.strip() != user.name:
        detail["name"] = {"from": user.name, "to": name.strip()[:200]}
        user.name = name.strip()[:200]
    if roles is not None:
        roles = _check_roles(roles)
        if user.id == actor.id and "admin" not in roles:
            raise APIError(409, "cannot_drop_own_admin", "不能取消自己的管理员角色。")
        if roles != sorted(user.roles):
            detail["roles"] = {"from": sorted(user.roles), "to": roles}
            user.roles = roles
            for link in session.scalars(select(ExamStaff).where(ExamStaff.staff_id == user.id)):
                link.roles = roles
    if room_ids is not None:
        rooms = _check_rooms(session, room_ids)
        before = sorted(
            session.scalars(
                select(Room.code)
                .join(StaffRoom, StaffRoom.room_id == Room.id)
                .where(StaffRoom.staff_id == user.id)
            )
        )
        _set_rooms(session, user, rooms)
        after = sorted(r.code for r in rooms)
        if before != after:
            detail["rooms"] = {"from": before, "to": after}
    if len(detail) > 1:
        audit.record(session, ctx, actor, "staff_update", detail=detail)
    return describe_one(session, user)
