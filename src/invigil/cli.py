"""The ``invigil`` command: serve, demo, worker, exam import, evidence, verify, retention,
storage sweep."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.jobs import JobContext, run_one
from invigil.core.migrate import upgrade
from invigil.core.storage import LocalBlobStore
from invigil.exams.durations import parse_duration
from invigil.exams.examfile import ExamFileError

app = typer.Typer(help="invigil: remote structured interviews with two-camera invigilation.")
exam_app = typer.Typer(help="Exams: import exam files.")
app.add_typer(exam_app, name="exam")
evidence_app = typer.Typer(help="Evidence packages: export, the signing public key.")
app.add_typer(evidence_app, name="evidence")
retention_app = typer.Typer(help="Retention: purge recordings and face data after the period.")
app.add_typer(retention_app, name="retention")
storage_app = typer.Typer(help="Blob storage: clean up after crashes.")
app.add_typer(storage_app, name="storage")


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    settings = Settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _serve(settings: Settings) -> None:
    from invigil.app import create_app
    from invigil.core import serving

    # Bounded request heads and an access log with credentials redacted (core/serving.py).
    serving.run(
        create_app(settings),
        settings.host,
        settings.port,
        log_level="info",
        # Request lines only; bodies (answers, questions, photos) are never logged.
        access_log=True,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
) -> None:
    """Serve the API and the pages (no demo data)."""
    settings = _settings(host, port)
    settings.check_production_secret()
    upgrade(settings.sqlalchemy_url)
    _serve(settings)


@app.command()
def worker() -> None:
    """Run background jobs in this process (when scaled out beyond the embedded worker)."""
    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    from invigil.app import make_bus  # also registers every job handler

    db = Database(settings.sqlalchemy_url, bus=make_bus(settings))
    ctx = JobContext(db=db, clock=SystemClock(), settings=settings)
    lease = timedelta(seconds=settings.job_lease_seconds)
    typer.echo("invigil worker: waiting for jobs (Ctrl+C to stop)", err=True)
    while True:
        if not run_one(ctx, lease):
            time.sleep(settings.worker_poll_seconds)


@exam_app.command("import")
def exam_import(
    file: Annotated[Path, typer.Argument(help="The exam file (YAML)")],
) -> None:
    """Validate an exam file, enrol its photos and create the exam. Prints {"exam_id": ...}."""
    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    exam_id = import_exam_file(settings, file)
    typer.echo(json.dumps({"exam_id": exam_id}))


def import_exam_file(settings: Settings, file: Path) -> str:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from invigil.exams.importer import create_exam, load_exam_file

    clock = SystemClock()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
        console=_stderr_console(),
    ) as bar:
        task = bar.add_task("人脸建档 enrolling photos", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            spec, embeddings = load_exam_file(file, clock.now(), progress)
        except ExamFileError as exc:
            bar.stop()
            typer.echo(f"考试文件有 {len(exc.problems)} 处问题，未导入任何内容：", err=True)
            for problem in exc.problems:
                typer.echo(f"  - {problem}", err=True)
            raise typer.Exit(1) from None
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            exam = create_exam(
                session, LocalBlobStore(settings.blob_dir), spec, embeddings, clock.now()
            )
            exam_id = exam.id
    finally:
        db.dispose()
    typer.echo(
        f"已导入：{spec.title}，{len(spec.rooms)} 个考场，{len(spec.candidates)} 名考生，"
        f"{len(spec.staff)} 名工作人员。",
        err=True,
    )
    return exam_id


def _stderr_console() -> Console:
    return Console(stderr=True)


@app.command()
def demo(
    starts_in: Annotated[str, typer.Option(help="Time until the demo exam starts, e.g. 5m")] = "5m",
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
) -> None:
    """Create a practice exam starting soon, print every URL and login, and serve."""
    from invigil.demo import create_demo_exam

    settings = _settings(host, port)
    try:
        lead = parse_duration(starts_in)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    upgrade(settings.sqlalchemy_url)
    info = create_demo_exam(settings, timedelta(seconds=lead))
    typer.echo(info.describe(settings.base_url))
    sys.stdout.flush()
    _serve(settings)


@evidence_app.command("export")
def evidence_export(
    attempt: Annotated[str, typer.Option(help="attempt_id, or EXAMID:TICKET")],
    out: Annotated[Path, typer.Option(help="The package to write (.zip)")],
) -> None:
    """Write one candidate's signed evidence package (admin-side, on the server)."""
    from invigil.evidence.cli import export_command

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    raise typer.Exit(export_command(settings, attempt, out))


@evidence_app.command("public-key")
def evidence_public_key() -> None:
    """Print the public key this server signs evidence packages with (pin it for verify)."""
    from invigil.evidence.cli import public_key_command

    typer.echo(public_key_command(_settings()))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The evidence package (.zip)")],
    public_key: Annotated[
        str | None, typer.Option(help="Require this signing key (from evidence public-key)")
    ] = None,
) -> None:
    """Check an evidence package offline; exit 0 when intact, 1 naming what was changed."""
    from invigil.evidence.cli import verify_command

    raise typer.Exit(verify_command(file, public_key))


@retention_app.command("run")
def retention_run(
    exam: Annotated[str | None, typer.Option(help="Only this exam")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only show what would be purged")] = False,
    force: Annotated[bool, typer.Option(help="Purge --exam before its period ends")] = False,
) -> None:
    """Purge the recordings, snapshots and face data of exams whose retention period ended."""
    from invigil.evidence.cli import retention_command

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    raise typer.Exit(retention_command(settings, exam, dry_run=dry_run, force=force))


@storage_app.command("sweep")
def storage_sweep(
    dry_run: Annotated[bool, typer.Option(help="Only list what would be removed")] = False,
    grace: Annotated[str, typer.Option(help="Only files older than this, e.g. 1h")] = "1h",
) -> None:
    """Remove chunk, snapshot and temp files that a crash left without a database row."""
    from invigil.recordings import orphans

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    with transaction(Database(settings.sqlalchemy_url)) as session:
        found = orphans.find(
            session, LocalBlobStore(settings.blob_dir), timedelta(seconds=parse_duration(grace))
        )
    for path in found.files:
        typer.echo(path.relative_to(settings.blob_dir.resolve()).as_posix())
    removed = 0 if dry_run else orphans.remove(found)
    verb = "可删除 would remove" if dry_run else "已删除 removed"
    typer.echo(f"{verb}: {len(found.files) if dry_run else removed} 个文件, {found.bytes} 字节")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app()
