"""The demo: two practice exams (模拟考试) starting soon, with candidates and staff to try it all.

- 考试一 (desk only): most demo candidates, the laptop alone.
- 考试二 (desk + evidence phone): two candidates whose exam requires the phone, so the whole
  two-camera day can be tried (on a real phone with ``invigil demo --lan``).

Each is written as an ordinary exam file and imported the ordinary way, so the demo exercises
the same path as a real exam. Practice candidates have no enrolment photo: the face of their
first successful login becomes their reference.

The demo never touches an installation: it keeps everything in its own folder (``./invigil-demo``
unless ``--data-dir``/``--database-url`` say otherwise), ignores every ``INVIGIL_*`` setting,
refuses a database that holds anything but its own exams and accounts, and gives its staff
random passwords printed once. Restarting it replaces its previous exams.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.storage import blob_store
from invigil.exams.importer import create_exam, load_exam_file
from invigil.exams.models import Exam
from invigil.exams.removal import remove_exam
from invigil.review.models import ExamStaff
from invigil.staff.models import StaffUser

DEFAULT_DIR = Path("invigil-demo")
DESK_TITLE = "invigil 演示 · 结构化面试模拟考试（仅电脑）"
PHONE_TITLE = "invigil 演示 · 双机位模拟考试（电脑 + 手机佐证）"
# Titles of earlier versions of the demo: still the demo's own exams when it is restarted.
DEMO_TITLES = {DESK_TITLE, PHONE_TITLE, "invigil 演示 · 结构化面试模拟考试"}

DESK_CANDIDATES = [
    ("2026000001", "张三"),
    ("2026000002", "李四"),
    ("2026000003", "王五"),
    ("2026000004", "赵六"),
]
PHONE_CANDIDATES = [
    ("2026000005", "陈七"),
    ("2026000006", "刘八"),
]
STAFF = [
    ("proctor1", ["proctor"]),
    ("tech1", ["tech"]),
    ("reviewer1", ["reviewer"]),
    ("reviewer2", ["reviewer"]),  # a violation needs a second reviewer
    ("examiner1", ["examiner"]),
    ("examiner2", ["examiner"]),
    ("admin", ["admin"]),
]
NOTICE = """考生须知（模拟考试）

1. 请在安静、光线充足的房间独自参加考试，桌面上只放置考试所需的设备。
2. 笔记本电脑摄像头正对本人；手机置于身后侧方 45° 处，拍到桌面、屏幕和本人。
3. 考试全程录像、录屏。离开画面、切换窗口、使用第二块屏幕均会被记录为疑似违规。
4. 开考后试题自动显示。请按顺序作答，每题答完后说「该题回答完毕」。
5. 遇到问题请点击【求助】，或拨打技术服务电话。
"""
QUESTIONS = [
    "请做一个简短的自我介绍，并谈谈你为什么报考这个岗位。",
    "工作中你和同事对一项任务的做法意见不一致，你会怎么处理？",
    "如果让你组织一次面向社区居民的政策宣讲活动，你会如何安排？",
]

WEB_DIR = Path(__file__).parent / "web"


class DemoRefused(Exception):
    """The database is not the demo's own: nothing was changed."""


class DemoSettings(Settings):
    """Settings from the arguments only: an ``INVIGIL_*`` environment set up for a real
    installation (its database, Redis, data folder, secret) must not reach the demo."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_settings(
    data_dir: Path,
    database_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    public_url: str | None = None,
    kws_model_dir: Path | None = None,
) -> Settings:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return DemoSettings(
        data_dir=data_dir,
        database_url=database_url,
        host=host,
        port=port,
        public_url=public_url,
        secret_key=_secret(data_dir),
        kws_model_dir=kws_model_dir,
    )


def _secret(data_dir: Path) -> str:
    """A random signing key kept in the demo's folder (sessions survive a restart); never the
    key published in the docs, so a demo reachable on a LAN cannot be forged into."""
    path = data_dir / "secret.key"
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= 32:
            return key
    key = secrets.token_urlsafe(32)
    path.write_text(key, encoding="utf-8")
    path.chmod(0o600)
    return key


def new_password() -> str:
    """Easy to type from the screen: three groups of four, no look-alike characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def _pending(page: str) -> str:
    """Say so when a page of the contract is not built yet, instead of printing a dead link."""
    return "" if (WEB_DIR / page / "index.html").is_file() else "  （尚未提供 not built yet）"


@dataclass
class DemoExam:
    exam_id: str
    title: str
    starts_at: datetime
    phone: bool
    candidates: list[tuple[str, str]]


@dataclass
class DemoInfo:
    exams: list[DemoExam]
    passwords: dict[str, str]
    data_dir: Path
    replaced: int = 0
    notes: list[str] = field(default_factory=list)
    kws_model_dir: Path | None = None  # None: the answers are split at pauses

    @property
    def exam_id(self) -> str:
        return self.exams[0].exam_id

    def describe(self, base_url: str) -> str:
        first = self.exams[0]
        local = first.starts_at.astimezone(timezone(timedelta(hours=8)))
        lines = [
            "",
            "invigil 演示已就绪 / demo ready",
            f"  数据目录 data folder: {self.data_dir}（演示专用，不影响正式安装）",
        ]
        if self.replaced:
            lines.append(f"  已替换上次演示的 {self.replaced} 场考试 (replaced the previous demo)")
        lines += [
            f"  开考时间 starts at: {local:%Y-%m-%d %H:%M:%S} (UTC+8)；现在即可登录、入场",
            (
                f"  答题分段 answers: 识别考生所说的「该题回答完毕」（关键词模型 {self.kws_model_dir}）"
                " split where the candidate says it"
                if self.kws_model_dir
                else "  答题分段 answers: 按停顿分段；加 --kws-model-dir 可识别「该题回答完毕」"
                "（见 README） split at pauses; --kws-model-dir hears the spoken marker"
            ),
            "",
        ]
        for n, exam in enumerate(self.exams, 1):
            kind = (
                "电脑 + 手机佐证摄像头 desk + evidence phone"
                if exam.phone
                else "仅电脑 desk only（无手机步骤）"
            )
            lines += [
                f"  考试{'一二三'[n - 1]} exam {n}：{kind}",
                f"    {exam.title}  (id {exam.exam_id})",
                f"    考生端 desk:   {base_url}/desk/?exam={exam.exam_id}{_pending('desk')}",
                f"    成绩查询 results: {base_url}/results/?exam={exam.exam_id}{_pending('results')}",
            ]
            if exam.phone:
                lines += [
                    f"    手机端 phone:  {base_url}/m/{_pending('m')}",
                    "      考生在电脑上人脸登录后，用手机相机扫描电脑上的二维码（或在手机端输入 8 位"
                    "绑定码）",
                    "      scan the desk's QR code with the phone after the desk login "
                    "(or type its 8-digit code)",
                ]
            lines.append(
                "    考生 candidates (准考证号 ticket — 姓名; 首次人脸登录的照片即为比对基准):"
            )
            lines += [f"      {ticket}  {name}" for ticket, name in exam.candidates]
            lines.append("")
        lines += [
            f"  监考台 proctor:     {base_url}/proctor/{_pending('proctor')}",
            f"  评审 review:        {base_url}/review/{_pending('review')}",
            f"  管理 admin:         {base_url}/admin/{_pending('admin')}",
            f"  接口 API docs:      {base_url}/docs",
            *self.notes,
            "",
            "  工作人员 staff (用户名 / 密码；随机生成，只显示这一次 random, shown only now):",
            *[
                f"    {u} / {self.passwords[u]}  ({', '.join(r)})"
                for u, r in STAFF
                if u in self.passwords
            ],
            "",
        ]
        return "\n".join(lines)


def _exam_doc(
    title: str,
    starts_at: datetime,
    phone: bool,
    candidates: list[tuple[str, str]],
    passwords: dict[str, str],
) -> dict[str, Any]:
    lead = max(60, int((starts_at - SystemClock().now()).total_seconds()))
    # A demo that starts in a few minutes: log in and enter at once, draw a lot until a minute
    # before the start.
    opens = f"{max(30 * 60, lead + 60)}s"
    # Codes of their own: a proctor of both exams sees two rooms, the desk-only one first.
    code, room = (
        ("R02", "第2考场（演示·电脑 + 手机）") if phone else ("R01", "第1考场（演示·仅电脑）")
    )
    return {
        "exam": {
            "title": title,
            "starts_at": starts_at.astimezone(timezone(timedelta(hours=8))).isoformat(),
            "duration": "10m",
            "practice": True,
            "rules": {
                "login_opens_before": opens,
                "entry_opens_before": opens,
                "lot_closes_before": "1m",
                "entry_closes_after": "3m",
                "upload_grace_after": "30m",
                "evidence_camera": "required" if phone else "off",
                "liveness": "off",
            },
            "help_phone": "400-000-0000",
            "questions": [{"text": q} for q in QUESTIONS],
            "attachments": [{"title": "考生须知", "file": "notice.txt"}],
        },
        "rooms": [{"id": code, "name": room}],
        "candidates": [{"ticket": t, "name": n, "room": code} for t, n in candidates],
        "staff": [
            {"username": u, "password": passwords[u], "roles": r, "rooms": [code]} for u, r in STAFF
        ],
    }


def write_demo_exam_file(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notice.txt").write_text(NOTICE, encoding="utf-8")
    path = folder / "exam.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _is_demo(exam: Exam) -> bool:
    return exam.practice and exam.title in DEMO_TITLES


def refusal(session: Session) -> str | None:
    """Why this database is not the demo's to change, or None when it holds only demo data."""
    exams = list(session.scalars(select(Exam)))
    others = [e for e in exams if not _is_demo(e)]
    if others:
        names = "、".join(f"「{e.title}」({e.id})" for e in others[:3])
        return (
            f"这个数据库里有 {len(others)} 场不是演示的考试（{names}），演示不会改动它。\n"
            f"The database holds {len(others)} exam(s) that are not the demo's: refusing to "
            "touch it. Run the demo in its own folder (the default ./invigil-demo, or "
            "--data-dir NEW_FOLDER)."
        )
    demo_ids = {e.id for e in exams}
    for user in session.scalars(select(StaffUser)):
        linked = set(
            session.scalars(select(ExamStaff.exam_id).where(ExamStaff.staff_id == user.id))
        )
        if not linked or not linked <= demo_ids:
            return (
                f"这个数据库里有不属于演示的工作人员账号「{user.username}」，演示不会改动它。\n"
                f"The database holds a staff account that is not the demo's "
                f"({user.username!r}): refusing to touch it. Use a new --data-dir."
            )
    return None


# The logs the database itself keeps append-only (triggers refuse UPDATE and DELETE; migrations
# 0002 and 0007): as long as they hold a row of the previous demo, its exams cannot be deleted.
APPEND_ONLY_LOGS = ("recording_access_log", "review_audit_log", "review_rulings")


def _empty_append_only_logs(session: Session) -> None:
    """Empty the append-only logs, their guards lifted for that alone and back in place before
    the transaction commits (both engines' DDL is transactional). Only the demo does this, and
    only after refusal() has shown that everything in this database is the demo's own."""
    conn = session.connection()
    for table in APPEND_ONLY_LOGS:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.exec_driver_sql(f"DELETE FROM {table}")
            conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            continue
        guards = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        ).all()
        for name, _ in guards:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        conn.exec_driver_sql(f"DELETE FROM {table}")
        for _, sql in guards:
            conn.exec_driver_sql(sql)


def create_demo_exams(settings: Settings, starts_in: timedelta) -> DemoInfo:
    """Replace any previous demo in this database with two fresh practice exams.

    Raises :class:`DemoRefused` (changing nothing) when the database holds anything else."""
    now = SystemClock().now()
    starts_at = (now + starts_in).replace(microsecond=0)
    passwords = {u: new_password() for u, _ in STAFF}
    plans = [
        (DESK_TITLE, False, DESK_CANDIDATES, "desk"),
        (PHONE_TITLE, True, PHONE_CANDIDATES, "phone"),
    ]
    loaded = []
    for title, phone, candidates, folder in plans:
        doc = _exam_doc(title, starts_at, phone, candidates, passwords)
        path = write_demo_exam_file(settings.data_dir / "exam-files" / folder, doc)
        loaded.append((phone, candidates, *load_exam_file(path, now)))
    blobs = blob_store(settings)
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            reason = refusal(session)
            if reason:
                raise DemoRefused(reason)
            previous = [e.id for e in session.scalars(select(Exam))]
            _empty_append_only_logs(session)
            for exam_id in previous:
                remove_exam(session, blobs, exam_id, now)
            # Every account here belongs to the replaced demo (checked above): new passwords.
            session.execute(delete(StaffUser))
            made = []
            for phone, candidates, spec, embeddings in loaded:
                exam = create_exam(session, blobs, spec, embeddings, now)
                made.append(DemoExam(exam.id, exam.title, exam.starts_at, phone, candidates))
            return DemoInfo(
                made,
                passwords,
                settings.data_dir,
                replaced=len(previous),
                kws_model_dir=settings.kws_model_dir,
            )
    finally:
        db.dispose()
