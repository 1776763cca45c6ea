"""The demo: a practice exam (模拟考试) starting soon, with candidates and staff to try it all.

It is written as an ordinary exam file and imported the ordinary way, so the demo exercises the
same path as a real exam. Practice candidates have no enrolment photo: the face of their first
successful login becomes their reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.storage import LocalBlobStore
from invigil.exams.importer import create_exam, load_exam_file

CANDIDATES = [
    ("2026000001", "张三"),
    ("2026000002", "李四"),
    ("2026000003", "王五"),
    ("2026000004", "赵六"),
    ("2026000005", "陈七"),
    ("2026000006", "刘八"),
]
STAFF = [
    ("proctor1", "demo-proctor", ["proctor"]),
    ("tech1", "demo-tech", ["tech"]),
    ("reviewer1", "demo-reviewer", ["reviewer"]),
    ("reviewer2", "demo-reviewer2", ["reviewer"]),  # a violation needs a second reviewer
    ("examiner1", "demo-examiner", ["examiner"]),
    ("examiner2", "demo-examiner2", ["examiner"]),
    ("admin", "demo-admin", ["admin"]),
]
NOTICE = """考生须知（模拟考试）

1. 请在安静、光线充足的房间独自参加考试，桌面上只放置考试所需的设备。
2. 笔记本电脑摄像头正对本人；手机置于身后侧方 45° 处，拍到桌面、屏幕和本人。
3. 考试全程录像、录屏。离开画面、切换窗口、使用第二块屏幕均会被记录为疑似违规。
4. 开考后试题自动显示。请按顺序作答，每题答完后说「该题回答完毕」。
5. 遇到问题请点击【求助】，或拨打技术服务电话。
"""


WEB_DIR = Path(__file__).parent / "web"


def _pending(page: str) -> str:
    """Say so when a page of the contract is not built yet, instead of printing a dead link."""
    return "" if (WEB_DIR / page / "index.html").is_file() else "  （尚未提供 not built yet）"


@dataclass
class DemoInfo:
    exam_id: str
    title: str
    starts_at: datetime

    def describe(self, base_url: str) -> str:
        local = self.starts_at.astimezone(timezone(timedelta(hours=8)))
        lines = [
            "",
            "invigil 演示已就绪 / demo ready",
            f"  考试 exam: {self.title}  (id {self.exam_id})",
            f"  开考时间 starts at: {local:%Y-%m-%d %H:%M:%S} (UTC+8)",
            "",
            f"  考生端 desk:        {base_url}/desk/?exam={self.exam_id}{_pending('desk')}",
            f"  手机端 phone:       {base_url}/m/{_pending('m')}",
            f"  监考台 proctor:     {base_url}/proctor/{_pending('proctor')}",
            f"  评审 review:        {base_url}/review/{_pending('review')}",
            f"  管理 admin:         {base_url}/admin/{_pending('admin')}",
            f"  成绩查询 results:   {base_url}/results/?exam={self.exam_id}{_pending('results')}",
            f"  接口 API docs:      {base_url}/docs",
            "",
            "  考生 candidates (准考证号 ticket — 姓名; 首次人脸登录的照片即为比对基准):",
            *[f"    {ticket}  {name}" for ticket, name in CANDIDATES],
            "",
            "  工作人员 staff (用户名 / 密码):",
            *[f"    {u} / {p}  ({', '.join(r)})" for u, p, r in STAFF],
            "",
        ]
        return "\n".join(lines)


def write_demo_exam_file(folder: Path, starts_at: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notice.txt").write_text(NOTICE, encoding="utf-8")
    lead = max(60, int((starts_at - SystemClock().now()).total_seconds()))
    # A demo that starts in a few minutes: log in and enter at once, draw a lot until a minute
    # before the start.
    opens = f"{max(30 * 60, lead + 60)}s"
    doc = {
        "exam": {
            "title": "invigil 演示 · 结构化面试模拟考试",
            "starts_at": starts_at.astimezone(timezone(timedelta(hours=8))).isoformat(),
            "duration": "10m",
            "practice": True,
            "rules": {
                "login_opens_before": opens,
                "entry_opens_before": opens,
                "lot_closes_before": "1m",
                "entry_closes_after": "3m",
                "upload_grace_after": "30m",
                "evidence_camera": "off",
                "liveness": "off",
            },
            "help_phone": "400-000-0000",
            "questions": [
                {"text": "请做一个简短的自我介绍，并谈谈你为什么报考这个岗位。"},
                {"text": "工作中你和同事对一项任务的做法意见不一致，你会怎么处理？"},
                {"text": "如果让你组织一次面向社区居民的政策宣讲活动，你会如何安排？"},
            ],
            "attachments": [{"title": "考生须知", "file": "notice.txt"}],
        },
        "rooms": [{"id": "R01", "name": "第1考场（演示）"}],
        "candidates": [{"ticket": t, "name": n, "room": "R01"} for t, n in CANDIDATES],
        "staff": [
            {"username": u, "password": p, "roles": r, "rooms": ["R01"]} for u, p, r in STAFF
        ],
    }
    path = folder / "exam.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def create_demo_exam(settings: Settings, starts_in: timedelta) -> DemoInfo:
    now = SystemClock().now()
    starts_at = (now + starts_in).replace(microsecond=0)
    path = write_demo_exam_file(settings.data_dir / "demo" / f"{now:%Y%m%d-%H%M%S}", starts_at)
    spec, embeddings = load_exam_file(path, now)
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            exam = create_exam(session, LocalBlobStore(settings.blob_dir), spec, embeddings, now)
            return DemoInfo(exam.id, exam.title, exam.starts_at)
    finally:
        db.dispose()
