"""A roster (XLSX or CSV) with a ZIP of enrolment photos, checked as a whole.

Columns 准考证号, 姓名, 考场, 照片文件名 (or ticket, name, room, photo). Every problem is
collected with the row number the spreadsheet shows, the column, what is wrong and how to fix
it (Chinese and English), so an admin fixes the file in one pass; warnings (a photo in the ZIP
that no row names) do not stop an import, errors do. Photos go through the exam file's
validation core (:func:`invigil.exams.importer.enrol_photos`). Nothing here touches the
database: the web flow (roster_jobs) and the CLI pass in the exam's rooms and the candidates
it already has, and get back the checked candidates and the difference to apply.

Rooms are never created from a roster: a room must exist in the exam (the exam file's
``rooms`` or the console's 考场与人员 page); the 考场 cell names its id (R01) or its name.

The ZIP is read in memory, never extracted, so no entry name can reach the file system; still,
entries with absolute or ``..`` paths are refused as a sign of a crafted archive, and sizes are
bounded before and while decompressing (zip bombs).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import posixpath
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from invigil.exams.importer import PHOTO_MAX_BYTES, PHOTO_PROBLEMS, PhotoCheck, enrol_photos

Progress = Callable[[int, int], None]

# The columns, as the template names them, with the other headers each one accepts.
TICKET, NAME, ROOM, PHOTO = "准考证号", "姓名", "考场", "照片文件名"
COLUMNS = (TICKET, NAME, ROOM, PHOTO)
COLUMN_EN = {TICKET: "Ticket", NAME: "Name", ROOM: "Room", PHOTO: "Photo file"}
_ALIASES = {
    TICKET: ("准考证号", "准考证", "准考证编号", "ticket", "ticketno", "ticketnumber"),
    NAME: ("姓名", "考生姓名", "name"),
    ROOM: ("考场", "考场编号", "考场号", "room", "roomid"),
    PHOTO: ("照片文件名", "照片", "照片文件", "photo", "photofile", "photofilename"),
}
REQUIRED = (TICKET, NAME, ROOM)
ZIP_COLUMN = "照片压缩包"

MAX_ROWS = 20_000
MAX_ZIP_ENTRIES = 30_000
MAX_ZIP_TOTAL = 4 * 1024**3  # declared uncompressed bytes of all entries
MAX_RATIO = 200  # a photo compresses a few percent; a ratio like this is a bomb
MAX_TICKET, MAX_NAME = 64, 200  # the database columns
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
_JUNK = ("__macosx/", ".ds_store", "thumbs.db", "desktop.ini")

# code -> (what is wrong, how to fix it) in Chinese, then in English; {} are the params.
MESSAGES: dict[str, tuple[str, str, str, str]] = {
    "roster_unreadable": (
        "无法读取考生名单：{detail}",
        "用 Excel 另存为 .xlsx，或另存为 CSV（UTF-8）后重新上传",
        "The roster cannot be read: {detail}",
        "Save it from Excel as .xlsx, or as CSV (UTF-8), and upload it again",
    ),
    "roster_empty": (
        "考生名单中没有考生",
        "按模板在表头下逐行填写考生",
        "The roster lists no candidates",
        "Fill in one candidate per row below the header, as in the template",
    ),
    "too_many_rows": (
        "考生名单超过 {max} 行",
        "分成几场考试，或联系技术人员",
        "The roster has more than {max} rows",
        "Split it into several exams, or ask technical staff",
    ),
    "missing_column": (
        "表头缺少「{column}」列",
        "在第一行加上列名「{column}」（可下载模板对照）",
        "The header has no “{column_en}” column",
        "Add the column “{column}” to the first row (compare with the template)",
    ),
    "duplicate_column": (
        "表头中「{column}」出现了两次",
        "删除多余的一列",
        "The header has the “{column_en}” column twice",
        "Delete the extra column",
    ),
    "empty_cell": (
        "「{column}」为空",
        "填写该考生的{column}",
        "“{column_en}” is empty",
        "Fill in the candidate's {column_en}",
    ),
    "too_long": (
        "「{column}」太长（{length} 个字符，最多 {max}）",
        "改短后重新上传",
        "“{column_en}” is too long ({length} characters, at most {max})",
        "Shorten it and upload again",
    ),
    "duplicate_ticket": (
        "准考证号 {ticket} 重复：第 {first} 行与第 {row} 行",
        "每个准考证号只能出现一次：改正或删除其中一行",
        "Ticket {ticket} appears twice: rows {first} and {row}",
        "Each ticket may appear once: correct or delete one of the rows",
    ),
    "unknown_room": (
        "未知考场「{room}」（本场考试的考场：{known}）",
        "改为已有考场的编号或名称；新考场请先在「考场与人员」中添加（导入不会新建考场）",
        "Unknown room “{room}” (this exam's rooms: {known})",
        "Use an existing room's id or name; add new rooms under Rooms & staff first "
        "(importing never creates rooms)",
    ),
    "missing_photo": (
        "没有照片：照片文件名为空，压缩包中也没有 {ticket}.jpg",
        "填写照片文件名，并把照片放进照片压缩包",
        "No photo: the photo file name is empty and the ZIP has no {ticket}.jpg",
        "Fill in the photo file name and put the photo in the photo ZIP",
    ),
    "photo_not_in_zip": (
        "照片压缩包中没有「{photo}」",
        "把该照片放进压缩包，或改正文件名（不区分大小写，可带文件夹）",
        "The photo ZIP has no “{photo}”",
        "Put the photo in the ZIP, or correct the file name (case does not matter, "
        "folders are optional)",
    ),
    "no_zip": (
        "需要照片「{photo}」，但没有上传照片压缩包",
        "同时上传照片压缩包（ZIP）",
        "The photo “{photo}” is needed but no photo ZIP was uploaded",
        "Upload the photo ZIP as well",
    ),
    "ambiguous_photo": (
        "压缩包中有多个「{photo}」：{paths}",
        "在照片文件名中写明文件夹，或删除重复的照片",
        "The ZIP has several “{photo}”: {paths}",
        "Name the folder in the photo file name, or delete the duplicates",
    ),
    "unused_photo": (
        "压缩包中的照片「{photo}」没有对应的考生（不会导入）",
        "如是漏填，请在名单中填写它的文件名；否则可忽略",
        "The photo “{photo}” in the ZIP belongs to no row (it is not imported)",
        "If a row should name it, fill in its file name; otherwise ignore this",
    ),
    "zip_unreadable": (
        "无法读取照片压缩包：{detail}",
        "重新压缩为 ZIP 格式（不要用 RAR/7z，不要加密码）",
        "The photo ZIP cannot be read: {detail}",
        "Compress the photos again as a ZIP (not RAR/7z, no password)",
    ),
    "zip_unsafe_path": (
        "压缩包中的路径不安全：{photo}（绝对路径或含 ..）",
        "直接压缩照片所在的文件夹后重新上传",
        "Unsafe path in the ZIP: {photo} (absolute or containing ..)",
        "Compress the photo folder directly and upload again",
    ),
    "zip_too_big": (
        "照片压缩包解压后太大或文件太多（{detail}）",
        "只放报名照片，或分批导入",
        "The photo ZIP is too large when unpacked or has too many files ({detail})",
        "Put only the enrolment photos in it, or import in batches",
    ),
    "face_error": (
        "{detail}",
        "换一张正面、清晰的本人照片",
        "{detail}",
        "Use a clear, frontal photo of the candidate",
    ),
    "unreadable": (
        "{detail}",
        "检查照片文件后重新上传",
        "{detail}",
        "Check the photo file and upload again",
    ),
    **PHOTO_PROBLEMS,
}
WARNINGS = frozenset({"unused_photo"})


@dataclass(frozen=True)
class RosterProblem:
    code: str
    row: int | None  # as the spreadsheet shows it (the header is row 1 in a template)
    column: str | None  # one of COLUMNS, or ZIP_COLUMN
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def warning(self) -> bool:
        return self.code in WARNINGS

    def _texts(self) -> tuple[str, str, str, str]:
        zh, zh_fix, en, en_fix = MESSAGES[self.code]
        column = self.params.get("column", self.column or "")
        values = {**self.params, "column": column, "column_en": COLUMN_EN.get(column, column)}
        return (
            zh.format(**values),
            zh_fix.format(**values),
            en.format(**values),
            en_fix.format(**values),
        )

    def as_dict(self) -> dict[str, Any]:
        zh, zh_fix, en, en_fix = self._texts()
        return {
            "code": self.code,
            "row": self.row,
            "column": self.column,
            "column_en": COLUMN_EN.get(self.column or "", self.column),
            "warning": self.warning,
            "message": zh,
            "fix": zh_fix,
            "message_en": en,
            "fix_en": en_fix,
        }

    def __str__(self) -> str:
        zh, zh_fix, _, _ = self._texts()
        where = f"第 {self.row} 行" if self.row else "名单"
        if self.column:
            where += f"「{self.column}」"
        kind = "提示" if self.warning else "问题"
        return f"{where}{kind}：{zh}。如何修改：{zh_fix}"


class RosterError(Exception):
    """Every problem (errors; warnings ride along) of a roster and its photos."""

    def __init__(self, problems: list[RosterProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class RosterRow:
    row: int
    ticket: str
    name: str
    room: str
    photo: str


# --- reading the roster -------------------------------------------------------------------


def _header_key(value: Any) -> str:
    text = "" if value is None else str(value)
    return "".join(text.replace("\ufeff", "").split()).replace("_", "").lower()


_HEADER_INDEX = {_header_key(a): col for col, aliases in _ALIASES.items() for a in aliases}


def _cell(value: Any) -> str:
    """A cell as text: Excel stores a ticket typed as a number as 2026120101 or 2026120101.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _xlsx_rows(data: bytes) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        out: list[tuple[int, list[Any]]] = []
        for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
            out.append((number, list(values)))
            if len(out) > MAX_ROWS + 1:
                break
        return out
    finally:
        book.close()


def decode_csv(data: bytes) -> str:
    """UTF-8 with or without BOM, else GB18030 (a superset of the GBK that Excel in China
    writes); a file that is neither raises UnicodeDecodeError."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _csv_rows(data: bytes) -> list[tuple[int, list[Any]]]:
    text = decode_csv(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    out: list[tuple[int, list[Any]]] = []
    for number, values in enumerate(csv.reader(io.StringIO(text), dialect), 1):
        out.append((number, list(values)))
        if len(out) > MAX_ROWS + 1:
            break
    return out


def is_xlsx(filename: str, data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm"))


def read_roster(filename: str, data: bytes) -> tuple[list[RosterRow], list[RosterProblem]]:
    """The roster's rows and the problems of its shape (not yet of the rows' content)."""
    try:
        raw = _xlsx_rows(data) if is_xlsx(filename, data) else _csv_rows(data)
    except UnicodeDecodeError:
        detail = "文字编码无法识别（应为 UTF-8 或 GBK）"
        return [], [RosterProblem("roster_unreadable", None, None, {"detail": detail})]
    except Exception as exc:  # openpyxl raises a variety on a damaged or foreign file
        detail = f"不是有效的 XLSX 或 CSV 文件（{type(exc).__name__}）"
        return [], [RosterProblem("roster_unreadable", None, None, {"detail": detail})]
    filled = [(n, values) for n, values in raw if any(_cell(v) for v in values)]
    if not filled:
        return [], [RosterProblem("roster_empty", None, None)]
    header_row, header = filled[0]
    where: dict[str, int] = {}
    problems: list[RosterProblem] = []
    for index, value in enumerate(header):
        column = _HEADER_INDEX.get(_header_key(value))
        if column is None:
            continue  # other columns (e.g. 身份证号, 备注) are the admin's own
        if column in where:
            problems.append(RosterProblem("duplicate_column", header_row, column))
        where[column] = index
    for column in REQUIRED:
        if column not in where:
            problems.append(RosterProblem("missing_column", header_row, column))
    body = filled[1:]
    if len(body) > MAX_ROWS:
        problems.append(RosterProblem("too_many_rows", None, None, {"max": MAX_ROWS}))
        body = body[:MAX_ROWS]
    if problems:
        return [], problems
    if not body:
        return [], [RosterProblem("roster_empty", None, None)]

    def get(values: list[Any], column: str) -> str:
        index = where.get(column)
        return _cell(values[index]) if index is not None and index < len(values) else ""

    rows = [
        RosterRow(n, get(v, TICKET), get(v, NAME), get(v, ROOM), get(v, PHOTO)) for n, v in body
    ]
    return rows, []


# --- reading the photos -----------------------------------------------------------------


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its maker meant it: ZIPs made on Chinese Windows store GBK bytes
    without the UTF-8 flag, which zipfile then decodes as CP437."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            return name
        for encoding in ("utf-8", "gb18030"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
    return name


def _normal(path: str) -> str:
    return path.replace("\\", "/").strip().strip("/").lower()


def _unsafe(name: str) -> bool:
    path = name.replace("\\", "/")
    parts = path.split("/")
    return path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in parts


@dataclass
class PhotoArchive:
    """The photo ZIP's entries by name; bytes are read only for the entries a row names."""

    zf: zipfile.ZipFile
    entries: dict[str, tuple[str, zipfile.ZipInfo]]  # normalized path -> (shown name, info)
    by_base: dict[str, list[str]]  # normalized base name -> normalized paths

    def find(self, wanted: str) -> tuple[str | None, list[str]]:
        """The entry a cell names (case-insensitive, with or without folders, with or without
        an extension), or None with the candidates when it is ambiguous."""
        key = _normal(wanted)
        tries = [key] if posixpath.splitext(key)[1] else [key + e for e in PHOTO_EXTENSIONS]
        for k in tries:
            if k in self.entries:
                return k, []
        for k in tries:
            found = self.by_base.get(posixpath.basename(k), [])
            if "/" in key:
                # the cell names folders the ZIP does not have at that depth: match the tail
                found = [p for p in found if p.endswith("/" + k) or p == k]
            if len(found) == 1:
                return found[0], []
            if len(found) > 1:
                return None, sorted(self.entries[p][0] for p in found)
        return None, []

    def read(self, key: str) -> bytes:
        """At most PHOTO_MAX_BYTES + 1 bytes: a header that lies about the size still cannot
        make the server inflate more."""
        with self.zf.open(self.entries[key][1]) as f:
            return f.read(PHOTO_MAX_BYTES + 1)


def read_photos(data: bytes) -> tuple[PhotoArchive | None, list[RosterProblem]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        problem = RosterProblem("zip_unreadable", None, ZIP_COLUMN, {"detail": str(exc)})
        return None, [problem]
    problems: list[RosterProblem] = []
    if len(infos) > MAX_ZIP_ENTRIES:
        detail = f"{len(infos)} 个文件，最多 {MAX_ZIP_ENTRIES}"
        return None, [RosterProblem("zip_too_big", None, ZIP_COLUMN, {"detail": detail})]
    total = sum(i.file_size for i in infos)
    if total > MAX_ZIP_TOTAL:
        detail = f"解压后 {total >> 20} MB，最多 {MAX_ZIP_TOTAL >> 20} MB"
        return None, [RosterProblem("zip_too_big", None, ZIP_COLUMN, {"detail": detail})]
    entries: dict[str, tuple[str, zipfile.ZipInfo]] = {}
    by_base: dict[str, list[str]] = {}
    for info in infos:
        name = _entry_name(info)
        if info.is_dir():
            continue
        key = _normal(name)
        base = posixpath.basename(key)
        if key.startswith(_JUNK) or base in _JUNK or base.startswith("._"):
            continue
        if _unsafe(name):
            problems.append(RosterProblem("zip_unsafe_path", None, ZIP_COLUMN, {"photo": name}))
            continue
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > 1024 * 1024 and ratio > MAX_RATIO:
            detail = f"{name} 压缩比 {ratio:.0f}:1"
            problems.append(RosterProblem("zip_too_big", None, ZIP_COLUMN, {"detail": detail}))
            continue
        entries[key] = (name, info)
        by_base.setdefault(base, []).append(key)
    return PhotoArchive(zf, entries, by_base), problems


# --- checking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Existing:
    """A candidate the exam already has, as the difference needs it."""

    name: str
    room: str  # room code
    photo_sha256: str | None


@dataclass
class CheckedCandidate:
    row: int
    ticket: str
    name: str
    room: str  # room code
    photo: str | None  # the ZIP entry (normalized path); None: keep the current photo or none
    photo_sha256: str | None
    embedding: bytes | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "ticket": self.ticket,
            "name": self.name,
            "room": self.room,
            "photo": self.photo,
            "photo_sha256": self.photo_sha256,
            "embedding": base64.b64encode(self.embedding).decode() if self.embedding else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckedCandidate:
        emb = d.get("embedding")
        return cls(
            d["row"],
            d["ticket"],
            d["name"],
            d["room"],
            d.get("photo"),
            d.get("photo_sha256"),
            base64.b64decode(emb) if emb else None,
        )


@dataclass
class RosterCheck:
    candidates: list[CheckedCandidate]
    problems: list[RosterProblem]  # errors and warnings, in row order
    diff: dict[str, Any]

    @property
    def errors(self) -> list[RosterProblem]:
        return [p for p in self.problems if not p.warning]

    @property
    def ok(self) -> bool:
        return not self.errors


def _room_lookup(rooms: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What a 考场 cell may say (id, name, id in any case) -> the room's id."""
    lookup: dict[str, str] = {}
    for code, name in rooms:
        lookup.setdefault(name.strip(), code)
        lookup.setdefault(code.lower(), code)
    for code, _ in rooms:
        lookup[code] = code
    return lookup


def _order(p: RosterProblem) -> tuple[int, int, str]:
    column = COLUMNS.index(p.column) if p.column in COLUMNS else len(COLUMNS)
    return (p.row if p.row is not None else 0, column, p.code)


def check_roster(
    filename: str,
    roster: bytes,
    photos: bytes | None,
    rooms: Sequence[tuple[str, str]],
    *,
    existing: dict[str, Existing] | None = None,
    practice: bool = False,
    progress: Progress | None = None,
    spawn: bool = False,
    workers: int | None = None,
) -> RosterCheck:
    """Check a roster and its photos against the exam's rooms; every problem in one run.

    ``existing``: the exam's current candidates by ticket: a row without a new photo keeps the
    candidate's current one, and the result carries the difference (added, changed, removed).
    """
    existing = existing or {}
    rows, problems = read_roster(filename, roster)
    archive: PhotoArchive | None = None
    if photos is not None:
        archive, zip_problems = read_photos(photos)
        problems += zip_problems
    lookup = _room_lookup(rooms)
    known = "、".join(code if code == name else f"{code} {name}" for code, name in rooms) or "无"
    seen: dict[str, int] = {}
    used: set[str] = set()
    pending: list[tuple[CheckedCandidate, bytes]] = []  # photos to check
    candidates: list[CheckedCandidate] = []
    for r in rows:
        before = len(problems)
        for column, value in ((TICKET, r.ticket), (NAME, r.name), (ROOM, r.room)):
            if not value:
                problems.append(RosterProblem("empty_cell", r.row, column))
        for column, value, most in ((TICKET, r.ticket, MAX_TICKET), (NAME, r.name, MAX_NAME)):
            if len(value) > most:
                params: dict[str, Any] = {"length": len(value), "max": most}
                problems.append(RosterProblem("too_long", r.row, column, params))
        if r.ticket in seen:
            params = {"ticket": r.ticket, "first": seen[r.ticket], "row": r.row}
            problems.append(RosterProblem("duplicate_ticket", r.row, TICKET, params))
        elif r.ticket:
            seen[r.ticket] = r.row
        room = lookup.get(r.room.strip()) or lookup.get(r.room.strip().lower())
        if r.room and room is None:
            params = {"room": r.room, "known": known}
            problems.append(RosterProblem("unknown_room", r.row, ROOM, params))
        cand = CheckedCandidate(r.row, r.ticket, r.name, room or "", None, None, None)
        current = existing.get(r.ticket)
        entry: str | None = None
        if archive is not None:
            entry, several = archive.find(r.photo or r.ticket)
            if several:
                params = {"photo": r.photo or r.ticket, "paths": "、".join(several)}
                problems.append(RosterProblem("ambiguous_photo", r.row, PHOTO, params))
            elif entry is None and r.photo:
                problems.append(RosterProblem("photo_not_in_zip", r.row, PHOTO, {"photo": r.photo}))
            if entry is not None:
                used.add(entry)
        keeps = current is not None and current.photo_sha256 is not None
        if entry is None and not keeps and not practice and not _told_photo(problems[before:]):
            if archive is None and r.photo:
                problems.append(RosterProblem("no_zip", r.row, PHOTO, {"photo": r.photo}))
            elif not r.photo:
                problems.append(RosterProblem("missing_photo", r.row, PHOTO, {"ticket": r.ticket}))
        if entry is not None and archive is not None:
            data = archive.read(entry)
            cand.photo = entry
            cand.photo_sha256 = hashlib.sha256(data).hexdigest()
            if current is not None and current.photo_sha256 == cand.photo_sha256:
                cand.photo, cand.photo_sha256 = None, current.photo_sha256  # the same photo
            elif len(problems) == before:
                pending.append((cand, data))  # only rows without other problems: slow check
        elif keeps and current is not None:
            cand.photo_sha256 = current.photo_sha256
        candidates.append(cand)
    if archive is not None:
        for key, (shown, _) in sorted(archive.entries.items()):
            if key not in used and key.endswith(PHOTO_EXTENSIONS):
                problems.append(RosterProblem("unused_photo", None, ZIP_COLUMN, {"photo": shown}))

    results: list[PhotoCheck] = []
    if pending:
        results = enrol_photos(
            [data for _, data in pending], progress, workers=workers, spawn=spawn
        )
    for (cand, _), checked in zip(pending, results, strict=True):
        if checked.embedding is None:
            code = checked.code or "bad_image"
            problems.append(RosterProblem(code, cand.row, PHOTO, dict(checked.params)))
        cand.embedding = checked.embedding
    problems.sort(key=_order)
    return RosterCheck(candidates, problems, difference(candidates, existing))


def _told_photo(problems: list[RosterProblem]) -> bool:
    return any(p.column == PHOTO for p in problems)


def difference(candidates: list[CheckedCandidate], existing: dict[str, Existing]) -> dict[str, Any]:
    """What applying the roster does to the exam's candidates."""
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    unchanged = 0
    listed = set()
    for c in candidates:
        listed.add(c.ticket)
        now = existing.get(c.ticket)
        if now is None:
            added.append({"ticket": c.ticket, "name": c.name, "room": c.room, "row": c.row})
            continue
        changes: dict[str, Any] = {}
        if now.name != c.name:
            changes["name"] = [now.name, c.name]
        if now.room != c.room:
            changes["room"] = [now.room, c.room]
        if c.photo is not None and now.photo_sha256 != c.photo_sha256:
            changes["photo"] = True
        if changes:
            changed.append({"ticket": c.ticket, "name": c.name, "row": c.row, "changes": changes})
        else:
            unchanged += 1
    removed = [
        {"ticket": t, "name": e.name, "room": e.room}
        for t, e in sorted(existing.items())
        if t not in listed
    ]
    return {"added": added, "changed": changed, "removed": removed, "unchanged": unchanged}


# --- the template ------------------------------------------------------------------------

EXAMPLE = ("2026120101", "张三", "R01", "2026120101.jpg")


def template_xlsx() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "考生名单"
    sheet.append(list(COLUMNS))
    sheet.append(list(EXAMPLE))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    # Tickets as text: Excel would drop leading zeros and turn long numbers into 2.03E+09.
    sheet.column_dimensions["A"].number_format = "@"
    sheet["A2"].number_format = "@"
    for letter, width in zip("ABCD", (16, 12, 10, 22), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv() -> bytes:
    """UTF-8 with a BOM: Excel opens it without garbling the Chinese header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(EXAMPLE)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


__all__ = [
    "COLUMNS",
    "CheckedCandidate",
    "Existing",
    "RosterCheck",
    "RosterError",
    "RosterProblem",
    "check_roster",
    "read_photos",
    "read_roster",
    "template_csv",
    "template_xlsx",
]
