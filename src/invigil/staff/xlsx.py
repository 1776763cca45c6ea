"""Staff accounts from an XLSX sheet (考场与人员 → 从 XLSX 导入).

Columns, by their header in the first row (any order; 姓名 may be left out):
用户名, 姓名, 角色 (several separated by 、 , ; or spaces, in Chinese or English: 监考员/proctor,
技术服务/tech, 考务工作小组/reviewer, 考官/examiner, 管理员/admin), 考场 (the exam's room codes,
separated the same way; may be empty for reviewers, examiners and admins).

Every problem of the file is reported at once, one per row and column, and nothing is created
until the file has none. Passwords are generated and returned once.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.exams.models import Exam, Room
from invigil.staff.models import ROLES, StaffUser

ROLE_NAMES = {
    "监考员": "proctor",
    "监考": "proctor",
    "技术服务": "tech",
    "技术支持": "tech",
    "考务工作小组": "reviewer",
    "评审": "reviewer",
    "考官": "examiner",
    "管理员": "admin",
    **{r: r for r in ROLES},
}
COLUMNS = {"用户名": "username", "姓名": "name", "角色": "roles", "考场": "rooms"}
REQUIRED = ("用户名", "角色")
MAX_ROWS = 5000
_SPLIT = re.compile(r"[、,，;；\s]+")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")


@dataclass
class StaffRow:
    row: int
    username: str
    name: str
    roles: list[str]
    room_codes: list[str]
    room_ids: list[str] = field(default_factory=list)


@dataclass
class Parsed:
    rows: list[StaffRow]
    problems: list[dict[str, Any]]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code typed as a number: 101, not 101.0
    return str(value).strip()


def parse(session: Session, exam: Exam, data: bytes) -> Parsed:
    problems: list[dict[str, Any]] = []

    def problem(row: int | None, column: str | None, message: str, value: str = "") -> None:
        problems.append({"row": row, "column": column, "message": message, "value": value})

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        # Read it whole here: a damaged workbook fails while it is read, not only when opened.
        table = list(book.worksheets[0].iter_rows(values_only=True, max_row=MAX_ROWS + 2))
    except Exception:  # openpyxl and zipfile raise many kinds for a file that is no workbook
        problem(None, None, "无法读取文件：请上传 .xlsx 格式的 Excel 表格。")
        return Parsed([], problems)
    lines = iter(table)
    header = next(lines, None)
    if header is None:
        problem(1, None, "表格是空的：第 1 行应为表头（用户名、姓名、角色、考场）。")
        return Parsed([], problems)
    at: dict[str, int] = {}
    for i, head in enumerate(header):
        title = _text(head)
        if title in COLUMNS and title not in at:
            at[title] = i
    for title in REQUIRED:
        if title not in at:
            problem(1, title, f"缺少表头“{title}”（第 1 行应有：用户名、角色，可选 姓名、考场）。")
    if problems:
        return Parsed([], problems)

    codes = {r.code: r.id for r in session.scalars(select(Room).where(Room.exam_id == exam.id))}
    existing = set(session.scalars(select(StaffUser.username)))
    seen: dict[str, int] = {}
    rows: list[StaffRow] = []
    for number, line in enumerate(lines, start=2):
        if number - 1 > MAX_ROWS:
            problem(number, None, f"行数过多（最多 {MAX_ROWS} 行）。")
            break

        def cell(title: str, line: tuple[Any, ...] = line) -> str:
            i = at.get(title)
            return _text(line[i]) if i is not None and i < len(line) else ""

        username, name = cell("用户名"), cell("姓名")
        roles_text, rooms_text = cell("角色"), cell("考场")
        if not any((username, name, roles_text, rooms_text)):
            continue  # blank line
        before = len(problems)
        if not username:
            problem(number, "用户名", "用户名不能为空。")
        elif not _USERNAME.match(username):
            problem(number, "用户名", "用户名只能包含字母、数字和 _ . @ -。", username)
        elif username in seen:
            problem(number, "用户名", f"用户名重复（与第 {seen[username]} 行相同）。", username)
        elif username in existing:
            problem(number, "用户名", "该用户名已有账号（请在列表中修改它）。", username)
        if username:
            seen.setdefault(username, number)
        roles: list[str] = []
        for word in filter(None, _SPLIT.split(roles_text)):
            role = ROLE_NAMES.get(word) or ROLE_NAMES.get(word.lower())
            if role is None:
                problem(
                    number,
                    "角色",
                    f"未知角色“{word}”（可选：监考员、技术服务、考务工作小组、考官、管理员）。",
                    roles_text,
                )
            elif role not in roles:
                roles.append(role)
        if not roles_text:
            problem(number, "角色", "角色不能为空。")
        room_codes = [c for c in _SPLIT.split(rooms_text) if c]
        for code in room_codes:
            if code not in codes:
                problem(number, "考场", f"本场考试没有考场“{code}”。", rooms_text)
        if roles and not room_codes and set(roles) <= {"proctor", "tech"}:
            problem(number, "考场", "监考员和技术服务须指定考场。")
        if len(problems) == before:
            rows.append(
                StaffRow(
                    number,
                    username,
                    name[:200],
                    sorted(roles),
                    room_codes,
                    [codes[c] for c in room_codes],
                )
            )
    if not rows and not problems:
        problem(None, None, "表格中没有工作人员。")
    return Parsed(rows, problems)
