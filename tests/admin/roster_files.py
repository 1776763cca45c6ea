"""Rosters, photo ZIPs and photos for the roster import tests, made from tests/data/faces."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from typing import Any

from conftest import FACES
from openpyxl import Workbook
from PIL import Image

HEADER = ("准考证号", "姓名", "考场", "照片文件名")


def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def tiny_photo() -> bytes:
    """A real face shrunk below the size a face can be compared at."""
    img = Image.open(FACES / "obama.jpg").convert("RGB")
    img.thumbnail((60, 60))
    out = io.BytesIO()
    img.save(out, "JPEG")
    return out.getvalue()


def xlsx(
    rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER, blank_first: int = 0
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for _ in range(blank_first):
        sheet.append([])
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(
    rows: Sequence[Sequence[Any]],
    encoding: str = "utf-8",
    header: Sequence[str] = HEADER,
    delimiter: str = ",",
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def zip_bytes(files: dict[str, bytes], gbk: Sequence[str] = ()) -> bytes:
    """A ZIP of the files; names in ``gbk`` are stored as GBK bytes without the UTF-8 flag, as
    Windows' built-in compression does on a Chinese system (zipfile itself cannot write that:
    the placeholder name is swapped for the GBK bytes afterwards)."""
    swaps: list[tuple[bytes, bytes]] = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, data) in enumerate(files.items()):
            if name in gbk:
                raw = name.encode("gbk")
                placeholder = f"{i:0{len(raw)}d}".encode()
                assert len(placeholder) == len(raw)
                swaps.append((placeholder, raw))
                zf.writestr(placeholder.decode(), data)
            else:
                zf.writestr(name, data)
    body = buf.getvalue()
    for placeholder, raw in swaps:
        assert body.count(placeholder) == 2, "placeholder must appear in both headers only"
        body = body.replace(placeholder, raw)
    return body


GOOD_ROWS = [
    ("1001", "奥巴马", "R01", "obama.jpg"),
    ("1002", "拜登", "R01", "photos/Biden.JPG"),
    ("2001", "汉克斯", "第2考场", "tom_hanks.jpg"),
]


def good_zip() -> bytes:
    return zip_bytes(
        {
            "obama.jpg": photo("obama.jpg"),
            "photos/biden.jpg": photo("biden.jpg"),
            "照片/tom_hanks.jpg": photo("tom_hanks.jpg"),
        }
    )
