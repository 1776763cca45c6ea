"""Checking an evidence package offline, from the zip file alone (no database, no server).

Checks, each reported by name so a reader learns *what* changed, not only *that* it did:
the signature over every byte before the zip comment (and the signing key against a pinned one
when given), the end record and comment, each member's local header against the central
directory, that members tile the file with no bytes between them, CRCs, each file's size and
SHA-256 against the manifest, files missing from or added to the package, every recording's
original against the SHA-256 its finalize recorded, and the event log's hash chain and head.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from invigil.attempts.events import verify_chain
from invigil.evidence import signing
from invigil.evidence.package import BLOCK, FORMAT, MANIFEST

EOCD_SIG = b"PK\x05\x06"
EOCD_LEN = 22
LOCAL_SIG = b"PK\x03\x04"
LOCAL_LEN = 30


@dataclass(frozen=True)
class Problem:
    where: str
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.where}: {self.zh} / {self.en}"


@dataclass
class Report:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    public_key: str | None = None
    manifest: dict[str, Any] | None = None
    files_checked: int = 0
    events_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, zh: str, en: str) -> None:
        self.problems.append(Problem(where, zh, en))


def _find_end_record(f: BinaryIO, size: int, report: Report) -> int | None:
    """Offset of the end-of-central-directory record whose comment ends exactly at EOF."""
    tail_len = min(size, EOCD_LEN + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(EOCD_SIG)
    while pos >= 0:
        if pos + EOCD_LEN <= len(tail):
            (comment_len,) = struct.unpack("<H", tail[pos + 20 : pos + 22])
            if pos + EOCD_LEN + comment_len == len(tail):
                return size - tail_len + pos
        pos = tail.rfind(EOCD_SIG, 0, pos)
    report.add(
        "zip 结构 (end of central directory)",
        "找不到与文件结尾吻合的目录结束记录：文件被截断、追加了数据或结尾被改动",
        "no end record that ends the file: truncated, appended to, or its end was changed",
    )
    return None


def _check_signature(f: BinaryIO, size: int, eocd: int, pinned: str | None, report: Report) -> None:
    f.seek(eocd + 20)
    (comment_len,) = struct.unpack("<H", f.read(2))
    signed_len = eocd + EOCD_LEN
    f.seek(signed_len)
    comment = f.read(comment_len)
    try:
        block = signing.parse_block(comment)
    except signing.BadBlock:
        report.add(
            "签名 (signature)",
            "zip 注释中的签名块缺失或格式错误",
            "the signature block in the zip comment is missing or malformed",
        )
        return
    report.public_key = block.public_key
    f.seek(0)
    digest = hashlib.sha256()
    left = signed_len
    while left:
        chunk = f.read(min(BLOCK, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    if not signing.check(block, digest.digest()):
        report.add(
            "签名 (signature)",
            "签名验证失败：签名之后文件有字节被改动",
            "signature does not match: bytes of the file were changed after signing",
        )
    if pinned is not None and pinned.strip() != block.public_key:
        report.add(
            "签名密钥 (signing key)",
            f"签名公钥 {signing.fingerprint(block.public_key)} 不是指定的公钥",
            "the package was signed with another key than the pinned one",
        )


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def _check_layout(f: BinaryIO, zf: zipfile.ZipFile, report: Report) -> None:
    """Each local header agrees with its central directory entry, and the members, then the
    central directory, follow each other with no byte unaccounted for."""
    expected = 0
    names: set[str] = set()
    for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
        where = f"本地文件头 (local header) {info.filename}"
        if info.filename in names:
            report.add(info.filename, "文件名重复", "the name occurs twice")
        names.add(info.filename)
        if info.header_offset != expected:
            report.add(where, "成员之间有多余或缺失的字节", "bytes between members were changed")
        f.seek(info.header_offset)
        head = f.read(LOCAL_LEN)
        if len(head) < LOCAL_LEN or head[:4] != LOCAL_SIG:
            report.add(where, "本地文件头损坏", "the local header is damaged")
            return
        _, flags, method, dtime, ddate, crc, csize, usize, nlen, xlen = struct.unpack(
            "<HHHHHIIIHH", head[4:]
        )
        name = f.read(nlen)
        extra = f.read(xlen)
        if name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"):
            report.add(where, "文件名与中央目录不一致", "name differs from the central directory")
        if (flags, method) != (info.flag_bits, info.compress_type):
            report.add(where, "标志或压缩方式与中央目录不一致", "flags or method differ")
        if (dtime, ddate) != _dos(info.date_time):
            report.add(where, "时间戳与中央目录不一致", "timestamp differs")
        if crc != info.CRC:
            report.add(where, "CRC 与中央目录不一致", "CRC differs from the central directory")
        sizes = (csize, usize)
        if sizes == (0xFFFFFFFF, 0xFFFFFFFF):
            sizes = _zip64_sizes(extra)
        if sizes != (info.compress_size, info.file_size):
            report.add(where, "大小与中央目录不一致", "sizes differ from the central directory")
        if info.external_attr != 0o100644 << 16 or info.comment or info.internal_attr:
            report.add(
                f"中央目录 (central directory) {info.filename}",
                "属性或注释被改动",
                "attributes or comment were changed",
            )
        expected = info.header_offset + LOCAL_LEN + nlen + xlen + info.compress_size
    if getattr(zf, "start_dir", expected) != expected:
        report.add(
            "中央目录 (central directory)",
            "最后一个成员与中央目录之间有多余或缺失的字节",
            "bytes between the last member and the central directory were changed",
        )


def _zip64_sizes(extra: bytes) -> tuple[int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[i : i + 4])
        if tag == 1 and length >= 16:
            usize, csize = struct.unpack("<QQ", extra[i + 4 : i + 20])
            return csize, usize
        i += 4 + length
    return (-1, -1)


def _hash_member(zf: zipfile.ZipFile, name: str, report: Report) -> tuple[int, str] | None:
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(name) as src:
            while block := src.read(BLOCK):
                digest.update(block)
                size += len(block)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        report.add(name, f"无法读取（CRC 或数据损坏）：{exc}", f"cannot be read (CRC/data): {exc}")
        return None
    except Exception as exc:  # zlib.error and friends: a damaged deflate stream
        report.add(name, f"数据损坏：{exc}", f"data damaged: {exc}")
        return None
    return size, digest.hexdigest()


def _check_members(zf: zipfile.ZipFile, report: Report) -> None:
    manifest = _read_manifest(zf, report)
    if manifest is None:
        return
    report.manifest = manifest
    if manifest.get("format") != FORMAT:
        report.add(MANIFEST, f"未知的格式 {manifest.get('format')!r}", "unknown format")
    listed = {str(f["path"]): f for f in manifest.get("files", [])}
    present = {i.filename for i in zf.infolist()} - {MANIFEST}
    for name in sorted(set(listed) - present):
        report.add(name, "清单中列出但包中缺失", "listed in the manifest but missing")
    for name in sorted(present - set(listed)):
        report.add(name, "包中多出的文件（清单中没有）", "in the package but not in the manifest")
    hashes: dict[str, str] = {}
    for name in sorted(present & set(listed)):
        got = _hash_member(zf, name, report)
        report.files_checked += 1
        if got is None:
            continue
        size, sha = got
        hashes[name] = sha
        if size != listed[name].get("size") or sha != listed[name].get("sha256"):
            report.add(name, "内容与清单中的 SHA-256 不符", "content differs from its SHA-256")
    for rec in manifest.get("recordings", []):
        original = rec.get("original")
        if original and original in hashes and rec.get("sha256") != hashes[original]:
            report.add(
                original,
                "原始录像与上传完成时记录的 SHA-256 不符",
                "the original differs from the SHA-256 recorded at finalize",
            )
    if "events.jsonl" in present:
        _check_events(zf, manifest, report)


def _read_manifest(zf: zipfile.ZipFile, report: Report) -> dict[str, Any] | None:
    try:
        data = zf.read(MANIFEST)
        manifest = json.loads(data)
    except KeyError:
        report.add(MANIFEST, "清单缺失", "the manifest is missing")
        return None
    except Exception as exc:
        report.add(MANIFEST, f"清单无法读取：{exc}", f"the manifest cannot be read: {exc}")
        return None
    if not isinstance(manifest, dict):
        report.add(MANIFEST, "清单格式错误", "the manifest is not an object")
        return None
    return manifest


def _check_events(zf: zipfile.ZipFile, manifest: dict[str, Any], report: Report) -> None:
    where = "events.jsonl"
    try:
        lines = zf.read(where).decode().splitlines()
        events = [json.loads(line) for line in lines if line.strip()]
        attempt_id = str(manifest["attempt"]["id"])
        chain = manifest["event_chain"]
    except Exception as exc:
        report.add(where, f"事件日志无法读取：{exc}", f"the event log cannot be read: {exc}")
        return
    report.events_checked = len(events)
    try:
        problems = verify_chain(attempt_id, events)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(where, f"事件格式错误：{exc}", f"an event is malformed: {exc}")
        return
    for p in problems:
        report.add(f"{where} #{p.seq}", "事件哈希链断裂", f"hash chain broken: {p.reason}")
    head = events[-1] if events else None
    if len(events) != chain.get("count") or (
        head is not None
        and (head.get("seq") != chain.get("head_seq") or head.get("hash") != chain.get("head_hash"))
    ):
        report.add(
            where,
            "事件数量或链头与清单不符（事件被删除或追加）",
            "event count or chain head differs from the manifest (events removed or added)",
        )


def verify_package(path: Path, public_key: str | None = None) -> Report:
    report = Report(path=path)
    try:
        f = path.open("rb")
    except OSError as exc:
        report.add(str(path), f"无法打开文件：{exc}", f"cannot open: {exc}")
        return report
    with f:
        size = path.stat().st_size
        eocd = _find_end_record(f, size, report)
        if eocd is not None:
            _check_signature(f, size, eocd, public_key, report)
        try:
            f.seek(0)
            zf = zipfile.ZipFile(f)
        # NotImplementedError: a changed central directory can ask for a zip version or a
        # compression method that Python does not read.
        except (zipfile.BadZipFile, OSError, ValueError, struct.error, NotImplementedError) as exc:
            report.add(
                "zip 结构 (zip structure)",
                f"无法作为 zip 读取：{exc}",
                f"cannot be read as a zip: {exc}",
            )
            return report
        with zf:
            try:
                _check_layout(f, zf, report)
            except (OSError, struct.error, ValueError) as exc:
                report.add("zip 结构 (zip structure)", f"结构损坏：{exc}", f"damaged: {exc}")
            try:
                _check_members(zf, report)
            except Exception as exc:
                # A forged manifest can be any JSON; whatever it breaks is reported, not raised.
                report.add(
                    MANIFEST, f"清单内容异常：{exc!r}", f"the manifest is malformed: {exc!r}"
                )
    return report


def summary(report: Report) -> str:
    m = report.manifest or {}
    cand = m.get("candidate", {})
    exam = m.get("exam", {})
    key = signing.fingerprint(report.public_key) if report.public_key else "?"
    purged = m.get("purged")
    lines = [
        f"完好 intact: {report.path.name}",
        f"  考试 exam: {exam.get('title')} ({exam.get('id')})",
        f"  考生 candidate: {cand.get('ticket')} {cand.get('name')}"
        f"  作答 attempt: {m.get('attempt', {}).get('id')}",
        f"  文件 files: {report.files_checked}  事件 events: {report.events_checked}"
        f"  链头 chain head: {m.get('event_chain', {}).get('head_hash')}",
        f"  签名公钥 signing key: {key}",
    ]
    if purged:
        lines.append(f"  录像与人脸数据已于 {purged.get('at')} 按保存期限清除 (media purged)")
    return "\n".join(lines)
