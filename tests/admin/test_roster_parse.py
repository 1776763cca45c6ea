"""Reading rosters (XLSX, CSV in UTF-8, UTF-8 with BOM, GBK) and photo ZIPs (folders, GBK
names, case, unsafe paths, bombs)."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from openpyxl import load_workbook

from invigil.exams import roster
from invigil.exams.importer import PHOTO_MAX_BYTES

from .roster_files import GOOD_ROWS, csv_bytes, xlsx, zip_bytes

EXPECTED = [
    (2, "1001", "奥巴马", "R01", "obama.jpg"),
    (3, "1002", "拜登", "R01", "photos/Biden.JPG"),
]


def _plain(rows: list[roster.RosterRow]) -> list[tuple[int, str, str, str, str]]:
    return [(r.row, r.ticket, r.name, r.room, r.photo) for r in rows]


def test_xlsx_numbers_blank_rows_and_row_numbers() -> None:
    data = xlsx(
        [
            (1001, "奥巴马", "R01", "obama.jpg"),  # a ticket typed as a number
            (None, None, None, None),  # an empty row in the middle is skipped
            (1002.0, " 拜登 ", "R01", "photos/Biden.JPG"),
        ],
        blank_first=2,  # the header on row 3: row numbers are the sheet's own
    )
    rows, problems = roster.read_roster("名单.xlsx", data)
    assert problems == []
    assert _plain(rows) == [
        (4, "1001", "奥巴马", "R01", "obama.jpg"),
        (6, "1002", "拜登", "R01", "photos/Biden.JPG"),
    ]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"], ids=["utf8", "bom", "gbk", "gb18030"]
)
def test_csv_encodings(encoding: str) -> None:
    data = csv_bytes([r for r in GOOD_ROWS[:2]], encoding=encoding)
    if encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")
    rows, problems = roster.read_roster("名单.csv", data)
    assert problems == []
    assert _plain(rows) == EXPECTED


def test_english_headers_extra_columns_and_semicolons() -> None:
    data = csv_bytes(
        [("身份证", "1001", "奥巴马", "R01", "obama.jpg")],
        header=("备注", "Ticket", "Name", "room", "Photo"),
        delimiter=";",
    )
    rows, problems = roster.read_roster("roster.csv", data)
    assert problems == []
    assert _plain(rows) == [(2, "1001", "奥巴马", "R01", "obama.jpg")]


def test_missing_columns_and_unreadable_files() -> None:
    rows, problems = roster.read_roster("r.csv", csv_bytes([("1001",)], header=("准考证号",)))
    assert rows == []
    assert [(p.code, p.row, p.column) for p in problems] == [
        ("missing_column", 1, "姓名"),
        ("missing_column", 1, "考场"),
    ]
    _, problems = roster.read_roster("r.xlsx", b"PK\x03\x04 not really a workbook")
    assert [p.code for p in problems] == ["roster_unreadable"]
    _, problems = roster.read_roster("r.csv", "准考证号,姓名,考场\n".encode())
    assert [p.code for p in problems] == ["roster_empty"]
    # Bytes that are neither UTF-8 nor GB18030.
    _, problems = roster.read_roster("r.csv", b"\x81\x30\xff\xff,\x80\n")
    assert [p.code for p in problems] == ["roster_unreadable"]


def test_zip_folders_case_extensions_and_gbk_names() -> None:
    data = zip_bytes(
        {
            "考生照片/张三.JPG": b"a",
            "李四.jpg": b"b",
            "sub/dir/1003.png": b"c",
            "__MACOSX/._李四.jpg": b"junk",
            "Thumbs.db": b"junk",
        },
        gbk=["考生照片/张三.JPG", "李四.jpg"],
    )
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert not any(i.flag_bits & 0x800 for i in infos[:2])  # really stored as GBK
    archive, problems = roster.read_photos(data)
    assert problems == [] and archive is not None
    assert sorted(shown for shown, _ in archive.entries.values()) == [
        "sub/dir/1003.png",
        "李四.jpg",
        "考生照片/张三.JPG",
    ]
    assert archive.find("张三.jpg")[0] == "考生照片/张三.jpg"  # without its folder, any case
    assert archive.find("考生照片\\张三.jpg")[0] == "考生照片/张三.jpg"  # Windows separators
    assert archive.find("李四")[0] == "李四.jpg"  # without an extension
    assert archive.find("1003")[0] == "sub/dir/1003.png"
    assert archive.find("王五.jpg") == (None, [])
    assert archive.read("李四.jpg") == b"b"


def test_zip_ambiguous_names() -> None:
    archive, _ = roster.read_photos(zip_bytes({"a/x.jpg": b"1", "b/X.jpg": b"2"}))
    assert archive is not None
    assert archive.find("x.jpg") == (None, ["a/x.jpg", "b/X.jpg"])
    assert archive.find("b/x.jpg")[0] == "b/x.jpg"


def test_zip_traversal_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../evil.jpg"), b"x")
        zf.writestr(zipfile.ZipInfo("/etc/abs.jpg"), b"x")
        zf.writestr(zipfile.ZipInfo("a/../../up.jpg"), b"x")
        zf.writestr(zipfile.ZipInfo("C:\\win.jpg"), b"x")
        zf.writestr("ok.jpg", b"x")
    archive, problems = roster.read_photos(buf.getvalue())
    assert archive is not None and list(archive.entries) == ["ok.jpg"]
    assert sorted(p.params["photo"] for p in problems) == sorted(
        ["../evil.jpg", "/etc/abs.jpg", "a/../../up.jpg", "C:\\win.jpg"]
    )
    assert {p.code for p in problems} == {"zip_unsafe_path"}


def test_zip_bombs_and_junk() -> None:
    bomb = zip_bytes({"bomb.jpg": b"\0" * (PHOTO_MAX_BYTES + 10)})
    archive, problems = roster.read_photos(bomb)
    assert [p.code for p in problems] == ["zip_too_big"] and archive is not None
    assert archive.entries == {}
    _, problems = roster.read_photos(b"not a zip at all")
    assert [p.code for p in problems] == ["zip_unreadable"]


def test_reading_an_entry_stops_past_the_limit() -> None:
    big = random.Random(1).randbytes(PHOTO_MAX_BYTES + 4096)  # does not compress: no bomb
    archive, problems = roster.read_photos(zip_bytes({"big.jpg": big}))
    assert problems == [] and archive is not None
    assert len(archive.read("big.jpg")) == PHOTO_MAX_BYTES + 1


def test_templates() -> None:
    book = load_workbook(io.BytesIO(roster.template_xlsx()), read_only=True)
    sheet = book.worksheets[0]
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        list(roster.COLUMNS),
        list(roster.EXAMPLE),
    ]
    book.close()
    data = roster.template_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    rows, problems = roster.read_roster("t.csv", data)
    assert problems == [] and _plain(rows) == [(2, *roster.EXAMPLE)]
    rows, problems = roster.read_roster("t.xlsx", roster.template_xlsx())
    assert problems == [] and _plain(rows) == [(2, *roster.EXAMPLE)]
