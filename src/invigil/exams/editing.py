"""Creating, editing, copying and deleting exams from the exam office's console.

The console speaks the exam file's language: durations like ``30m``, switches ``required`` /
``off``, the start as ISO 8601 with its offset, so what the web creates exports as an exam file
and a scripted setup and the web agree (``exams.export``). Validation reports every problem
with the form field it belongs to, in Chinese.

Once face login has opened (``login_opens_before`` before the start) the exam is in use: only
the fields of :data:`SAFE_AFTER_LOGIN` may change (none of them changes what a candidate is
asked, when, or under which schedule). Every change goes to the audit log with the before and
after of each field; question text never does (reviewers read that log, and before T no staff
role may read a question), only each version's count, points and digest.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from invigil.analysis import thresholds
from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import ensure_utc, iso
from invigil.core.config import FLAG_DEFAULTS
from invigil.core.context import AppContext
from invigil.core.db import new_id
from invigil.core.errors import APIError, not_found
from invigil.evidence import retention
from invigil.evidence.models import ExamRetention
from invigil.exams import removal
from invigil.exams.durations import format_local, parse_duration
from invigil.exams.examfile import DEFAULT_POINTS, RULE_DEFAULTS, SCORING_RULES, SWITCHES
from invigil.exams.lots import LOT_AUTO_ASSIGN
from invigil.exams.models import Attachment, Candidate, Exam, Question, Room
from invigil.review import audit
from invigil.review.models import AuditEntry, ExamStaff, Publication
from invigil.staff.models import StaffRoom, StaffUser

# What may still change once face login has opened: nothing a candidate is asked or timed by.
SAFE_AFTER_LOGIN = ("help_phone", "flags", "scoring", "rules.retention")

MAX_QUESTIONS = 100
MAX_POINTS = 1000
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
MAX_ATTACHMENTS = 20

# The rules of the exam file, each with a one-line explanation for the form (zh, en).
RULE_HELP: dict[str, tuple[str, str]] = {
    "login_opens_before": (
        "开考前多久开放人脸登录",
        "How long before the start face login opens",
    ),
    "entry_opens_before": (
        "开考前多久可以点击进入考试（不早于登录开放）",
        "How long before the start candidates may enter (not before login opens)",
    ),
    "entry_closes_after": (
        "开考后多久关闭入场，之后未入场者记为缺考",
        "How long after the start entry closes; whoever has not entered is absent",
    ),
    "lot_closes_before": (
        "开考前多久截止抽签，之后未抽签者自动分配签号",
        "How long before the start lot drawing closes; the rest get numbers automatically",
    ),
    "upload_grace_after": (
        "考试结束后继续接收录像上传的时长",
        "How long after the end recordings may still upload",
    ),
    "retention": (
        "考试结束后录像、截图和人脸数据的保存期限（至少 1d）",
        "How long recordings, snapshots and face data are kept after the end (at least 1d)",
    ),
    "evidence_camera": (
        "是否要求手机佐证摄像头（required 要求 / off 不用）",
        "Whether the phone evidence camera is required (required / off)",
    ),
    "liveness": (
        "人脸登录是否需要活体检测（required 需要 / off 不需要）",
        "Whether face login includes a liveness challenge (required / off)",
    ),
}

# The form's labels; the exam file's key is shown beside them (the form and the file agree).
RULE_NAMES: dict[str, tuple[str, str]] = {
    "login_opens_before": ("登录开放", "Login opens"),
    "entry_opens_before": ("入场开放", "Entry opens"),
    "entry_closes_after": ("入场截止", "Entry closes"),
    "lot_closes_before": ("抽签截止", "Lot drawing closes"),
    "upload_grace_after": ("上传宽限", "Upload grace"),
    "retention": ("保存期限", "Retention"),
    "evidence_camera": ("手机佐证摄像头", "Evidence camera"),
    "liveness": ("活体检测", "Liveness check"),
}

FLAG_HELP: dict[str, tuple[str, str]] = {
    "no_face": ("画面中持续无人脸", "No face in view for a while"),
    "multiple_faces": ("画面中出现多张人脸", "Several faces in view"),
    "face_mismatch": ("画面中的人脸与报名照片不符", "The face is not the enrolled candidate"),
    "face_covered": ("人脸口鼻被遮挡（如口罩）", "Nose and mouth covered (a mask)"),
    "camera_covered": ("摄像头被遮挡或画面过暗", "Camera covered or too dark"),
    "candidate_out_of_view": ("佐证画面中不见考生", "Candidate out of the evidence camera's view"),
    "second_person": ("佐证画面中出现他人", "Another person in the evidence camera's view"),
    "long_silence": ("答题期间长时间无声", "Long silence while answering"),
    "answer_end": (
        "答题结束的判定（关键词或停顿）",
        "How an answer's end is found (keyword or pause)",
    ),
    "voice_assistant": ("听到语音助手唤醒词", "A voice assistant's wake word heard"),
}

# The flags' parameters by name on the form (the exam file and INVIGIL_FLAGS use the keys; what
# each means: core/config.py's FLAG_DEFAULTS and docs/accuracy.md).
PARAM_NAMES: dict[str, tuple[str, str]] = {
    "seconds": ("持续秒数", "Seconds"),
    "of_last": ("最近帧数", "Of the last frames"),
    "at_least": ("其中至少", "At least"),
    "at_once": ("单帧即判的把握", "One frame this sure"),
    "distance": ("人脸差异阈值", "Face distance"),
    "embed_every": ("比对间隔帧数", "Compare every (frames)"),
    "brightness": ("亮度低于", "Brightness below"),
    "contrast": ("对比度低于", "Contrast below"),
    "pause_seconds": ("停顿秒数", "Pause seconds"),
    "kws_threshold": ("关键词阈值", "Keyword threshold"),
    "kws_score": ("关键词加权", "Keyword boost"),
}

FIELD_LABELS: dict[str, str] = {
    "title": "考试名称",
    "starts_at": "开考时间",
    "duration": "考试时长",
    "help_phone": "求助电话",
    "practice": "模拟考试",
    "scoring": "评分规则",
    "flags": "疑似违纪标记设置",
    "questions": "试题",
    **{f"rules.{k}": f"{RULE_NAMES[k][0]}（{k}）" for k in (*RULE_DEFAULTS, *SWITCHES)},
}


@dataclass
class FieldProblem:
    field: str
    message: str


class InvalidExam(APIError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        listed = "；".join(f"{FIELD_LABELS.get(p.field, p.field)}：{p.message}" for p in problems)
        super().__init__(
            422,
            "invalid_exam",
            f"考试设置有误：{listed}",
            problems=[{"field": p.field, "message": p.message} for p in problems],
        )


def _name(names: dict[str, tuple[str, str]], key: str) -> dict[str, str]:
    zh, en = names.get(key, (key, key))
    return {"name_zh": zh, "name_en": en}


def schema() -> dict[str, Any]:
    """What the form shows: every rule with its default and explanation, every flag."""
    rules: list[dict[str, Any]] = [
        {"key": k, "kind": "duration", "default": d, "zh": RULE_HELP[k][0], "en": RULE_HELP[k][1]}
        | _name(RULE_NAMES, k)
        for k, d in RULE_DEFAULTS.items()
    ]
    rules += [
        {
            "key": k,
            "kind": "switch",
            "default": "required",
            "choices": ["required", "off"],
            "zh": RULE_HELP[k][0],
            "en": RULE_HELP[k][1],
        }
        | _name(RULE_NAMES, k)
        for k in SWITCHES
    ]
    flags = []
    for flag, params in thresholds.PARAMS.items():
        defaults = FLAG_DEFAULTS.get(flag, {})
        zh, en = FLAG_HELP.get(flag, (flag, flag))
        flags.append(
            {
                "flag": flag,
                "zh": zh,
                "en": en,
                "severity": defaults.get("severity", "warning"),
                "params": [
                    {"key": k, "kind": kind, "min": lo, "max": hi, "default": defaults.get(k)}
                    | _name(PARAM_NAMES, k)
                    for k, (kind, lo, hi) in params.items()
                ],
            }
        )
    return {
        "rules": rules,
        "flags": flags,
        "severities": list(thresholds.SEVERITIES),
        "scoring_rules": list(SCORING_RULES),
        "default_points": DEFAULT_POINTS,
        "safe_after_login": list(SAFE_AFTER_LOGIN),
        "attachment_max_bytes": ATTACHMENT_MAX_BYTES,
    }


# --- the exam in exam-file terms ----------------------------------------------------------


def format_span(seconds: int) -> str:
    """Seconds as the exam file writes them (``180d``, ``1h30m``, ``45s``)."""
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def local_iso(at: datetime, offset_minutes: int) -> str:
    return at.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


def retention_s(session: Session, exam: Exam) -> int:
    row = session.get(ExamRetention, exam.id)
    return row.retention_s if row is not None else retention.default_retention_s()


def values(session: Session, exam: Exam) -> dict[str, Any]:
    """The exam's editable fields as the exam file writes them."""
    return {
        "title": exam.title,
        "starts_at": local_iso(exam.starts_at, exam.utc_offset_minutes),
        "duration": format_span(exam.duration_s),
        "rules": {
            "login_opens_before": format_span(exam.login_opens_before_s),
            "entry_opens_before": format_span(exam.entry_opens_before_s),
            "entry_closes_after": format_span(exam.entry_closes_after_s),
            "lot_closes_before": format_span(exam.lot_closes_before_s),
            "upload_grace_after": format_span(exam.upload_grace_after_s),
            "retention": format_span(retention_s(session, exam)),
            "evidence_camera": "required" if exam.evidence_camera else "off",
            "liveness": "required" if exam.liveness else "off",
        },
        "help_phone": exam.help_phone,
        "practice": exam.practice,
        "scoring": {"rule": exam.scoring_rule, "min_examiners": exam.scoring_min_examiners},
        "flags": {k: v for k, v in (exam.flags or {}).items() if v},
        "questions": [{"text": q.text, "points": q.points} for q in exam.questions],
    }


def _flat(v: dict[str, Any]) -> dict[str, Any]:
    """One entry per audited field: each rule on its own."""
    out = {k: val for k, val in v.items() if k != "rules"}
    out.update({f"rules.{k}": val for k, val in v["rules"].items()})
    return out


def _questions_digest(questions: list[dict[str, Any]]) -> dict[str, Any]:
    text = "\n\x00".join(q["text"] for q in questions)
    return {
        "count": len(questions),
        "points": [q["points"] for q in questions],
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _shown(field: str, value: Any) -> Any:
    return _questions_digest(value) if field == "questions" else value


# --- validation ---------------------------------------------------------------------------


def _switch(raw: Any) -> bool | None:
    if raw is False or (isinstance(raw, str) and raw.strip().lower() == "off"):
        return False
    if raw is True or (isinstance(raw, str) and raw.strip().lower() == "required"):
        return True
    return None


def validate(
    merged: dict[str, Any], now: datetime, *, check_start: bool
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Normalize the merged fields (exam-file terms) and find every problem."""
    problems: list[FieldProblem] = []

    def bad(field: str, message: str) -> None:
        problems.append(FieldProblem(field, message))

    out: dict[str, Any] = {}
    title = str(merged.get("title") or "").strip()
    if not title:
        bad("title", "必填：请填写考试名称")
    elif len(title) > 300:
        bad("title", "考试名称不能超过 300 个字")
    out["title"] = title

    raw_start = str(merged.get("starts_at") or "").strip()
    starts: datetime | None = None
    offset = 0
    if not raw_start:
        bad("starts_at", "必填：请填写开考时间，如 2026-12-01T09:00:00+08:00")
    else:
        try:
            parsed = datetime.fromisoformat(raw_start)
        except ValueError:
            bad("starts_at", f"时间格式不正确：{raw_start}，应如 2026-12-01T09:00:00+08:00")
        else:
            delta = parsed.utcoffset()
            if delta is None:
                bad("starts_at", "时间缺少时区，请写明如 +08:00")
            else:
                starts, offset = ensure_utc(parsed), int(delta.total_seconds() // 60)
                if check_start and starts <= now:
                    bad(
                        "starts_at",
                        f"开考时间 {format_local(starts, offset)} 已经过去"
                        f"（服务器时间 {format_local(now, offset)}）",
                    )
    shown_start = local_iso(starts, offset) if starts is not None else raw_start
    out["starts_at"], out["_starts"], out["_offset"] = shown_start, starts, offset

    try:
        out["_duration_s"] = parse_duration(merged.get("duration"))
        if out["_duration_s"] <= 0:
            bad("duration", "考试时长必须大于 0")
    except ValueError as exc:
        bad("duration", str(exc))
        out["_duration_s"] = 0
    out["duration"] = (
        format_span(out["_duration_s"]) if out["_duration_s"] > 0 else merged.get("duration")
    )

    rules_in = merged.get("rules") or {}
    rules_s: dict[str, int] = {}
    for key, default in RULE_DEFAULTS.items():
        raw = rules_in.get(key) or default
        try:
            rules_s[key] = parse_duration(raw)
        except ValueError as exc:
            bad(f"rules.{key}", str(exc))
            rules_s[key] = parse_duration(default)
    for key in rules_in:
        if key not in RULE_DEFAULTS and key not in SWITCHES:
            bad(f"rules.{key}", "未知的规则")
    if rules_s["entry_opens_before"] > rules_s["login_opens_before"]:
        bad("rules.entry_opens_before", "入场不能早于登录开放（应不大于 login_opens_before）")
    if rules_s["retention"] < 86400:
        bad("rules.retention", "保存期限至少 1d（评审需要时间查看录像）")
    switches: dict[str, bool] = {}
    for key in SWITCHES:
        value = _switch(rules_in.get(key, "required"))
        if value is None:
            bad(f"rules.{key}", f"应为 required 或 off，而不是 {rules_in.get(key)!r}")
        switches[key] = value is not False
    out["_rules_s"], out["_switches"] = rules_s, switches
    out["rules"] = {
        **{k: format_span(v) for k, v in rules_s.items()},
        **{k: "required" if v else "off" for k, v in switches.items()},
    }

    phone = str(merged.get("help_phone") or "").strip()
    if len(phone) > 64:
        bad("help_phone", "求助电话不能超过 64 个字符")
    out["help_phone"] = phone
    out["practice"] = bool(merged.get("practice"))

    scoring = merged.get("scoring") or {}
    rule = scoring.get("rule") or "trimmed_mean"
    if rule not in SCORING_RULES:
        bad("scoring", f"计分规则应为 trimmed_mean 或 mean，而不是 {rule!r}")
    least = scoring.get("min_examiners")
    if least is not None and (isinstance(least, bool) or not isinstance(least, int)):
        bad("scoring", "最少考官人数应为整数")
        least = None
    elif least is not None and not 1 <= least <= 100:
        bad("scoring", f"最少考官人数应在 1 到 100 之间，而不是 {least}")
    out["scoring"] = {"rule": rule, "min_examiners": least}

    flags, flag_problems = thresholds.check(merged.get("flags") or {})
    for p in flag_problems:
        bad("flags", f"{'.'.join(p.path)}：{p.message}")
    out["flags"] = {k: v for k, v in flags.items() if v}

    questions = []
    raw_questions = merged.get("questions") or []
    if not raw_questions:
        bad("questions", "至少需要一道试题")
    if len(raw_questions) > MAX_QUESTIONS:
        bad("questions", f"试题不能超过 {MAX_QUESTIONS} 道")
    for i, q in enumerate(raw_questions, 1):
        text = str(q.get("text") or "").strip()
        points = q.get("points", DEFAULT_POINTS)
        if not text:
            bad(f"questions.{i}", f"第 {i} 题：题目内容不能为空")
        if isinstance(points, bool) or not isinstance(points, int):
            bad(f"questions.{i}", f"第 {i} 题：分值应为整数")
            points = DEFAULT_POINTS
        elif not 1 <= points <= MAX_POINTS:
            bad(f"questions.{i}", f"第 {i} 题：分值应在 1 到 {MAX_POINTS} 之间，而不是 {points}")
        questions.append({"text": text, "points": points})
    out["questions"] = questions
    return out, problems


# --- create, edit -------------------------------------------------------------------------


def get_exam(session: Session, exam_id: str, *, lock: bool = False) -> Exam:
    query = select(Exam).where(Exam.id == exam_id)
    exam = session.scalar(query.with_for_update() if lock else query)
    if exam is None:
        raise not_found("考试")
    return exam


def login_opened(exam: Exam, now: datetime) -> bool:
    return now >= exam.login_opens_at


def published(session: Session, exam_id: str) -> bool:
    return session.get(Publication, exam_id) is not None


def _apply(session: Session, exam: Exam, v: dict[str, Any], now: datetime) -> None:
    starts = v["_starts"]
    rules_s = v["_rules_s"]
    exam.title = v["title"]
    exam.starts_at = starts
    exam.utc_offset_minutes = v["_offset"]
    exam.duration_s = v["_duration_s"]
    exam.login_opens_before_s = rules_s["login_opens_before"]
    exam.entry_opens_before_s = rules_s["entry_opens_before"]
    exam.entry_closes_after_s = rules_s["entry_closes_after"]
    exam.lot_closes_before_s = rules_s["lot_closes_before"]
    exam.upload_grace_after_s = rules_s["upload_grace_after"]
    exam.evidence_camera = v["_switches"]["evidence_camera"]
    exam.liveness = v["_switches"]["liveness"]
    exam.practice = v["practice"]
    exam.help_phone = v["help_phone"]
    exam.scoring_rule = v["scoring"]["rule"]
    exam.scoring_min_examiners = v["scoring"]["min_examiners"]
    exam.flags = v["flags"] or None


def _write_questions(session: Session, exam: Exam, questions: list[dict[str, Any]]) -> None:
    session.execute(delete(Question).where(Question.exam_id == exam.id))
    session.flush()
    for position, q in enumerate(questions, 1):
        session.add(
            Question(exam_id=exam.id, position=position, text=q["text"], points=q["points"])
        )
    session.flush()
    session.expire(exam, ["questions"])


def _schedule(session: Session, exam: Exam, keep_s: int, now: datetime, *, new: bool) -> None:
    """The exam's timed jobs follow its start: lot auto-assignment and the retention purge."""
    if new:
        jobs.enqueue(
            session,
            LOT_AUTO_ASSIGN,
            {"exam_id": exam.id},
            now=now,
            run_at=exam.lot_closes_at,
            dedupe_key=f"lot-auto:{exam.id}",
        )
        retention.schedule(session, exam, keep_s, now)
        return
    session.execute(
        update(jobs.Job)
        .where(jobs.Job.dedupe_key == f"lot-auto:{exam.id}", jobs.Job.state == jobs.PENDING)
        .values(run_at=exam.lot_closes_at)
    )
    row = session.get(ExamRetention, exam.id)
    purge_at = exam.deadline + timedelta(seconds=keep_s)
    if row is None:
        retention.schedule(session, exam, keep_s, now)
    else:
        row.retention_s, row.purge_at = keep_s, purge_at
        session.execute(
            update(jobs.Job)
            .where(jobs.Job.dedupe_key == f"retention:{exam.id}", jobs.Job.state == jobs.PENDING)
            .values(run_at=purge_at)
        )


def create(session: Session, ctx: AppContext, user: StaffUser, fields: dict[str, Any]) -> Exam:
    now = ctx.clock.now()
    merged = {
        "rules": {},
        "duration": "20m",
        **{k: v for k, v in fields.items() if v is not None},
    }
    v, problems = validate(merged, now, check_start=True)
    if problems:
        raise InvalidExam(problems)
    exam = Exam(created_at=now)
    _apply(session, exam, v, now)
    session.add(exam)
    session.flush()
    _write_questions(session, exam, v["questions"])
    _schedule(session, exam, v["_rules_s"]["retention"], now, new=True)
    after = values(session, exam)
    audit.record(
        session,
        ctx,
        user,
        "exam_create",
        exam_id=exam.id,
        detail={
            "changes": {f: {"before": None, "after": _shown(f, a)} for f, a in _flat(after).items()}
        },
    )
    return exam


def edit(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, fields: dict[str, Any]
) -> dict[str, Any]:
    """Apply the given fields (exam-file terms); returns the audited changes."""
    now = ctx.clock.now()
    before = values(session, exam)
    merged = {**before, **{k: v for k, v in fields.items() if v is not None}}
    if fields.get("rules") is not None:
        merged["rules"] = {**before["rules"], **fields["rules"]}
    v, problems = validate(merged, now, check_start=False)
    if problems:
        raise InvalidExam(problems)
    flat_before = _flat(before)
    flat_after = _flat({k: v[k] for k in before})
    changed = [f for f in flat_before if flat_before[f] != flat_after[f]]
    if not changed:
        return {}
    if login_opened(exam, now):
        locked = [f for f in changed if f not in SAFE_AFTER_LOGIN]
        if locked:
            names = "、".join(FIELD_LABELS.get(f, f) for f in locked)
            raise APIError(
                409,
                "exam_locked",
                f"人脸登录已开放，考试已在进行，不能再修改：{names}。"
                "此时只能修改求助电话、疑似违纪标记设置、评分规则和保存期限。",
                fields=locked,
            )
    if "starts_at" in changed:
        starts = v["_starts"]
        if starts is not None and starts <= now:
            offset = v["_offset"]
            raise InvalidExam(
                [FieldProblem("starts_at", f"开考时间 {format_local(starts, offset)} 已经过去")]
            )
    if "scoring" in changed and published(session, exam.id):
        raise APIError(409, "already_published", "成绩已发布，不能再修改评分规则。")
    _apply(session, exam, v, now)
    if "questions" in changed:
        _write_questions(session, exam, v["questions"])
    session.flush()
    _schedule(session, exam, v["_rules_s"]["retention"], now, new=False)
    changes = {
        f: {"before": _shown(f, flat_before[f]), "after": _shown(f, flat_after[f])} for f in changed
    }
    audit.record(session, ctx, user, "exam_edit", exam_id=exam.id, detail={"changes": changes})
    return changes


# --- copy, delete -------------------------------------------------------------------------


def copy(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    source: Exam,
    title: str,
    starts_at: str,
    with_candidates: bool,
) -> Exam:
    """A new exam with the source's settings, questions, attachments, rooms and the staff of
    those rooms; with ``with_candidates`` also its candidates, their photos and face data
    (nobody's activity: every candidate starts afresh)."""
    now = ctx.clock.now()
    fields = {**values(session, source), "title": title, "starts_at": starts_at}
    exam = create(session, ctx, user, fields)
    for a in source.attachments:
        key = f"exams/{exam.id}/attachments/{new_id()}"
        ctx.blobs.put(key, ctx.blobs.get(a.blob_key))
        session.add(
            Attachment(
                exam_id=exam.id,
                position=a.position,
                title=a.title,
                filename=a.filename,
                content_type=a.content_type,
                blob_key=key,
                size=a.size,
                sha256=a.sha256,
            )
        )
    rooms: dict[str, Room] = {}
    for r in source.rooms:
        rooms[r.id] = Room(exam_id=exam.id, code=r.code, name=r.name)
        session.add(rooms[r.id])
    session.flush()
    for sr in session.scalars(select(StaffRoom).where(StaffRoom.room_id.in_(list(rooms)))):
        session.add(StaffRoom(staff_id=sr.staff_id, room_id=rooms[sr.room_id].id))
    for es in session.scalars(select(ExamStaff).where(ExamStaff.exam_id == source.id)):
        session.add(ExamStaff(exam_id=exam.id, staff_id=es.staff_id, roles=list(es.roles)))
    copied = 0
    if with_candidates:
        for c in session.scalars(select(Candidate).where(Candidate.exam_id == source.id)):
            cand = Candidate(
                exam_id=exam.id,
                room_id=rooms[c.room_id].id,
                ticket=c.ticket,
                name=c.name,
                face_embedding=c.face_embedding if c.photo_key else None,
            )
            session.add(cand)
            session.flush()
            if c.photo_key:
                cand.photo_key = f"exams/{exam.id}/photos/{cand.id}.jpg"
                ctx.blobs.put(cand.photo_key, ctx.blobs.get(c.photo_key))
            session.add(Attempt(exam_id=exam.id, candidate_id=cand.id, room_id=cand.room_id))
            copied += 1
    session.flush()
    audit.record(
        session,
        ctx,
        user,
        "exam_copy",
        exam_id=exam.id,
        detail={"from": source.id, "candidates": copied, "at": now.isoformat()},
    )
    return exam


def delete_exam(session: Session, ctx: AppContext, user: StaffUser, exam: Exam) -> None:
    used = removal.used(session, exam.id)
    if used:
        raise APIError(
            409,
            "exam_in_use",
            f"已有 {used} 名考生登录或有记录，考试不能删除（这些记录是证据）。",
        )
    detail = {
        "title": exam.title,
        "starts_at": local_iso(exam.starts_at, exam.utc_offset_minutes),
        "candidates": int(
            session.scalar(
                select(func.count()).select_from(Candidate).where(Candidate.exam_id == exam.id)
            )
            or 0
        ),
    }
    exam_id = exam.id
    audit.record(session, ctx, user, "exam_delete", exam_id=exam_id, detail=detail)
    removal.remove_exam(session, ctx.blobs, exam_id, ctx.clock.now())


# --- attachments --------------------------------------------------------------------------

_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def sniff(filename: str, data: bytes) -> str | None:
    """The attachment's type from its bytes (never the client's word): PDF, an image the
    browser shows, or UTF-8 text; None for anything else."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    for magic, ctype in _IMAGE_MAGIC.items():
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(filename)[0] or ""
    if guessed.startswith("text/") or filename.lower().endswith((".txt", ".md")):
        if b"\x00" in data:
            return None
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/plain; charset=utf-8"
    return None


def _require_attachments_open(exam: Exam, now: datetime) -> None:
    if login_opened(exam, now):
        raise APIError(
            409,
            "exam_locked",
            "人脸登录已开放，考生可能已在阅读附件，附件不能再增删或改名。",
        )


def add_attachment(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    exam: Exam,
    title: str,
    filename: str,
    data: bytes,
) -> Attachment:
    _require_attachments_open(exam, ctx.clock.now())
    title = title.strip()
    filename = (filename.replace("\\", "/").rsplit("/", 1)[-1] or "attachment")[-200:]
    problems = []
    if not title:
        problems.append(FieldProblem("attachment.title", "请填写附件标题"))
    if len(title) > 300:
        problems.append(FieldProblem("attachment.title", "附件标题不能超过 300 个字"))
    if not data:
        problems.append(FieldProblem("attachment.file", "文件是空的"))
    if len(data) > ATTACHMENT_MAX_BYTES:
        problems.append(
            FieldProblem(
                "attachment.file",
                f"文件过大（{len(data) // (1024 * 1024)} MB），不能超过 "
                f"{ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB",
            )
        )
    ctype = sniff(filename, data) if data else None
    if data and ctype is None:
        problems.append(
            FieldProblem(
                "attachment.file", "只能上传 PDF、图片（PNG、JPEG、GIF、WebP）或 UTF-8 文本文件"
            )
        )
    if len(exam.attachments) >= MAX_ATTACHMENTS:
        problems.append(FieldProblem("attachment.file", f"附件不能超过 {MAX_ATTACHMENTS} 个"))
    if problems:
        raise InvalidExam(problems)
    assert ctype is not None
    key = f"exams/{exam.id}/attachments/{new_id()}"
    ctx.blobs.put(key, data)
    position = max((a.position for a in exam.attachments), default=0) + 1
    attachment = Attachment(
        exam_id=exam.id,
        position=position,
        title=title,
        filename=filename,
        content_type=ctype,
        blob_key=key,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    session.add(attachment)
    session.flush()
    session.expire(exam, ["attachments"])
    audit.record(
        session,
        ctx,
        user,
        "exam_attachment_add",
        exam_id=exam.id,
        detail={
            "attachment_id": attachment.id,
            "title": title,
            "filename": filename,
            "size": len(data),
            "sha256": attachment.sha256,
        },
    )
    return attachment


def get_attachment(session: Session, exam: Exam, attachment_id: str) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.exam_id != exam.id:
        raise not_found("附件")
    return attachment


def rename_attachment(
    session: Session,
    ctx: AppContext,
    user: StaffUser,
    exam: Exam,
    attachment: Attachment,
    title: str,
) -> None:
    _require_attachments_open(exam, ctx.clock.now())
    title = title.strip()
    if not title:
        raise InvalidExam([FieldProblem("attachment.title", "请填写附件标题")])
    if title == attachment.title:
        return
    audit.record(
        session,
        ctx,
        user,
        "exam_attachment_edit",
        exam_id=exam.id,
        detail={
            "attachment_id": attachment.id,
            "changes": {"title": {"before": attachment.title, "after": title}},
        },
    )
    attachment.title = title


def remove_attachment(
    session: Session, ctx: AppContext, user: StaffUser, exam: Exam, attachment: Attachment
) -> None:
    _require_attachments_open(exam, ctx.clock.now())
    audit.record(
        session,
        ctx,
        user,
        "exam_attachment_del",
        exam_id=exam.id,
        detail={
            "attachment_id": attachment.id,
            "title": attachment.title,
            "filename": attachment.filename,
            "sha256": attachment.sha256,
        },
    )
    key = attachment.blob_key
    session.delete(attachment)
    session.flush()
    session.expire(exam, ["attachments"])
    if key and ctx.blobs.exists(key):
        ctx.blobs.delete(key)


def history(session: Session, exam_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """The exam's own audit entries (creation, edits, attachments, copies, reads, exports),
    oldest first."""
    rows = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.exam_id == exam_id, AuditEntry.action.startswith("exam_", autoescape=True)
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return [
        {"at": iso(e.at), "staff": e.username, "action": e.action, "detail": e.detail}
        for e in reversed(list(rows))
    ]
