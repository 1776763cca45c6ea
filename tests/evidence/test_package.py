"""Evidence packages: exported through the function and the CLI, verified offline, and every
kind of change to their bytes (data, headers, central directory, end record, signature,
replaced/removed/added members, truncation) detected and named."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import both_backends
from recordings.conftest import sha
from sqlalchemy import select

from evidence.conftest import INVIGIL, Built, run_cli
from invigil.attempts.events import verify_chain
from invigil.attempts.models import Attempt
from invigil.core.context import AppContext
from invigil.evidence import signing
from invigil.evidence.package import EvidenceError, export_package
from invigil.evidence.verify import Report, verify_package
from invigil.recordings.models import Recording


def export(app_ctx: AppContext, ref: str, out: Path) -> Path:
    result = export_package(
        app_ctx.db, app_ctx.blobs, app_ctx.settings, ref, out, app_ctx.clock.now()
    )
    return result.path


def wheres(report: Report) -> str:
    return "\n".join(str(p) for p in report.problems)


@both_backends
def test_package_holds_the_candidates_evidence_and_verifies(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    path = export(app_ctx, built.attempt_id, tmp_path / "e.zip")
    report = verify_package(path)
    assert report.ok, wheres(report)

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        original = zf.read("recordings/webcam-1.original.webm")
        events = [json.loads(x) for x in zf.read("events.jsonl").decode().splitlines()]
        snaps = sorted(n for n in names if n.startswith("snapshots/webcam/"))
        snap_bytes = {zf.read(n) for n in snaps}
        help_msgs = json.loads(zf.read("help.json"))
        rulings = json.loads(zf.read("rulings.json"))
        blob = b"".join(zf.read(n) for n in names)
    assert {
        "events.jsonl",
        "rulings.json",
        "access_log.json",
        "notes.json",
        "warnings.json",
    } <= names
    assert "recordings/webcam-1.webm" in names  # the remuxed, seekable one too
    assert original == built.source
    with app_ctx.db.session() as s:
        rec = s.get(Recording, built.recording_id)
        attempt = s.get(Attempt, built.attempt_id)
        assert rec is not None and attempt is not None
        assert rec.sha256 == sha(original)
        head = (attempt.last_event_seq, attempt.last_event_hash)
    by_kind = {r["kind"]: r for r in manifest["recordings"]}
    assert sorted(by_kind) == ["screen", "webcam"]
    entry, screen = by_kind["webcam"], by_kind["screen"]
    assert screen["kind"] == "screen" and screen["state"] == "open"
    assert (
        screen["chunks_received"] == [0, 1]
        and screen["partial"] == "recordings/screen-1.partial.webm"
    )
    with zipfile.ZipFile(path) as zf:
        assert zf.read(screen["partial"]) == built.partial
    assert entry["sha256"] == sha(built.source) and entry["chunk_count"] == 5
    assert entry["original"] == "recordings/webcam-1.original.webm"
    assert (
        manifest["candidate"]["ticket"] == "1001" and manifest["attempt"]["id"] == built.attempt_id
    )
    assert manifest["exam"]["id"] == built.exam_id and manifest["purged"] is None
    assert (manifest["event_chain"]["head_seq"], manifest["event_chain"]["head_hash"]) == head
    assert len(events) == head[0] and verify_chain(built.attempt_id, events) == []
    assert {"focus_lost", "help_message", "recording_finalized"} <= {e["kind"] for e in events}
    assert snap_bytes == set(built.snapshots) and len(snaps) == 2
    assert [m["text"] for m in help_msgs] == ["麦克风没有声音"]
    assert [r["reason"] for r in rulings if r["type"] == "ruling"] == ["RULING-REASON 误触"]
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == names - {"manifest.json"}
    assert listed["recordings/webcam-1.original.webm"]["sha256"] == sha(built.source)
    # Nothing of the other candidate in the same room.
    for foreign in (built.other_attempt_id.encode(), built.other_recording_id.encode()):
        assert foreign not in blob and foreign not in path.read_bytes()
    assert built.other_snapshot not in snap_bytes
    assert "fullscreen_exit" not in {e["kind"] for e in events}


def test_unknown_attempt_and_exam_ticket_reference(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    with pytest.raises(EvidenceError):
        export(app_ctx, "0" * 32, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    result = export_package(
        app_ctx.db,
        app_ctx.blobs,
        app_ctx.settings,
        f"{built.exam_id}:1001",
        tmp_path / "t.zip",
        app_ctx.clock.now(),
    )
    path = result.path
    assert result.sha256 == sha(path.read_bytes()) and result.size == path.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".evidence-")] == []
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("manifest.json"))["attempt"]["id"] == built.attempt_id
    assert verify_package(path).ok


@both_backends
def test_cli_exports_and_verifies_with_a_pinned_key(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    settings = app_ctx.settings
    out = tmp_path / "cli.zip"
    r = run_cli(settings, "evidence", "export", "--attempt", built.attempt_id, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file() and built.attempt_id in r.stdout
    key = run_cli(settings, "evidence", "public-key")
    assert key.returncode == 0
    server_key = key.stdout.strip()
    assert server_key == signing.public_key_text(
        signing.signing_key(settings.effective_secret()).public_key()
    )
    # Offline: no settings, no database, another directory; nothing is created there.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = subprocess.run(
        [*INVIGIL, "verify", str(out), "--public-key", server_key],
        env={k: v for k, v in os.environ.items() if not k.startswith("INVIGIL_")},
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert list(elsewhere.iterdir()) == []
    assert "完好 intact" in ok.stdout and "1001" in ok.stdout

    data = bytearray(out.read_bytes())
    # The member's data starts after its local header (30 bytes, the name, the extra field);
    # searching for its first bytes could land in another recording with the same WebM header.
    with zipfile.ZipFile(out) as zf:
        at = zf.getinfo("recordings/webcam-1.original.webm").header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
    start = at + 30 + name_len + extra_len
    assert data[start : start + 64] == built.source[:64]
    data[start + 100] ^= 0x01
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    bad = run_cli(settings, "verify", str(tmp_path / "bad.zip"))
    assert bad.returncode == 1
    assert "recordings/webcam-1.original.webm" in bad.stdout and "signature" in bad.stdout

    missing = run_cli(settings, "evidence", "export", "--attempt", "nope", "--out", str(out))
    assert missing.returncode == 1 and "找不到" in missing.stderr


def _regions(path: Path) -> list[tuple[str, int, int]]:
    """(name, start, end) of every byte class of the file."""
    data = path.read_bytes()
    regions: list[tuple[str, int, int]] = []
    with zipfile.ZipFile(path) as zf:
        start_dir = zf.start_dir  # type: ignore[attr-defined]
        for info in zf.infolist():
            off = info.header_offset
            nlen, xlen = struct.unpack("<HH", data[off + 26 : off + 30])
            body = off + 30 + nlen + xlen
            regions.append((f"header:{info.filename}", off, body))
            regions.append((f"data:{info.filename}", body, body + info.compress_size))
    eocd = len(data) - signing.BLOCK_LEN - 22
    assert data[eocd : eocd + 4] == b"PK\x05\x06"
    regions.append(("central", start_dir, eocd))
    regions.append(("eocd", eocd, eocd + 22))
    regions.append(("comment", eocd + 22, len(data)))
    return regions


def test_changing_any_byte_fails_verify_and_names_the_problem(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    path = export(app_ctx, built.attempt_id, tmp_path / "e.zip")
    original = path.read_bytes()
    regions = _regions(path)
    covered = sum(end - start for _, start, end in regions)
    assert covered == len(original)  # the classes tile the whole file
    rng = random.Random(8)
    positions: list[tuple[str, int]] = []
    for name, start, end in regions:
        size = end - start
        if name in ("eocd",) or size <= 8:
            picks = list(range(start, end))
        else:
            count = 40 if name in ("central", "comment") else 6
            picks = sorted({start, end - 1, *(rng.randrange(start, end) for _ in range(count))})
        positions += [(name, p) for p in picks]
    while len(positions) < 300:
        p = rng.randrange(len(original))
        positions.append((next(n for n, s, e in regions if s <= p < e), p))

    target = tmp_path / "flipped.zip"
    for name, pos in positions:
        data = bytearray(original)
        data[pos] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        report = verify_package(target)
        text = wheres(report)
        assert not report.ok, (name, pos)
        # Every change is caught by the signature (or the end record it hangs on) …
        assert "signature" in text or "end of central directory" in text, (name, pos, text)
        # … and a change to a member's contents names that member.
        if name.startswith("data:"):
            assert name[5:] in text, (name, pos, text)
    assert len(positions) >= 300


def _rewrite(
    source: Path,
    target: Path,
    change: dict[str, bytes | None],
    add: dict[str, bytes] | None = None,
    fix_manifest: bool = False,
    sign_with: str | None = None,
) -> None:
    """Copy a package member by member, replacing (bytes) or dropping (None) some, keeping the
    original comment unless re-signed; optionally recompute the manifest's hashes."""
    with zipfile.ZipFile(source) as zf:
        members = {i.filename: (i, zf.read(i.filename)) for i in zf.infolist()}
        comment = zf.comment
    for name, data in change.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = (members[name][0], data)
    for name, data in (add or {}).items():
        members[name] = (zipfile.ZipInfo(name, date_time=(2030, 6, 1, 1, 0, 0)), data)
    if fix_manifest:
        manifest = json.loads(members["manifest.json"][1])
        manifest["files"] = [
            {"path": n, "size": len(d), "sha256": sha(d)}
            for n, (_, d) in sorted(members.items())
            if n != "manifest.json"
        ]
        info = members["manifest.json"][0]
        members["manifest.json"] = (info, json.dumps(manifest).encode())
    with zipfile.ZipFile(target, "w") as out:
        for _, (info, data) in members.items():
            out.writestr(info, data)
        out.comment = comment if sign_with is None else signing.PLACEHOLDER
    if sign_with is not None:
        from invigil.evidence.package import sign_in_place

        with target.open("r+b") as raw:
            sign_in_place(raw, signing.signing_key(sign_with))


def test_replaced_removed_added_members_and_truncation_are_named(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    path = export(app_ctx, built.attempt_id, tmp_path / "e.zip")
    with zipfile.ZipFile(path) as zf:
        events = zf.read("events.jsonl").decode().splitlines()
        snap = next(n for n in zf.namelist() if n.startswith("snapshots/"))
    forged = [json.loads(x) for x in events]
    forged[-1]["data"] = {"text": "forged"}
    forged_bytes = "".join(json.dumps(e) + "\n" for e in forged).encode()

    replaced = tmp_path / "replaced.zip"
    _rewrite(path, replaced, {"events.jsonl": forged_bytes}, fix_manifest=True)
    text = wheres(r := verify_package(replaced))
    assert not r.ok and "signature" in text and "hash chain" in text

    # Re-signed by someone else's key: only a pinned key tells.
    server_key = signing.public_key_text(
        signing.signing_key(app_ctx.settings.effective_secret()).public_key()
    )
    resigned = tmp_path / "resigned.zip"
    _rewrite(
        path, resigned, {"recordings/webcam-1.webm": b"fake"}, fix_manifest=True, sign_with="x"
    )
    assert verify_package(resigned).ok  # consistent in itself …
    r = verify_package(resigned, public_key=server_key)
    assert not r.ok and "signing key" in wheres(r)  # … but not signed by this server
    assert verify_package(path, public_key=server_key).ok

    removed = tmp_path / "removed.zip"
    _rewrite(path, removed, {snap: None})
    text = wheres(r := verify_package(removed))
    assert not r.ok and "signature" in text and f"{snap}: 清单中列出但包中缺失" in text

    added = tmp_path / "added.zip"
    _rewrite(path, added, {}, add={"recordings/extra.webm": b"not evidence"})
    text = wheres(r := verify_package(added))
    assert not r.ok and "recordings/extra.webm" in text and "not in the manifest" in text

    data = path.read_bytes()
    for cut in (1, signing.BLOCK_LEN, len(data) // 2, len(data) - 1):
        short = tmp_path / "short.zip"
        short.write_bytes(data[: len(data) - cut])
        r = verify_package(short)
        assert not r.ok and r.problems, cut
    for junk in (b"", b"PK\x05\x06" + b"\0" * 18, bytes(range(256)) * 4):
        (tmp_path / "junk.zip").write_bytes(junk)
        assert not verify_package(tmp_path / "junk.zip").ok
    assert "cannot open" in wheres(verify_package(tmp_path / "nonexistent.zip"))
    appended = tmp_path / "appended.zip"
    appended.write_bytes(data + b"\0")
    assert "end of central directory" in wheres(verify_package(appended))


def test_event_chain_of_the_package_matches_the_database(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    path = export(app_ctx, built.attempt_id, tmp_path / "e.zip")
    with zipfile.ZipFile(path) as zf:
        seqs = [json.loads(x)["seq"] for x in zf.read("events.jsonl").decode().splitlines()]
    with app_ctx.db.session() as s:
        from invigil.attempts.models import Event

        db_seqs = list(
            s.scalars(
                select(Event.seq).where(Event.attempt_id == built.attempt_id).order_by(Event.seq)
            )
        )
    assert seqs == db_seqs


def test_a_central_directory_asking_for_an_unknown_zip_version_is_reported(
    built: Built, app_ctx: AppContext, tmp_path: Path
) -> None:
    """Python refuses zip versions above 6.3 with NotImplementedError: a report, not a crash."""
    path = export(app_ctx, built.attempt_id, tmp_path / "e.zip")
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 6] = 84  # "needs version 8.4 to extract"
    path.write_bytes(bytes(data))
    report = verify_package(path)
    assert not report.ok
    assert "zip file version 8.4" in wheres(report)
