"""Review and adjudication: triage, one candidate's evidence, rulings, verdicts, the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invigil.attempts.models import Attempt
from invigil.core.db import transaction
from invigil.review.service import rulings_for_attempt

from .conftest import World

EXAM = "/api/v1/review/exams"


def triage(world: World, query: str = "") -> list[dict[str, Any]]:
    r = world.get("rev", f"{EXAM}/{world.exam_id}/triage{query}")
    assert r.status_code == 200, r.text
    return list(r.json()["candidates"])


def test_exam_list(world: World) -> None:
    r = world.get("rev", EXAM)
    assert r.status_code == 200
    (exam,) = r.json()["exams"]
    assert exam["id"] == world.exam_id and exam["published"] is False
    assert exam["deadline"] == "2030-06-01T01:20:00Z" and exam["candidates"] == 3


def test_triage_orders_by_suspicion_and_lists_absences_and_missing_uploads(world: World) -> None:
    rows = triage(world)
    assert [r["ticket"] for r in rows] == ["K1001", "K1002", "K2001"]
    first, second, absent = rows
    # Two face mismatches (weight 2 × 0.93 and × 0.71) and two focus losses (1 each).
    assert first["flag_score"] == pytest.approx(2 * 0.93 + 2 * 0.71 + 2)
    assert first["flags"] == [
        {"kind": "face_mismatch", "count": 2, "max_confidence": 0.93},
        {"kind": "focus_lost", "count": 2, "max_confidence": 1.0},
    ]
    assert first["name"] == "奥巴马" and first["lot"] == 1 and first["room"] == "R01"
    assert first["uploads_complete"] is True and first["absent"] is False
    assert first["stage"] == "finished" and first["verdict"] is None
    assert second["flag_score"] == 1.0 and second["uploads_complete"] is False
    assert {m["kind"] for m in second["missing_uploads"]} == {"screen"}
    # The world is past the upload grace: what is missing now is 缺失, not 上传中.
    assert [r["uploads_open"] for r in rows] == [False, False, False]
    assert absent["absent"] is True and absent["flags"] == [] and absent["stage"] == "absent"
    # Nothing was expected from an absent candidate: neither complete nor missing.
    assert absent["uploads_complete"] is None and absent["entered"] is False


def test_an_incomplete_upload_is_in_progress_until_the_candidates_uploads_close(
    world: World,
) -> None:
    """A reviewer looking during the exam or its upload grace sees 上传中, not 缺失: the
    desk and the phone are still sending. The same candidate is 缺失 once uploads close."""
    with world.ctx.db.session() as session:
        attempt = session.get(Attempt, world.attempts["1002"])
        assert attempt is not None
        close = attempt.uploads_close_at  # the deadline and the grace
    for at, still_open in ((close - timedelta(seconds=1), True), (close, False)):
        world.clock.set(at)
        second = next(r for r in triage(world) if r["ticket"] == "K1002")
        assert second["uploads_complete"] is False
        assert second["uploads_open"] is still_open, at


def test_triage_filters(world: World) -> None:
    # The kind filter's options: every flag kind present, whatever the filter in use.
    for query in ("", "?kind=face_mismatch", "?room=R02"):
        r = world.get("rev", f"{EXAM}/{world.exam_id}/triage{query}").json()
        assert r["kinds"] == ["face_mismatch", "focus_lost"], query
    assert [r["ticket"] for r in triage(world, "?kind=face_mismatch")] == ["K1001"]
    assert [r["ticket"] for r in triage(world, "?kind=focus_lost")] == ["K1001", "K1002"]
    assert [r["ticket"] for r in triage(world, "?min_confidence=0.95")] == ["K1001", "K1002"]
    assert [r["ticket"] for r in triage(world, "?kind=face_mismatch&min_confidence=0.95")] == []
    assert [r["ticket"] for r in triage(world, "?only_flagged=true")] == ["K1001", "K1002"]
    assert [r["ticket"] for r in triage(world, "?room=R02")] == ["K2001"]
    assert triage(world, "?kind=second_screen") == []


def test_review_data_has_everything_the_page_needs(world: World) -> None:
    a1 = world.attempts["1001"]
    r = world.get("rev", f"/api/v1/review/attempts/{a1}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["candidate"]["ticket"] == "K1001" and d["candidate"]["name"] == "奥巴马"
    assert d["candidate"]["photo_url"] == f"/api/v1/review/attempts/{a1}/photo"
    photo = world.get("rev", d["candidate"]["photo_url"])
    assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"
    assert d["schedule"]["questions_at"] == "2030-06-01T01:00:00Z"
    assert d["schedule"]["entered_at"] == "2030-06-01T00:55:00Z"
    assert d["schedule"]["finished_at"] == "2030-06-01T01:18:00Z"
    webcams = [x for x in d["recordings"] if x["kind"] == "webcam"]
    assert [(x["started_at"], x["ended_at"]) for x in webcams] == [
        ("2030-06-01T00:55:00Z", "2030-06-01T01:05:00Z"),
        ("2030-06-01T01:06:00Z", "2030-06-01T01:18:00Z"),
    ]
    assert all(
        x["media_url"].startswith(f"/api/v1/recordings/{x['id']}/media?sig=")
        for x in d["recordings"]
    )
    # The minute without a webcam between the two recordings shows as a gap.
    assert d["gaps"] == [
        {"kind": "webcam", "from": "2030-06-01T01:05:00Z", "to": "2030-06-01T01:06:00Z"}
    ]
    kinds = [e["kind"] for e in d["events"]]
    assert kinds.count("face_mismatch") == 2 and "proctor_note" in kinds
    assert all(len(e["hash"]) == 64 for e in d["events"])
    flags = {f["seq"]: f for f in d["flags"]}
    assert set(flags) == set(world.flag_seqs["1001"])
    face = flags[world.flag_seqs["1001"][0]]
    assert face["confidence"] == 0.93 and face["at"] == "2030-06-01T01:02:00Z"
    assert face["snapshot_url"] == f"/api/v1/snapshots/{world.snapshots[0]}"
    assert flags[world.flag_seqs["1001"][2]]["snapshot_url"] == (
        f"/api/v1/snapshots/{world.snapshots[1]}"
    )
    assert [s["id"] for s in d["snapshots"]] == world.snapshots
    assert d["questions"] == [
        {"position": 1, "text": "QUESTION-ONE 请谈谈你对本岗位的认识。", "points": 10},
        {"position": 2, "text": "QUESTION-TWO 第二题", "points": 20},
    ]
    assert [(b["at"], b["source"]) for b in d["answer_boundaries"]] == [
        ("2030-06-01T01:09:00Z", "audio")
    ]
    assert [(n["author"], n["text"]) for n in d["notes"]] == [("p1", "考生频繁低头")]
    assert [w["text"] for w in d["warnings"]] == ["请正视摄像头"]
    assert [(h["from"], h["text"]) for h in d["help"]] == [
        ("candidate", "摄像头好像黑屏了"),
        ("staff", "请刷新设备"),
    ]
    assert d["verdict"] is None


def test_reviewer_plays_recordings_with_range(world: World) -> None:
    url = f"/api/v1/recordings/{world.recordings['webcam1']}/media"
    r = world.get("rev", url, headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"\x1a\x45\xdf\xa3"


def rule(world: World, user: str, seq: int, violation: bool, reason: str, rule_: Any = None) -> Any:
    a1 = world.attempts["1001"]
    return world.post(
        user,
        f"/api/v1/review/attempts/{a1}/rulings",
        {"event_seq": seq, "violation": violation, "rule": rule_, "reason": reason},
    )


def test_rulings_supersede_and_both_are_kept(world: World) -> None:
    seq = world.flag_seqs["1001"][0]
    r = rule(world, "rev", seq, True, "与报名照片明显不符", "《考场规则》第5条 替考")
    assert r.status_code == 201, r.text
    world.clock.advance(timedelta(minutes=1))
    r = rule(world, "rev2", seq, False, "光线原因，复看录像确认为本人")
    assert r.status_code == 201
    d = world.get("rev", f"/api/v1/review/attempts/{world.attempts['1001']}").json()
    flag = next(f for f in d["flags"] if f["seq"] == seq)
    assert flag["ruling"]["violation"] is False and flag["ruling"]["by"] == "rev2"
    assert [h["by"] for h in flag["history"]] == ["rev", "rev2"]
    assert flag["history"][0]["rule"] == "《考场规则》第5条 替考"


def test_ruling_checks(world: World) -> None:
    seqs = world.flag_seqs["1001"]
    assert rule(world, "rev", seqs[0], True, "理由").json()["error"]["code"] == "rule_required"
    assert rule(world, "rev", 999, False, "理由").json()["error"]["code"] == "event_not_found"
    # The help message is no suspected violation.
    help_seq = max(seqs) + 1
    r = rule(world, "rev", help_seq, False, "理由")
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_a_flag"
    assert rule(world, "rev", seqs[0], False, "   ").status_code == 422


def verdict(world: World, user: str, violation: bool, rule_: Any = None) -> Any:
    return world.post(
        user,
        f"/api/v1/review/attempts/{world.attempts['1001']}/verdict",
        {"violation": violation, "rule": rule_, "reason": "综合录像与日志认定"},
    )


def test_violation_verdict_needs_a_different_second_reviewer(world: World) -> None:
    r = verdict(world, "rev", True, "《考场规则》第5条")
    assert r.status_code == 201, r.text
    v = r.json()["verdict"]
    assert v["state"] == "proposed" and v["proposed_by"] == "rev"
    url = f"/api/v1/review/verdicts/{v['id']}/confirm"
    same = world.post("rev", url, {"reason": "同意"})
    assert same.status_code == 409 and same.json()["error"]["code"] == "second_reviewer_required"
    rows = world.get("rev", f"{EXAM}/{world.exam_id}/triage").json()["candidates"]
    assert rows[0]["verdict"]["state"] == "proposed"
    ok = world.post("rev2", url, {"reason": "复核同意"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["verdict"]["state"] == "confirmed"
    assert ok.json()["verdict"]["confirmed_by"] == "rev2"
    again = world.post("adm", url, {"reason": "再次"})
    assert again.json()["error"]["code"] == "already_confirmed"
    rows = world.get("rev", f"{EXAM}/{world.exam_id}/triage").json()["candidates"]
    assert rows[0]["verdict"] == {
        "id": v["id"],
        "state": "confirmed",
        "violation": True,
        "rule": "《考场规则》第5条",
    }


def test_not_a_violation_is_final_at_once_and_a_newer_verdict_supersedes(world: World) -> None:
    first = verdict(world, "rev", True, "第5条").json()["verdict"]
    world.clock.advance(timedelta(seconds=5))
    r = verdict(world, "rev", False)
    assert r.status_code == 201 and r.json()["verdict"]["state"] == "confirmed"
    late = world.post("rev2", f"/api/v1/review/verdicts/{first['id']}/confirm", {"reason": "x"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "superseded"
    d = world.get("rev", f"/api/v1/review/attempts/{world.attempts['1001']}").json()
    assert d["verdict"]["violation"] is False
    assert [v["violation"] for v in d["verdicts"]] == [True, False]


def test_one_reviewer_cannot_overturn_a_confirmed_violation(world: World) -> None:
    a1 = world.attempts["1001"]
    v = verdict(world, "rev", True, "第5条").json()["verdict"]
    assert world.post("rev2", f"/api/v1/review/verdicts/{v['id']}/confirm", {"reason": "同意"})
    world.clock.advance(timedelta(seconds=5))
    # rev alone says "not a violation": it waits for a second reviewer; the finding stands.
    r = verdict(world, "rev", False)
    assert r.status_code == 201, r.text
    pending = r.json()["verdict"]
    assert pending["state"] == "proposed" and pending["replaces"] == v["id"]
    d = world.get("rev", f"/api/v1/review/attempts/{a1}").json()
    assert d["verdict"]["id"] == v["id"] and d["verdict"]["violation"] is True
    assert d["pending_verdict"]["id"] == pending["id"]
    rows = world.get("rev", f"{EXAM}/{world.exam_id}/triage").json()["candidates"]
    assert next(r for r in rows if r["attempt_id"] == a1)["verdict"]["violation"] is True
    url = f"/api/v1/review/verdicts/{pending['id']}/confirm"
    same = world.post("rev", url, {"reason": "我确认"})
    assert same.status_code == 409 and same.json()["error"]["code"] == "second_reviewer_required"
    # Nor can rev2 (who confirmed the finding) be outvoted by rev re-proposing: a newer
    # proposal replaces the pending one, never the confirmed verdict.
    world.clock.advance(timedelta(seconds=1))
    again = verdict(world, "rev", False).json()["verdict"]
    gone = world.post("rev2", url, {"reason": "同意"})
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "superseded"
    d = world.get("rev", f"/api/v1/review/attempts/{a1}").json()
    assert d["verdict"]["id"] == v["id"] and d["pending_verdict"]["id"] == again["id"]
    # A second reviewer's confirmation makes it final.
    world.clock.advance(timedelta(seconds=1))
    ok = world.post("rev2", f"/api/v1/review/verdicts/{again['id']}/confirm", {"reason": "复核"})
    assert ok.status_code == 200, ok.text
    d = world.get("rev", f"/api/v1/review/attempts/{a1}").json()
    assert d["verdict"]["id"] == again["id"] and d["verdict"]["violation"] is False
    assert d["pending_verdict"] is None
    states = {x["id"]: x["superseded_at"] is not None for x in d["verdicts"]}
    assert states == {v["id"]: True, pending["id"]: True, again["id"]: False}


def test_decisions_frozen_after_publication_until_an_admin_reopens(world: World) -> None:
    a1 = world.attempts["1001"]
    v = verdict(world, "rev", True, "第5条").json()["verdict"]
    assert world.post(
        "adm", f"/api/v1/admin/exams/{world.exam_id}/publish", {"force": True}
    ).is_success
    for r in (
        verdict(world, "rev", False),
        world.post("rev2", f"/api/v1/review/verdicts/{v['id']}/confirm", {"reason": "同意"}),
        rule(world, "rev", world.flag_seqs["1001"][0], False, "误报"),
    ):
        assert r.status_code == 409 and r.json()["error"]["code"] == "published", r.text
        assert "重新开放" in r.json()["error"]["message"]
    assert world.get("rev", f"/api/v1/review/attempts/{a1}").json()["published"] is True
    reopen = f"/api/v1/admin/exams/{world.exam_id}/reopen"
    # Only an admin, and only with a reason.
    assert world.post("rev", reopen, {"reason": "复议"}).status_code == 403
    assert world.post("adm", reopen, {"reason": "  "}).status_code == 422
    r = world.post("adm", reopen, {"reason": "考生申诉，复议违纪认定"})
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn"]["published_by"] == "adm"
    assert world.post("adm", reopen, {"reason": "again"}).json()["error"]["code"] == "not_published"
    ok = world.post("rev2", f"/api/v1/review/verdicts/{v['id']}/confirm", {"reason": "同意"})
    assert ok.status_code == 200, ok.text
    entries = world.get("rev", f"/api/v1/review/audit?exam_id={world.exam_id}").json()["entries"]
    reopened = [e for e in entries if e["action"] == "reopen"]
    assert [(e["staff"], e["detail"]["reason"]) for e in reopened] == [
        ("adm", "考生申诉，复议违纪认定")
    ]


def test_rulings_for_attempt_lists_everything_oldest_first(world: World) -> None:
    seq = world.flag_seqs["1001"][0]
    rule(world, "rev", seq, True, "替考", "第5条")
    world.clock.advance(timedelta(seconds=1))
    v = verdict(world, "rev", True, "第5条").json()["verdict"]
    world.clock.advance(timedelta(seconds=1))
    world.post("rev2", f"/api/v1/review/verdicts/{v['id']}/confirm", {"reason": "同意"})
    with transaction(world.ctx.db) as session:
        items = rulings_for_attempt(session, world.attempts["1001"])
        assert rulings_for_attempt(session, world.attempts["2001"]) == []
    assert [i["type"] for i in items] == ["ruling", "verdict", "confirmation"]
    assert items[0]["event_seq"] == seq and items[2]["by"] == "rev2"
    assert items[1]["state"] == "confirmed"


def test_audit_log_records_views_rulings_and_recording_reads(world: World) -> None:
    a1 = world.attempts["1001"]
    world.get("rev", f"/api/v1/review/attempts/{a1}")
    world.get("rev2", f"/api/v1/recordings/{world.recordings['webcam0']}/media")
    rule(world, "rev", world.flag_seqs["1001"][2], False, "切屏时间很短，属误触")
    verdict(world, "rev", True, "第5条")
    entries = world.get("rev2", f"/api/v1/review/audit?attempt_id={a1}").json()["entries"]
    actions = [(e["staff"], e["action"]) for e in entries]
    assert ("rev", "view") in actions and ("rev", "ruling") in actions
    assert ("rev", "verdict") in actions and ("rev2", "recording_media") in actions
    ruling = next(e for e in entries if e["action"] == "ruling")
    assert ruling["detail"]["reason"] == "切屏时间很短，属误触"
    assert ruling["detail"]["event_kind"] == "focus_lost"
    by_exam = world.get("rev", f"/api/v1/review/audit?exam_id={world.exam_id}").json()
    assert len(by_exam["entries"]) >= len(entries)


def test_audit_table_and_rulings_refuse_update_and_delete(world: World) -> None:
    world.get("rev", f"/api/v1/review/attempts/{world.attempts['1001']}")
    assert rule(world, "rev", world.flag_seqs["1001"][0], False, "本人").status_code == 201
    for sql in (
        "UPDATE review_audit_log SET username = 'nobody'",
        "DELETE FROM review_audit_log",
        "UPDATE review_rulings SET violation = true",
        "DELETE FROM review_rulings",
    ):
        with pytest.raises(DBAPIError) as exc, transaction(world.ctx.db) as session:
            session.execute(text(sql))
        assert "append-only" in str(exc.value)
    with transaction(world.ctx.db) as session:
        names = session.execute(text("SELECT username FROM review_audit_log")).scalars().all()
    assert names == ["rev", "rev"]
    d = world.get("rev2", f"/api/v1/review/attempts/{world.attempts['1001']}").json()
    assert d["flags"][0]["ruling"]["violation"] is False


def test_roles(world: World) -> None:
    a1 = world.attempts["1001"]
    for user in ("p1", "exm1"):
        assert world.get(user, EXAM).status_code == 403
        assert world.get(user, f"/api/v1/review/attempts/{a1}").status_code == 403
        assert world.get(user, f"{EXAM}/{world.exam_id}/triage").status_code == 403
        assert rule(world, user, world.flag_seqs["1001"][0], False, "x").status_code == 403
        assert world.get(user, "/api/v1/review/audit").status_code == 403
    # Admins review too; reviewers cannot publish or see the admin pages.
    assert world.get("adm", f"/api/v1/review/attempts/{a1}").status_code == 200
    assert world.get("rev", "/api/v1/admin/exams").status_code == 403
    assert world.post("rev", f"/api/v1/admin/exams/{world.exam_id}/publish", {}).status_code == 403
    assert world.client.get(EXAM).status_code == 401


def test_unknown_ids(world: World) -> None:
    assert world.get("rev", "/api/v1/review/attempts/nope").status_code == 404
    assert world.get("rev", f"{EXAM}/nope/triage").status_code == 404
    r = world.post("rev2", "/api/v1/review/verdicts/nope/confirm", {"reason": "x"})
    assert r.status_code == 404


def test_media_links_stream_without_a_header_for_that_path_only(world: World) -> None:
    """A <video> cannot send the bearer token: the review data's media URLs carry a signed
    link bound to the staff session, the path and an expiry."""
    a1 = world.attempts["1001"]
    data = world.get("rev", f"/api/v1/review/attempts/{a1}").json()
    webcam = next(r for r in data["recordings"] if r["id"] == world.recordings["webcam1"])
    url = webcam["media_url"]
    assert "sig=" in url
    client = world.client
    r = client.get(url, headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"\x1a\x45\xdf\xa3"
    # Bound to its path: another recording, or a changed signature, is refused.
    other = world.recordings["screen"]
    link = url.split("?", 1)[1]
    assert client.get(f"/api/v1/recordings/{other}/media?{link}").status_code == 401
    assert client.get(url[:-2] + ("aa" if not url.endswith("aa") else "bb")).status_code == 401
    assert client.get(f"/api/v1/review/attempts/{a1}?{link}").status_code == 401
    # Reads only, and through the staff member's own rights and access log.
    assert client.post(url.replace("/media", "/finalize"), json={}).status_code in (401, 422)
    audit = world.get("rev", f"/api/v1/review/audit?attempt_id={a1}").json()["entries"]
    assert any(e["staff"] == "rev" and e["action"] == "recording_media" for e in audit), audit[-3:]
    # It expires, and dies with the session.
    world.clock.advance(timedelta(hours=2, seconds=1))
    r = client.get(url)
    assert r.status_code == 401 and r.json()["error"]["code"] == "link_expired"
