"""What the ``invigil evidence``, ``invigil verify`` and ``invigil retention`` commands do
(``invigil.cli`` only declares them). Each returns the process exit code."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import select

from invigil.core.clock import SystemClock, iso
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.storage import blob_store
from invigil.evidence import signing


def export_command(settings: Settings, attempt: str, out: Path) -> int:
    from invigil.evidence.package import EvidenceError, export_package

    db = Database(settings.sqlalchemy_url)
    try:
        result = export_package(
            db, blob_store(settings), settings, attempt, out, SystemClock().now()
        )
    except EvidenceError as exc:
        typer.echo(str(exc), err=True)
        return 1
    finally:
        db.dispose()
    typer.echo(
        f"已导出证据包 written: {result.path}\n"
        f"  作答 attempt: {result.attempt_id}  文件 files: {result.files}  "
        f"大小 bytes: {result.size}\n"
        f"  SHA-256: {result.sha256}\n"
        f"  签名公钥 signing key: {result.public_key} ({signing.fingerprint(result.public_key)})"
    )
    return 0


def public_key_command(settings: Settings) -> str:
    key = signing.signing_key(settings.effective_secret())
    return signing.public_key_text(key.public_key())


def verify_command(file: Path, public_key: str | None) -> int:
    from invigil.evidence.verify import summary, verify_package

    if public_key is not None and Path(public_key).is_file():
        public_key = Path(public_key).read_text().strip()
    report = verify_package(file, public_key)
    if report.ok:
        typer.echo(summary(report))
        if public_key is None:
            typer.echo(
                "  注意：未指定 --public-key，只证明包自签名后未被改动，未核对签名者。\n"
                "  note: without --public-key only integrity is proven, not who signed it."
            )
        return 0
    typer.echo(f"证据包已被改动或损坏 NOT intact: {file} ({len(report.problems)} 处问题 problems)")
    for problem in report.problems:
        typer.echo(f"  - {problem}")
    return 1


def retention_command(
    settings: Settings, exam_id: str | None, *, dry_run: bool, force: bool
) -> int:
    from invigil.evidence.retention import purge_at, purge_exam
    from invigil.exams.models import Exam

    if force and exam_id is None:
        typer.echo("--force 只能与 --exam 一起使用 (--force needs --exam)", err=True)
        return 2
    now = SystemClock().now()
    db = Database(settings.sqlalchemy_url)
    blobs = blob_store(settings)
    try:
        with transaction(db) as session:
            query = select(Exam).order_by(Exam.starts_at)
            if exam_id is not None:
                query = query.where(Exam.id == exam_id)
            exams = list(session.scalars(query))
            if exam_id is not None and not exams:
                typer.echo(f"找不到考试 unknown exam: {exam_id}", err=True)
                return 1
            for exam in exams:
                due = purge_at(session, exam)
                if now < due and not force:
                    typer.echo(f"{exam.id} {exam.title}: 未到期 not due until {iso(due)}")
                    continue
                report = purge_exam(
                    session,
                    blobs,
                    exam.id,
                    now,
                    actor="admin:cli-force" if force else "admin:cli",
                    dry_run=dry_run,
                )
                verb = "将清除 would purge" if dry_run else "已清除 purged"
                typer.echo(
                    f"{exam.id} {exam.title}: {verb} {report.files} files, {report.bytes} bytes"
                )
                for a in report.attempts:
                    if not a.empty:
                        parts = ", ".join(
                            f"{k} {t.files} ({t.bytes} B)" for k, t in sorted(a.what.items())
                        )
                        typer.echo(f"  {a.ticket} {a.attempt_id}: {parts}")
    finally:
        db.dispose()
    return 0
