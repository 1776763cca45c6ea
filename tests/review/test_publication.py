"""Results, publication, the candidates' lookup, exports."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook

from invigil.review import exports

from .conftest import World

ADMIN = "/api/v1/admin/exams"


def score_all(world: World, users: list[str], first: int = 0) -> list[str]:
    listed = world.get(users[0], f"/api/v1/scoring/exams/{world.exam_id}/sheets").json()["sheets"]
    ids = [s["sheet_id"] for s in listed]
    for i, user in enumerate(users, first):
        for j, sheet_id in enumerate(ids):
            r = world.post(
                user, f"/api/v1/scoring/sheets/{sheet_id}/scores", {"scores": [6 + i, 10 + j]}
            )
            assert r.status_code == 201, r.text
    return ids


def lookup(world: World, ticket: str, name: str, exam: str | None = None) -> Any:
    return world.client.post(
        "/api/v1/results/lookup",
        json={"exam_id": exam or world.exam_id, "ticket": ticket, "name": name},
    )


def test_publish_refused_until_scored_then_candidates_see_their_score(world: World) -> None:
    before = lookup(world, "K1001", "奥巴马")
    assert before.status_code == 409 and before.json()["error"]["code"] == "not_published"
    score_all(world, ["exm1"])  # only one of the two examiners
    r = world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "scores_incomplete" and err["required"] == 2
    assert err["lots"] == [
        {"room": "R01", "lot": 1, "examiners": 1},
        {"room": "R01", "lot": 2, "examiners": 1},
    ]
    assert lookup(world, "K1001", "奥巴马").status_code == 409
    score_all(world, ["exm2"], first=1)
    results = world.get("adm", f"{ADMIN}/{world.exam_id}/results").json()
    rows = {r["ticket"]: r for r in results["results"]}
    assert rows["K1001"]["totals"] == [16.0, 17.0] and rows["K1001"]["score"] == 16.5
    assert rows["K1002"]["score"] == 17.5 and rows["K2001"]["absent"] is True
    assert rows["K2001"]["score"] is None and results["published"] is False
    # The admin sees when the exam's recordings and face data will be purged.
    assert results["retention"]["retention_s"] == 180 * 86400
    assert results["retention"]["purge_at"] and results["retention"]["purged_at"] is None
    # Scored, but both candidates' flags are unruled (未裁定): publishing needs a force.
    unruled = world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {})
    assert unruled.status_code == 409
    err = unruled.json()["error"]
    assert err["code"] == "flags_unruled" and len(err["unruled"]) == 2
    assert "2 名考生的疑似违纪尚未裁定" in err["message"] and "强制发布" in err["message"]
    for ticket in ("1001", "1002"):
        url = f"/api/v1/review/attempts/{world.attempts[ticket]}/verdict"
        world.post("rev", url, {"violation": False, "reason": "录像显示无异常"})
    ok = world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {})
    assert ok.status_code == 200 and ok.json()["forced"] is False
    again = world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {})
    assert again.json()["error"]["code"] == "already_published"
    mine = lookup(world, "K1001", "奥巴马")
    assert mine.status_code == 200, mine.text
    assert mine.json()["score"] == 16.5
    assert mine.json()["verdict"] == {"violation": False, "rule": None}
    absent = lookup(world, "K2001", "汉克斯").json()
    assert absent["absent"] is True and absent["score"] is None
    # Scores are frozen once published.
    sheet_id = world.get("exm1", f"/api/v1/scoring/exams/{world.exam_id}/sheets").json()
    exams = world.get("adm", ADMIN).json()["exams"]
    assert exams[0]["published"] is True and exams[0]["scored"] == 2
    assert exams[0]["absent"] == 1 and exams[0]["entered"] == 2 and exams[0]["flagged"] == 2
    assert sheet_id["sheets"][0]["submitted"] is True


def test_forced_publication_and_frozen_scores(world: World) -> None:
    r = world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {"force": True})
    assert r.status_code == 200 and r.json()["forced"] is True
    sheet_id = world.get("exm1", f"/api/v1/scoring/exams/{world.exam_id}/sheets").json()["sheets"][
        0
    ]["sheet_id"]
    late = world.post("exm1", f"/api/v1/scoring/sheets/{sheet_id}/scores", {"scores": [1, 1]})
    assert late.status_code == 409 and late.json()["error"]["code"] == "published"
    assert lookup(world, "K1001", "奥巴马").json()["score"] is None
    audit = world.get("rev", f"/api/v1/review/audit?exam_id={world.exam_id}").json()["entries"]
    publish = [e for e in audit if e["action"] == "publish"]
    assert publish and publish[0]["staff"] == "adm" and publish[0]["detail"]["forced"] is True


def test_lookup_refuses_wrong_names_and_guessing(world: World) -> None:
    seq = world.post(
        "rev",
        f"/api/v1/review/attempts/{world.attempts['1001']}/verdict",
        {"violation": True, "rule": "第5条", "reason": "替考"},
    ).json()["verdict"]
    world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {"force": True})
    # A proposed (unconfirmed) violation is not shown to the candidate.
    assert lookup(world, "K1001", "奥巴马").json()["verdict"] is None
    reopen = {"reason": "复核违纪认定"}
    assert world.post("adm", f"{ADMIN}/{world.exam_id}/reopen", reopen).status_code == 200
    world.post("rev2", f"/api/v1/review/verdicts/{seq['id']}/confirm", {"reason": "同意"})
    world.post("adm", f"{ADMIN}/{world.exam_id}/publish", {"force": True})
    assert lookup(world, "K1001", "奥巴马").json()["verdict"] == {
        "violation": True,
        "rule": "第5条",
    }
    wrong = lookup(world, "K1001", "拜登")
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "not_found"
    assert lookup(world, "K9999", "奥巴马").status_code == 404
    assert lookup(world, "K1001", "奥巴马", exam="nope").status_code == 404
    codes = [lookup(world, "K1001", "奥巴马").status_code for _ in range(8)]
    assert codes[-1] == 429 and 200 in codes


def test_role_checks_for_admin_endpoints(world: World) -> None:
    for user in ("rev", "p1", "exm1"):
        assert world.get(user, ADMIN).status_code == 403
        assert world.get(user, f"{ADMIN}/{world.exam_id}/results").status_code == 403
        assert world.post(user, f"{ADMIN}/{world.exam_id}/publish", {}).status_code == 403
        url = f"{ADMIN}/{world.exam_id}/export?what=scores&format=csv"
        assert world.get(user, url).status_code == 403
    assert world.get("adm", f"{ADMIN}/nope/results").status_code == 404


def export(world: World, what: str, fmt: str) -> bytes:
    r = world.get("adm", f"{ADMIN}/{world.exam_id}/export?what={what}&format={fmt}")
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    return bytes(r.content)


def test_exports_csv_and_xlsx(world: World) -> None:
    score_all(world, ["exm1", "exm2"])
    world.post(
        "rev",
        f"/api/v1/review/attempts/{world.attempts['1001']}/rulings",
        {"event_seq": 1, "violation": True, "rule": "第5条", "reason": '=HYPERLINK("x")替考'},
    )
    raw = export(world, "scores", "csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["考场", "抽签号", "准考证号", "姓名"]
    by_ticket = {r[2]: r for r in rows[1:]}
    assert by_ticket["K1001"][3] == "奥巴马" and by_ticket["K1001"][-2] == "16.5"
    assert by_ticket["K2001"][4] == "缺考"

    wb = load_workbook(io.BytesIO(export(world, "scores", "xlsx")))
    ws = wb.active
    assert ws is not None and ws.title == "成绩"
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][:4] == ["考场", "抽签号", "准考证号", "姓名"]
    obama = next(v for v in values if v[2] == "K1001")
    assert obama[3] == "奥巴马" and obama[1] == 1 and obama[-2] == 16.5

    absences = list(csv.reader(io.StringIO(export(world, "absences", "csv").decode("utf-8-sig"))))
    assert [r[1:3] for r in absences[1:]] == [["K2001", "汉克斯"]]
    uploads = load_workbook(io.BytesIO(export(world, "uploads", "xlsx"))).active
    assert uploads is not None
    up = {r[1]: r for r in uploads.iter_rows(values_only=True)}
    assert up["K1001"][-2] == "是" and up["K1002"][-2] == "否"
    assert "屏幕无录像" in str(up["K1002"][-1])
    rulings = load_workbook(io.BytesIO(export(world, "rulings", "xlsx"))).active
    assert rulings is not None
    cells = [r for r in rulings.iter_rows(values_only=False) if r[1].value == "K1001"]
    assert cells and cells[0][2].value == "奥巴马" and cells[0][6].value == "第5条"
    # A reason that looks like a formula stays text.
    assert cells[0][7].data_type == "s"
    bad = world.get("adm", f"{ADMIN}/{world.exam_id}/export?what=everything&format=csv")
    assert bad.status_code == 422


HOSTILE = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", '=HYPERLINK("http://x")']


def test_exported_cells_never_become_formulas(world: World) -> None:
    url = f"/api/v1/review/attempts/{world.attempts['1001']}/rulings"
    for reason in [*HOSTILE, "\x07响铃字符"]:
        body = {"event_seq": world.flag_seqs["1001"][0], "violation": False, "reason": reason}
        assert world.post("rev", url, body).status_code == 201
    rows = list(csv.reader(io.StringIO(export(world, "rulings", "csv").decode("utf-8-sig"))))
    reasons = [r[7] for r in rows[1:]]
    # Each formula start is escaped with a leading apostrophe; the text itself is kept.
    assert reasons[: len(HOSTILE)] == ["'" + h for h in HOSTILE]
    assert all(r[:1] not in ("=", "+", "-", "@", "\t", "\r") for row in rows for r in row)

    wb = load_workbook(io.BytesIO(export(world, "rulings", "xlsx")))
    ws = wb.active
    assert ws is not None
    cells = [row[7] for row in ws.iter_rows(min_row=2)]
    assert [c.value for c in cells[: len(HOSTILE)]] == HOSTILE
    for c in cells[: len(HOSTILE)]:
        assert c.data_type == "s" and c.quotePrefix, c.value
    # A control character XML cannot hold is dropped instead of failing the export.
    assert cells[len(HOSTILE)].value == "响铃字符"
    # Numbers stay numbers.
    assert isinstance(ws.cell(row=2, column=5).value, int)


def test_tab_and_carriage_return_starts_are_escaped_too() -> None:
    # Reasons are trimmed on the way in, so these reach an export only through other fields
    # (a roster name, a rule): the writers themselves escape them.
    values = ["\t=1+1", "\r=1+1", "-", "普通文本", 12]
    rows = list(csv.reader(io.StringIO(exports.to_csv([values]).decode("utf-8-sig"))))
    assert rows == [["'\t=1+1", "'\r=1+1", "'-", "普通文本", "12"]]
    ws = load_workbook(io.BytesIO(exports.to_xlsx([values], "t"))).active
    assert ws is not None
    cells = next(iter(ws.iter_rows()))
    assert [c.data_type for c in cells] == ["s", "s", "s", "s", "n"]
    assert [bool(c.quotePrefix) for c in cells] == [True, True, True, False, False]
