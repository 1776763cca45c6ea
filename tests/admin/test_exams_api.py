"""考试管理 API: create, read, edit, copy and delete exams, the rules' schema, attachments, the
fields that stay editable once face login has opened, and the audit of every change."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from conftest import T
from sqlalchemy import select

from invigil.attempts.models import Attempt
from invigil.core import jobs
from invigil.core.clock import FrozenClock
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.evidence.models import ExamRetention
from invigil.exams.examfile import RULE_DEFAULTS, SWITCHES

from .exams_world import PDF, PNG, Admin, adm, audit_rows, form, imported, rev

__all__ = ["adm", "imported", "rev"]  # fixtures


def test_schema_lists_every_rule_with_default_and_explanation(adm: Admin) -> None:
    r = adm.get("/exam-schema")
    assert r.status_code == 200, r.text
    rules = {x["key"]: x for x in r.json()["rules"]}
    assert set(rules) == set(RULE_DEFAULTS) | set(SWITCHES)
    for key, default in RULE_DEFAULTS.items():
        assert rules[key]["default"] == default
    assert all(x["zh"] and x["en"] for x in rules.values())
    flags = {f["flag"]: f for f in r.json()["flags"]}
    assert flags["no_face"]["params"][0] == {
        "key": "seconds",
        "name_zh": "持续秒数",
        "name_en": "Seconds",
        "kind": "seconds",
        "min": 0,
        "max": 900,
        "default": 15,
    }
    # The form names every parameter in Chinese, not by its exam-file key alone.
    params = [x for f in flags.values() for x in f["params"]]
    assert all(re.search(r"[\u4e00-\u9fff]", x["name_zh"]) for x in params), params


def test_create_read_and_audit(adm: Admin, app_ctx: AppContext) -> None:
    r = adm.post("/exams", form())
    assert r.status_code == 201, r.text
    exam = r.json()["exam"]
    assert exam["starts_at"] == "2030-06-02T09:00:00+08:00"
    assert exam["duration"] == "25m"
    assert exam["rules"] == {
        **RULE_DEFAULTS,
        "login_opens_before": "40m",
        "evidence_camera": "off",
        "liveness": "required",
    }
    assert exam["scoring"] == {"rule": "mean", "min_examiners": 2}
    assert exam["flags"] == {"no_face": {"seconds": 20, "severity": "warning"}}
    assert [q["points"] for q in exam["questions"]] == [10, 20]
    assert exam["locked"] is False and exam["deletable"] is True
    listed = adm.get("/exams").json()["exams"]
    assert exam["id"] in [e["id"] for e in listed]
    again = adm.get(f"/exams/{exam['id']}").json()["exam"]
    assert again["questions"] == exam["questions"]
    page = adm.get(f"/exams/{exam['id']}?questions=false").json()["exam"]
    assert page["questions"] == [{"points": 10}, {"points": 20}]  # no text, no read logged
    rows = audit_rows(app_ctx, exam["id"])
    assert [e.action for e in rows] == ["exam_create", "exam_read"]
    created = rows[0].detail["changes"]
    assert created["rules.login_opens_before"]["after"] == "40m"
    # The audit log is read by reviewers: question text never goes in, only its digest.
    assert "WEB-QUESTION" not in json.dumps(created, ensure_ascii=False)
    assert created["questions"]["after"]["count"] == 2
    with app_ctx.db.session() as session:
        lot = session.scalar(
            select(jobs.Job).where(jobs.Job.dedupe_key == f"lot-auto:{exam['id']}")
        )
        assert lot is not None and lot.run_at.isoformat().startswith("2030-06-02T00:50")
        assert session.get(ExamRetention, exam["id"]) is not None


def test_every_problem_named_in_chinese(adm: Admin) -> None:
    body = form(
        title=" ",
        starts_at="2030-06-02T09:00:00",
        duration="20 minutes",
        rules={"entry_opens_before": "40m", "retention": "2h", "liveness": "maybe"},
        scoring={"rule": "median"},
        flags={"no_face": {"seconds": 5000}, "nonsense": {}},
        questions=[{"text": "", "points": 0}],
    )
    r = adm.post("/exams", body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_exam"
    fields = {p["field"] for p in err["problems"]}
    assert fields >= {
        "title",
        "starts_at",
        "duration",
        "rules.entry_opens_before",
        "rules.retention",
        "rules.liveness",
        "scoring",
        "flags",
        "questions.1",
    }
    # The summary names the rules as the form does: in Chinese, with the exam file's key.
    assert "入场开放（entry_opens_before）：" in err["message"], err["message"]
    messages = " ".join(p["message"] for p in err["problems"])
    assert "时区" in messages and "至少 1d" in messages and "分值" in messages
    assert adm.post("/exams", form(questions=[])).json()["error"]["problems"][0] == {
        "field": "questions",
        "message": "至少需要一道试题",
    }
    past = adm.post("/exams", form(starts_at="2030-05-01T09:00:00+08:00")).json()
    assert "已经过去" in past["error"]["problems"][0]["message"]


def test_only_admins(rev: Admin, imported: str) -> None:
    for r in (
        rev.get("/exam-schema"),
        rev.post("/exams", form()),
        rev.get(f"/exams/{imported}"),
        rev.patch(f"/exams/{imported}", {"help_phone": "1"}),
        rev.post(
            f"/exams/{imported}/copy", {"title": "x", "starts_at": "2030-07-01T09:00:00+08:00"}
        ),
        rev.delete(f"/exams/{imported}"),
        rev.get(f"/exams/{imported}/examfile"),
        rev.get(f"/exams/{imported}/examfile.zip"),
        rev.get(f"/exams/{imported}/history"),
    ):
        assert r.status_code == 403, (r.request.url, r.text)
    anonymous = rev.client.get(f"/api/v1/admin/exams/{imported}")
    assert anonymous.status_code == 401


def test_edit_before_login_reschedules_and_audits(
    adm: Admin, imported: str, app_ctx: AppContext
) -> None:
    r = adm.patch(
        f"/exams/{imported}",
        {
            "starts_at": "2030-06-01T10:00:00+08:00",
            "rules": {"lot_closes_before": "15m"},
            "questions": [{"text": "QUESTION-NEW 新题", "points": 30}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["questions", "rules.lot_closes_before", "starts_at"]
    exam = r.json()["exam"]
    assert exam["rules"]["liveness"] == "off"  # what was not sent stays
    assert exam["questions"] == [{"text": "QUESTION-NEW 新题", "points": 30}]
    edit = [e for e in audit_rows(app_ctx, imported) if e.action == "exam_edit"][-1]
    changes = edit.detail["changes"]
    assert changes["starts_at"] == {
        "before": "2030-06-01T09:00:00+08:00",
        "after": "2030-06-01T10:00:00+08:00",
    }
    assert changes["rules.lot_closes_before"] == {"before": "10m", "after": "15m"}
    assert changes["questions"]["before"]["count"] == 2
    assert "QUESTION" not in json.dumps(changes)
    with app_ctx.db.session() as session:
        lot = session.scalar(select(jobs.Job).where(jobs.Job.dedupe_key == f"lot-auto:{imported}"))
        assert lot is not None and lot.run_at == T + timedelta(minutes=60 - 15)
        keep = session.get(ExamRetention, imported)
        assert keep is not None and keep.purge_at == T + timedelta(hours=1, minutes=20, days=180)
    # Sending the same values again changes nothing and writes no entry.
    count = len(audit_rows(app_ctx, imported))
    same = adm.patch(
        f"/exams/{imported}", {"starts_at": "2030-06-01T10:00:00+08:00", "duration": "20m"}
    )
    assert same.json()["changed"] == []
    assert len(audit_rows(app_ctx, imported)) == count


def test_after_login_opens_only_safe_fields(
    adm: Admin, imported: str, clock: FrozenClock, app_ctx: AppContext
) -> None:
    clock.set(T - timedelta(minutes=30))
    assert adm.get(f"/exams/{imported}").json()["exam"]["locked"] is True
    for body in (
        {"questions": [{"text": "换题", "points": 10}]},
        {"starts_at": "2030-06-01T10:00:00+08:00"},
        {"duration": "30m"},
        {"rules": {"entry_closes_after": "5m"}},
        {"title": "改名"},
        {"help_phone": "110", "rules": {"liveness": "required"}},
    ):
        r = adm.patch(f"/exams/{imported}", body)
        assert r.status_code == 409, (body, r.text)
        assert r.json()["error"]["code"] == "exam_locked"
        assert "人脸登录已开放" in r.json()["error"]["message"]
    r = adm.patch(
        f"/exams/{imported}",
        {
            "help_phone": "400-111-2222",
            "flags": {"no_face": {"seconds": 30}},
            "scoring": {"rule": "mean"},
            "rules": {"retention": "365d"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["flags", "help_phone", "rules.retention", "scoring"]
    edit = [e for e in audit_rows(app_ctx, imported) if e.action == "exam_edit"][-1]
    assert edit.detail["changes"]["help_phone"] == {
        "before": "400-000-0000",
        "after": "400-111-2222",
    }
    assert edit.username == "adm"
    up = adm.client.post(
        f"/api/v1/admin/exams/{imported}/attachments",
        data={"title": "补充说明"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
        headers=adm.headers,
    )
    assert up.status_code == 409 and "附件" in up.json()["error"]["message"]


def _upload(adm: Admin, exam_id: str, name: str, data: bytes, title: str = "说明") -> object:
    return adm.client.post(
        f"/api/v1/admin/exams/{exam_id}/attachments",
        data={"title": title},
        files={"file": (name, data, "application/octet-stream")},
        headers=adm.headers,
    )


def test_attachments_checked_previewed_renamed_removed(adm: Admin, app_ctx: AppContext) -> None:
    exam_id = adm.post("/exams", form()).json()["exam"]["id"]
    pdf = _upload(adm, exam_id, "须知.pdf", PDF)
    assert pdf.status_code == 201, pdf.text  # type: ignore[attr-defined]
    a = pdf.json()["attachment"]  # type: ignore[attr-defined]
    assert a["content_type"] == "application/pdf" and a["filename"] == "须知.pdf"
    png = _upload(adm, exam_id, "seat.png", PNG).json()["attachment"]  # type: ignore[attr-defined]
    assert png["content_type"] == "image/png"
    txt = _upload(adm, exam_id, "notes.txt", "考场规则".encode()).json()["attachment"]  # type: ignore[attr-defined]
    assert txt["content_type"].startswith("text/plain")
    for name, data, words in (
        ("virus.exe", b"MZ\x90\x00" + b"\x00" * 100, "只能上传"),
        ("fake.pdf", b"<html>not a pdf</html>", "只能上传"),
        ("big.pdf", b"%PDF-" + b"0" * (20 * 1024 * 1024), "文件过大"),
        ("empty.txt", b"", "文件是空的"),
    ):
        r = _upload(adm, exam_id, name, data)
        assert r.status_code == 422, (name, r.text)  # type: ignore[attr-defined]
        assert words in r.json()["error"]["message"], name  # type: ignore[attr-defined]
    shown = adm.get(f"/exams/{exam_id}/attachments/{a['id']}")
    assert shown.content == PDF and shown.headers["content-type"] == "application/pdf"
    assert (
        adm.patch(f"/exams/{exam_id}/attachments/{a['id']}", {"title": "考生须知"}).status_code
        == 200
    )
    assert adm.delete(f"/exams/{exam_id}/attachments/{png['id']}").status_code == 200
    exam = adm.get(f"/exams/{exam_id}").json()["exam"]
    assert [x["title"] for x in exam["attachments"]] == ["考生须知", "说明"]
    actions = [e.action for e in audit_rows(app_ctx, exam_id)]
    assert actions.count("exam_attachment_add") == 3
    assert "exam_attachment_edit" in actions and "exam_attachment_del" in actions
    history = adm.get(f"/exams/{exam_id}/history").json()["entries"]
    assert [e["action"] for e in history][:2] == ["exam_create", "exam_attachment_add"]


def test_copy_with_and_without_candidates(adm: Admin, imported: str, app_ctx: AppContext) -> None:
    bare = adm.post(
        f"/exams/{imported}/copy", {"title": "复制的考试", "starts_at": "2030-07-01T09:00:00+08:00"}
    )
    assert bare.status_code == 201, bare.text
    copy = bare.json()["exam"]
    assert copy["candidates"] == 0 and copy["rooms"] == 2
    assert copy["rules"] == adm.get(f"/exams/{imported}").json()["exam"]["rules"]
    assert [a["title"] for a in copy["attachments"]] == ["考生须知"]
    full = adm.post(
        f"/exams/{imported}/copy",
        {"title": "复制的考试2", "starts_at": "2030-07-02T09:00:00+08:00", "candidates": True},
    ).json()["exam"]
    assert full["candidates"] == 3
    assert "exam_copy" in [e.action for e in audit_rows(app_ctx, full["id"])]
    past = adm.post(
        f"/exams/{imported}/copy", {"title": "x", "starts_at": "2020-01-01T09:00:00+08:00"}
    )
    assert past.status_code == 422


def test_delete_only_before_anyone_logged_in(
    adm: Admin, imported: str, app_ctx: AppContext
) -> None:
    with transaction(app_ctx.db) as session:
        attempt = session.scalars(select(Attempt).where(Attempt.exam_id == imported)).first()
        assert attempt is not None
        attempt.face_verified_at = T - timedelta(minutes=20)
    r = adm.delete(f"/exams/{imported}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "exam_in_use"
    assert "不能删除" in r.json()["error"]["message"]
    fresh = adm.post("/exams", form()).json()["exam"]["id"]
    assert adm.delete(f"/exams/{fresh}").status_code == 200
    assert adm.get(f"/exams/{fresh}").status_code == 404
    gone = audit_rows(app_ctx, fresh)
    assert gone[-1].action == "exam_delete" and gone[-1].detail["title"] == "网页新建的考试"
