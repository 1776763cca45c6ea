"""Reading and validating an exam file (YAML) into an :class:`ExamSpec`.

Validation collects every problem with where it is (the field path and the line), so an admin
fixes a file in one pass. Nothing here touches the database; face checks of the photos happen in
the importer because they are slow.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from invigil.analysis import thresholds as flag_thresholds
from invigil.core.clock import ensure_utc
from invigil.exams import yamlerrors
from invigil.exams.durations import format_local, parse_duration
from invigil.staff.models import ROLES

RULE_DEFAULTS = {
    "login_opens_before": "30m",
    "entry_opens_before": "10m",
    "entry_closes_after": "3m",
    "lot_closes_before": "10m",
    "upload_grace_after": "30m",
    # How long recordings, snapshots and face data are kept after the deadline (evidence.retention).
    "retention": "180d",
}
SWITCHES = ("evidence_camera", "liveness")
# rules.resit: when the exam office is proposed a re-sit for a candidate (attempts.arrangements):
# one outage of at least `min_outage`, or `short_outages` shorter ones of at least `short_from`
# each, during the candidate's answering time. "off" turns proposals off.
RESIT_DEFAULTS = {"min_outage": "2m", "short_outages": 2, "short_from": "10s"}
SCORING_RULES = ("trimmed_mean", "mean")
DEFAULT_POINTS = 10


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        at = ""
        if self.line:
            at = (
                f"（第 {self.line} 行第 {self.column} 列）"
                if self.column
                else f"（第 {self.line} 行）"
            )
        return f"{self.where}{at}: {self.message}"


class ExamFileError(Exception):
    """Every problem of a file. ``candidates`` are the candidates whose own fields are valid
    (photos among them), so the slow photo checks still run when other parts have problems."""

    def __init__(
        self, problems: list[Problem], candidates: list[tuple[int, CandidateSpec]] | None = None
    ) -> None:
        problems = sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 30)
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
        self.candidates = candidates or []


@dataclass
class CandidateSpec:
    ticket: str
    name: str
    room: str
    photo: Path | None
    where: str
    line: int | None
    # The photo's bytes when they come from elsewhere than a file (a roster's ZIP).
    photo_data: bytes | None = None


@dataclass
class AttachmentSpec:
    title: str
    file: Path
    content_type: str


@dataclass
class StaffSpec:
    username: str
    password: str
    roles: list[str]
    rooms: list[str]


@dataclass
class ExamSpec:
    title: str
    starts_at: datetime
    utc_offset_minutes: int
    duration_s: int
    rules_s: dict[str, int]
    evidence_camera: bool
    liveness: bool
    practice: bool
    help_phone: str
    questions: list[str]
    attachments: list[AttachmentSpec]
    rooms: list[tuple[str, str]]
    candidates: list[CandidateSpec]
    staff: list[StaffSpec] = field(default_factory=list)
    # The examiners' scale per question (0..points) and how their totals combine.
    question_points: list[int] = field(default_factory=list)
    scoring_rule: str = "trimmed_mean"
    scoring_min_examiners: int | None = None
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)  # analysis.thresholds
    # rules.resit in seconds ({"off": True} when turned off); None: the defaults.
    resit: dict[str, Any] | None = None


def _line_index(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each node's path to its 1-based line, from YAML's composed node tree."""
    index: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*path, str(key.value)))
                index.setdefault((*path, str(key.value)), key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return index


class _Collector:
    def __init__(self, lines: dict[tuple[str | int, ...], int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        where = ""
        for part in path:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else part)
        line = None
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                line = self.lines[path[:cut]]
                break
        self.problems.append(Problem(where or "(file)", message, line))


def _text(c: _Collector, obj: dict[str, Any], key: str, path: tuple[str | int, ...]) -> str:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        c.add((*path, key), "必填项缺失")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        c.add((*path, key), f"应为文字，而不是 {type(value).__name__}")
        return ""
    return str(value).strip()


def _inside(
    c: _Collector, base: Path, raw: str, path: tuple[str | int, ...], what: str
) -> Path | None:
    """The file ``raw`` names, if it lies inside the exam file's folder once every symlink and
    ``..`` is resolved: an exam file must not make the server read (and then serve to
    candidates) any other file on the machine, such as its secret key."""
    if Path(raw).is_absolute():
        c.add(path, f"{what}路径须相对于考试文件所在文件夹，不能是绝对路径：{raw}")
        return None
    folder = base.resolve()
    target = (folder / raw).resolve()
    if not target.is_relative_to(folder):
        c.add(path, f"{what}路径指向考试文件所在文件夹之外（../ 或符号链接）：{raw}")
        return None
    if not target.is_file():
        c.add(path, f"{what}文件不存在：{raw}")
        return None
    return target


def _mapping(c: _Collector, value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        c.add(path, "应为键值映射（key: value）")
        return {}
    return value


def _list(c: _Collector, value: Any, path: tuple[str | int, ...], required: bool) -> list[Any]:
    if value is None:
        if required:
            c.add(path, "必填项缺失（至少一项）")
        return []
    if not isinstance(value, list):
        c.add(path, "应为列表（以 - 开头的各项）")
        return []
    if required and not value:
        c.add(path, "至少需要一项")
    return value


def _switch(c: _Collector, rules: dict[str, Any], key: str) -> bool:
    value = rules.get(key, "required")
    # YAML 1.1 reads an unquoted `off` as False.
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return False
    if value is True or (isinstance(value, str) and value.strip().lower() == "required"):
        return True
    c.add(("exam", "rules", key), f'应为 "required" 或 "off"，而不是 {value!r}')
    return True


def _starts_at(c: _Collector, value: Any, now: datetime) -> tuple[datetime, int]:
    path: tuple[str | int, ...] = ("exam", "starts_at")
    if value is None:
        c.add(path, "必填项缺失：考试开始时间，如 2026-12-01T09:00:00+08:00")
        return now, 0
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            c.add(path, f"时间格式不正确：{value!r}，应如 2026-12-01T09:00:00+08:00")
            return now, 0
    if not isinstance(value, datetime):
        c.add(path, f"时间格式不正确：{value!r}，应如 2026-12-01T09:00:00+08:00")
        return now, 0
    if value.tzinfo is None or value.utcoffset() is None:
        c.add(path, f"时间缺少时区：{value.isoformat()}，请写明如 +08:00")
        return now, 0
    offset = value.utcoffset()
    assert offset is not None
    starts = ensure_utc(value)
    minutes = int(offset.total_seconds() // 60)
    if starts <= now:
        c.add(
            path,
            f"开始时间 {format_local(starts, minutes)} 已经过去"
            f"（服务器时间 {format_local(now, minutes)}）",
        )
    return starts, minutes


def parse_exam_file(path: Path, now: datetime, *, roster: bool = False) -> ExamSpec:
    """Read and validate; raises :class:`ExamFileError` listing every problem.

    ``roster``: the candidates come from a roster file beside it (exams/roster.py), so the
    exam file must not list any."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExamFileError([Problem(str(path), "考试文件不存在")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExamFileError(
            [Problem(str(path), f"无法读取考试文件（需为 UTF-8）：{exc}")]
        ) from None
    try:
        data = yaml.safe_load(text)
        lines = _line_index(text)
    except yaml.YAMLError as exc:
        told = yamlerrors.describe(exc, text)
        problem = Problem("(YAML)", f"YAML 语法错误：{told.message}", told.line, told.column)
        raise ExamFileError([problem]) from None

    c = _Collector(lines)
    base = path.parent
    root = _mapping(c, data, ())
    exam = _mapping(c, root.get("exam"), ("exam",))
    for key in root:
        if key not in ("exam", "rooms", "candidates", "staff"):
            c.add((key,), "未知的顶层字段（应为 exam、rooms、candidates、staff）")

    title = _text(c, exam, "title", ("exam",))
    starts_at, offset = _starts_at(c, exam.get("starts_at"), now)
    duration_s = 0
    try:
        duration_s = parse_duration(exam.get("duration"))
        if duration_s <= 0:
            c.add(("exam", "duration"), "考试时长必须大于 0")
    except ValueError as exc:
        c.add(("exam", "duration"), str(exc))

    rules = _mapping(c, exam.get("rules") or {}, ("exam", "rules"))
    rules_s: dict[str, int] = {}
    for key, default in RULE_DEFAULTS.items():
        try:
            rules_s[key] = parse_duration(rules.get(key, default))
        except ValueError as exc:
            c.add(("exam", "rules", key), str(exc))
            rules_s[key] = parse_duration(default)
    for key in rules:
        if key not in RULE_DEFAULTS and key not in SWITCHES and key != "resit":
            c.add(("exam", "rules", key), "未知的规则")
    if rules_s["entry_opens_before"] > rules_s["login_opens_before"]:
        c.add(
            ("exam", "rules", "entry_opens_before"),
            "入场不能早于登录开放（应不大于 login_opens_before）",
        )
    if rules_s["retention"] < 86400:
        c.add(("exam", "rules", "retention"), "保存期限至少 1d（评审需要时间查看录像）")
    evidence_camera = _switch(c, rules, "evidence_camera")
    liveness = _switch(c, rules, "liveness")
    resit = _resit(c, rules.get("resit"))
    practice = bool(exam.get("practice", False))
    flags, flag_problems = flag_thresholds.check(exam.get("flags"))
    for p in flag_problems:
        c.add(("exam", "flags", *p.path), p.message)

    questions = []
    question_points = []
    for i, q in enumerate(_list(c, exam.get("questions"), ("exam", "questions"), True)):
        q = _mapping(c, q, ("exam", "questions", i))
        questions.append(_text(c, q, "text", ("exam", "questions", i)))
        question_points.append(
            _count(c, q, "points", ("exam", "questions", i), DEFAULT_POINTS, 1000) or DEFAULT_POINTS
        )
    scoring_rule, scoring_min_examiners = _scoring(c, exam.get("scoring"))

    attachments = []
    for i, a in enumerate(_list(c, exam.get("attachments"), ("exam", "attachments"), False)):
        where: tuple[str | int, ...] = ("exam", "attachments", i)
        a = _mapping(c, a, where)
        a_title, a_file = _text(c, a, "title", where), _text(c, a, "file", where)
        file = _inside(c, base, a_file, (*where, "file"), "附件") if a_file else None
        if file is not None:
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            attachments.append(AttachmentSpec(a_title, file, ctype))

    rooms: list[tuple[str, str]] = []
    room_ids: set[str] = set()
    for i, r in enumerate(_list(c, root.get("rooms"), ("rooms",), True)):
        r = _mapping(c, r, ("rooms", i))
        rid, name = _text(c, r, "id", ("rooms", i)), _text(c, r, "name", ("rooms", i))
        if rid in room_ids:
            c.add(("rooms", i, "id"), f"考场编号重复：{rid}")
        elif rid:
            room_ids.add(rid)
            rooms.append((rid, name))

    candidates: list[CandidateSpec] = []
    valid: list[tuple[int, CandidateSpec]] = []  # own fields without a problem
    tickets: dict[str, int] = {}
    if roster and root.get("candidates"):
        c.add(
            ("candidates",),
            "已用 --roster 提供考生名单，考试文件中不能再列 candidates（二者选一）",
        )
    listed = _list(c, root.get("candidates"), ("candidates",), not roster) if not roster else []
    for i, cand in enumerate(listed):
        where = ("candidates", i)
        known = len(c.problems)
        cand = _mapping(c, cand, where)
        ticket, name = _text(c, cand, "ticket", where), _text(c, cand, "name", where)
        room = _text(c, cand, "room", where)
        if ticket in tickets:
            c.add(
                (*where, "ticket"),
                f"准考证号重复：{ticket}（与 candidates[{tickets[ticket]}] 相同）",
            )
        elif ticket:
            tickets[ticket] = i
        if room and room not in room_ids:
            c.add((*where, "room"), f"未知考场：{room}（rooms 中没有这个 id）")
        photo: Path | None = None
        raw_photo = cand.get("photo")
        if raw_photo:
            photo = _inside(c, base, str(raw_photo), (*where, "photo"), "照片")
        elif not practice:
            c.add((*where, "photo"), "缺少报名照片（正式考试必须提供，用于人脸登录比对）")
        spec = CandidateSpec(ticket, name, room, photo, _where(where), lines.get(where))
        candidates.append(spec)
        if len(c.problems) == known:
            valid.append((len(candidates) - 1, spec))

    staff: list[StaffSpec] = []
    usernames: set[str] = set()
    for i, s in enumerate(_list(c, root.get("staff"), ("staff",), False)):
        where = ("staff", i)
        s = _mapping(c, s, where)
        username = _text(c, s, "username", where)
        # Without a password an existing account keeps its own (exported exam files have none).
        password = _text(c, s, "password", where) if s.get("password") is not None else ""
        if username in usernames:
            c.add((*where, "username"), f"用户名重复：{username}")
        usernames.add(username)
        roles = [str(r) for r in _list(c, s.get("roles"), (*where, "roles"), True)]
        for r in roles:
            if r not in ROLES:
                c.add((*where, "roles"), f"未知角色：{r}（可选 {', '.join(ROLES)}）")
        staff_rooms = [str(r) for r in _list(c, s.get("rooms"), (*where, "rooms"), False)]
        for r in staff_rooms:
            if r not in room_ids:
                c.add((*where, "rooms"), f"未知考场：{r}")
        staff.append(StaffSpec(username, password, roles, staff_rooms))

    if c.problems:
        raise ExamFileError(c.problems, valid)
    return ExamSpec(
        title=title,
        starts_at=starts_at,
        utc_offset_minutes=offset,
        duration_s=duration_s,
        rules_s=rules_s,
        evidence_camera=evidence_camera,
        liveness=liveness,
        practice=practice,
        help_phone=str(exam.get("help_phone") or ""),
        questions=questions,
        attachments=attachments,
        rooms=rooms,
        candidates=candidates,
        staff=staff,
        flags=flags,
        resit=resit,
        question_points=question_points,
        scoring_rule=scoring_rule,
        scoring_min_examiners=scoring_min_examiners,
    )


def _count(
    c: _Collector,
    obj: dict[str, Any],
    key: str,
    path: tuple[str | int, ...],
    default: int | None,
    most: int,
) -> int | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        c.add((*path, key), f"应为 1 到 {most} 之间的整数，而不是 {value!r}")
        return default
    return value


def _scoring(c: _Collector, value: Any) -> tuple[str, int | None]:
    """``exam.scoring``: how examiners' totals become the final score."""
    path: tuple[str | int, ...] = ("exam", "scoring")
    scoring = _mapping(c, value or {}, path)
    for key in scoring:
        if key not in ("rule", "min_examiners"):
            c.add((*path, key), "未知的评分设置（应为 rule、min_examiners）")
    rule = scoring.get("rule", "trimmed_mean")
    if rule not in SCORING_RULES:
        c.add((*path, "rule"), f"应为 trimmed_mean 或 mean，而不是 {rule!r}")
        rule = "trimmed_mean"
    return str(rule), _count(c, scoring, "min_examiners", path, None, 100)


def _resit(c: _Collector, value: Any) -> dict[str, Any] | None:
    """``exam.rules.resit``: omitted means the defaults (None), "off" turns proposals off."""
    path: tuple[str | int, ...] = ("exam", "rules", "resit")
    if value is None:
        return None
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return {"off": True}
    given = _mapping(c, value, path)
    for key in given:
        if key not in RESIT_DEFAULTS:
            c.add((*path, key), "未知的重考规则（应为 min_outage、short_outages、short_from）")
    out: dict[str, Any] = {}
    for key in ("min_outage", "short_from"):
        try:
            out[f"{key}_s"] = parse_duration(given.get(key, RESIT_DEFAULTS[key]))
        except ValueError as exc:
            c.add((*path, key), str(exc))
            out[f"{key}_s"] = parse_duration(RESIT_DEFAULTS[key])
    if out["short_from_s"] >= out["min_outage_s"]:
        c.add((*path, "short_from"), "应小于 min_outage")
    out["short_outages"] = _count(c, given, "short_outages", path, 2, 100) or 2
    return out


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else p for p in path)
