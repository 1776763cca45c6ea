"""Checking a roster against the exam's rooms and its photos: every problem kind, each with the
spreadsheet's row, the column, what is wrong and how to fix it; the difference to an exam's
current candidates."""

from __future__ import annotations

import hashlib

from invigil.exams import roster
from invigil.exams.roster import Existing

from .roster_files import GOOD_ROWS, good_zip, photo, tiny_photo, xlsx, zip_bytes

ROOMS = [("R01", "第1考场"), ("R02", "第2考场")]


def _found(check: roster.RosterCheck) -> list[tuple[str, int | None, str | None]]:
    return [(p.code, p.row, p.column) for p in check.problems]


def test_a_clean_roster_with_photos() -> None:
    seen: list[tuple[int, int]] = []
    check = roster.check_roster(
        "名单.xlsx", xlsx(GOOD_ROWS), good_zip(), ROOMS, progress=lambda d, t: seen.append((d, t))
    )
    assert check.problems == [] and check.ok
    assert [(c.ticket, c.room, c.photo) for c in check.candidates] == [
        ("1001", "R01", "obama.jpg"),
        ("1002", "R01", "photos/biden.jpg"),
        ("2001", "R02", "照片/tom_hanks.jpg"),  # the room by its name
    ]
    assert all(c.embedding for c in check.candidates)
    assert seen[-1] == (3, 3)
    assert [a["ticket"] for a in check.diff["added"]] == ["1001", "1002", "2001"]
    assert check.diff["changed"] == [] and check.diff["removed"] == []


def test_every_problem_in_one_run() -> None:
    rows = [
        ("1001", "奥巴马", "R01", "obama.jpg"),  # 2: fine
        ("1001", "另一个", "R01", "biden.jpg"),  # 3: duplicate ticket
        ("1003", "", "R01", "obama3.jpg"),  # 4: empty name
        ("1004", "某人", "R09", "obama2.jpg"),  # 5: unknown room
        ("1005", "无照片", "R01", ""),  # 6: no photo named, none by ticket
        ("1006", "缺照片", "R02", "nope.jpg"),  # 7: not in the ZIP
        ("1007", "空房间", "R02", "empty.jpg"),  # 8: no face
        ("1008", "合影", "R02", "group.jpg"),  # 9: several faces
        ("1009", "坏图", "R02", "broken.jpg"),  # 10: unreadable
        ("1010", "小图", "R02", "tiny.jpg"),  # 11: too small
        ("1011", "遮挡", "R02", "masked.jpg"),  # 12: covered face
        ("X" * 70, "太长", "R01", "obama.jpg"),  # 13: ticket too long
    ]
    photos = zip_bytes(
        {
            "obama.jpg": photo("obama.jpg"),
            "biden.jpg": photo("biden.jpg"),
            "obama3.jpg": photo("obama3.jpg"),
            "obama2.jpg": photo("obama2.jpg"),
            "empty.jpg": photo("empty.jpg"),
            "group.jpg": photo("group_t1.jpg"),
            "broken.jpg": b"\xff\xd8\xff\xe0 this is no JPEG",
            "tiny.jpg": tiny_photo(),
            "masked.jpg": photo("obama_masked.jpg"),
            "spare/extra.jpg": photo("tom_hanks.jpg"),
        }
    )
    check = roster.check_roster("名单.xlsx", xlsx(rows), photos, ROOMS)
    assert not check.ok
    assert _found(check) == [
        ("unused_photo", None, "照片压缩包"),
        ("duplicate_ticket", 3, "准考证号"),
        ("empty_cell", 4, "姓名"),
        ("unknown_room", 5, "考场"),
        ("missing_photo", 6, "照片文件名"),
        ("photo_not_in_zip", 7, "照片文件名"),
        ("no_face", 8, "照片文件名"),
        ("multiple_faces", 9, "照片文件名"),
        ("bad_image", 10, "照片文件名"),
        ("photo_too_small", 11, "照片文件名"),
        ("face_covered", 12, "照片文件名"),
        ("too_long", 13, "准考证号"),
    ]
    by_code = {p.code: p.as_dict() for p in check.problems}
    assert by_code["unused_photo"]["warning"] is True
    assert by_code["duplicate_ticket"]["message"] == "准考证号 1001 重复：第 2 行与第 3 行"
    unknown = by_code["unknown_room"]
    assert "R09" in unknown["message"] and "R01 第1考场、R02 第2考场" in unknown["message"]
    assert "考场与人员" in unknown["fix"] and "never creates rooms" in unknown["fix_en"]
    assert (
        "60×" in by_code["photo_too_small"]["message"]
        or "×60" in by_code["photo_too_small"]["message"]
    )
    assert by_code["photo_not_in_zip"]["message_en"] == "The photo ZIP has no “nope.jpg”"
    for p in check.problems:  # every problem says what and how, in both languages
        d = p.as_dict()
        assert d["message"] and d["fix"] and d["message_en"] and d["fix_en"]
        assert "{" not in d["message"] + d["fix"] + d["message_en"] + d["fix_en"]
    assert "第 3 行「准考证号」问题：准考证号 1001 重复" in str(check.problems[1])
    assert check.diff["added"]  # computed, though nothing may be applied


def test_rows_with_other_problems_do_not_cost_a_face_check() -> None:
    rows = [("1001", "", "R01", "obama.jpg"), ("1002", "拜登", "R01", "biden.jpg")]
    seen: list[tuple[int, int]] = []
    zipped = zip_bytes({"obama.jpg": photo("obama.jpg"), "biden.jpg": photo("biden.jpg")})
    check = roster.check_roster(
        "r.xlsx", xlsx(rows), zipped, ROOMS, progress=lambda d, t: seen.append((d, t))
    )
    assert _found(check) == [("empty_cell", 2, "姓名")]
    assert seen == [(1, 1)]


def test_photo_found_by_ticket_and_no_zip() -> None:
    rows = [("1001", "奥巴马", "R01", "")]
    check = roster.check_roster(
        "r.xlsx", xlsx(rows), zip_bytes({"1001.JPG": photo("obama.jpg")}), ROOMS
    )
    assert check.ok and check.candidates[0].photo == "1001.jpg"
    check = roster.check_roster("r.xlsx", xlsx([("1001", "奥巴马", "R01", "a.jpg")]), None, ROOMS)
    assert _found(check) == [("no_zip", 2, "照片文件名")]
    # A practice exam needs no photos (the first login's face becomes the reference).
    check = roster.check_roster(
        "r.xlsx", xlsx([("1001", "奥巴马", "R01", "")]), None, ROOMS, practice=True
    )
    assert check.ok and check.candidates[0].embedding is None


def test_difference_with_the_current_candidates() -> None:
    obama = hashlib.sha256(photo("obama.jpg")).hexdigest()
    existing = {
        "1001": Existing("奥巴马", "R01", obama),  # same photo again: unchanged
        "1002": Existing("拜登", "R02", "old"),  # room and photo change
        "3001": Existing("离开", "R01", "x"),  # not in the roster: removed
    }
    rows = [
        ("1001", "奥巴马", "R01", "obama.jpg"),
        ("1002", "拜登", "R01", "biden.jpg"),
        ("2001", "汉克斯", "R02", "tom_hanks.jpg"),
    ]
    zipped = zip_bytes({n: photo(n) for n in ("obama.jpg", "biden.jpg", "tom_hanks.jpg")})
    seen: list[tuple[int, int]] = []
    check = roster.check_roster(
        "r.xlsx",
        xlsx(rows),
        zipped,
        ROOMS,
        existing=existing,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert check.ok
    assert seen[-1] == (2, 2)  # the unchanged photo is not checked again
    assert check.diff == {
        "added": [{"ticket": "2001", "name": "汉克斯", "room": "R02", "row": 4}],
        "changed": [
            {
                "ticket": "1002",
                "name": "拜登",
                "row": 3,
                "changes": {"room": ["R02", "R01"], "photo": True},
            }
        ],
        "removed": [{"ticket": "3001", "name": "离开", "room": "R01"}],
        "unchanged": 1,
    }
    # Without a ZIP, listed candidates keep their photos: only names and rooms change.
    rows2 = [("1001", "奥巴马二", "R01", "obama.jpg"), ("1002", "拜登", "R02", "")]
    check = roster.check_roster("r.xlsx", xlsx(rows2), None, ROOMS, existing=existing)
    assert check.ok
    assert [c["changes"] for c in check.diff["changed"]] == [{"name": ["奥巴马", "奥巴马二"]}]
    assert [c.photo for c in check.candidates] == [None, None]
