"""The ``invigil`` command: serve, demo, worker, exam import, evidence, verify, retention,
storage sweep."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from invigil.core.clock import SystemClock
from invigil.core.config import Settings
from invigil.core.db import Database, transaction
from invigil.core.jobs import JobContext, run_one
from invigil.core.migrate import upgrade
from invigil.core.storage import blob_store
from invigil.exams.durations import parse_duration
from invigil.exams.examfile import ExamFileError
from invigil.rehearsal.cli import app as rehearse_app

app = typer.Typer(help="invigil: remote structured interviews with two-camera invigilation.")
exam_app = typer.Typer(help="Exams: import exam files.")
app.add_typer(exam_app, name="exam")
evidence_app = typer.Typer(help="Evidence packages: export, the signing public key.")
app.add_typer(evidence_app, name="evidence")
retention_app = typer.Typer(help="Retention: purge recordings and face data after the period.")
app.add_typer(retention_app, name="retention")
storage_app = typer.Typer(help="Blob storage: clean up after crashes.")
app.add_typer(storage_app, name="storage")
app.add_typer(rehearse_app, name="rehearse")


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    settings = Settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _serve(
    settings: Settings, sock: socket.socket | None = None, ssl: tuple[str, str] | None = None
) -> None:
    import uvicorn

    from invigil.app import create_app
    from invigil.core import serving

    # Bounded request heads and an access log with credentials redacted (core/serving.py).
    config = serving.server_config(
        create_app(settings),
        settings.host,
        settings.port,
        log_level="info",
        # Request lines only; bodies (answers, questions, photos) are never logged.
        access_log=True,
        ssl_certfile=ssl[0] if ssl else None,
        ssl_keyfile=ssl[1] if ssl else None,
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again: by default that
    # ended the process at once, skipping the interpreter's exit (the analysis child's pool was
    # never closed, and multiprocessing warned of leaked semaphores). Now a normal exit with
    # status 0, as `--workers N` ends on SIGTERM: a stop asked for is a success for systemd.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    server.run(sockets=[sock] if sock else None)


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[
        int, typer.Option(help="Server processes on one port (above 1: PostgreSQL and Redis)")
    ] = 1,
) -> None:
    """Serve the API and the pages (no demo data)."""
    from invigil.core import serving

    settings = _settings(host, port)
    settings.check_production_secret()
    refusal = serving.multiprocess_refusal(settings, workers)
    if refusal:
        _fail(refusal)
    blob_store(settings)  # a misconfigured or unreachable S3 store stops here, saying why
    _check_keyword_model(settings.kws_model_dir, "INVIGIL_KWS_MODEL_DIR")
    upgrade(settings.sqlalchemy_url)
    if workers == 1:
        _serve(settings)
        return
    try:
        sock = serving.listen(settings.host, settings.port)
    except OSError as exc:
        _fail(f"无法监听 / cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
    # Request lines only, as with one process (bodies are never logged).
    serving.run_workers(settings, workers, sock, log_level="info", access_log=True)


@app.command()
def worker() -> None:
    """Run background jobs in this process (when scaled out beyond the embedded worker)."""
    settings = _settings()
    blob_store(settings)  # a misconfigured or unreachable S3 store stops here, saying why
    _check_keyword_model(settings.kws_model_dir, "INVIGIL_KWS_MODEL_DIR")
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
    replace: Annotated[
        str | None,
        typer.Option(help="Replace this exam (same title and start, nobody logged in yet)"),
    ] = None,
    as_new: Annotated[
        bool, typer.Option("--as-new", help="Create another exam beside one with the same title")
    ] = False,
    roster: Annotated[
        Path | None,
        typer.Option(help="The candidates from a roster (XLSX/CSV) instead of the exam file"),
    ] = None,
    photos: Annotated[
        Path | None, typer.Option(help="With --roster: the enrolment photos as a ZIP")
    ] = None,
) -> None:
    """Validate an exam file, enrol its photos and create the exam. Prints {"exam_id": ...}."""
    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    if photos is not None and roster is None:
        _fail("--photos 须与 --roster 一起使用。 --photos needs --roster.")
    exam_id = import_exam_file(
        settings, file, replace=replace, as_new=as_new, roster=roster, photos=photos
    )
    typer.echo(json.dumps({"exam_id": exam_id}))


class _PhotoProgress:
    """The enrolment bar, shown only once there are photos to enrol (never a ``0/?`` bar)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=_stderr_console(),
            )
            self.bar.start()
            self.task = self.bar.add_task("人脸建档 enrolling photos", total=total)
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def import_exam_file(
    settings: Settings,
    file: Path,
    *,
    replace: str | None = None,
    as_new: bool = False,
    roster: Path | None = None,
    photos: Path | None = None,
) -> str:
    from invigil.exams.durations import format_local
    from invigil.exams.importer import create_exam, load_exam_file
    from invigil.exams.removal import remove_exam, twins, used

    if replace and as_new:
        _fail("--replace 与 --as-new 只能选一个。 Choose either --replace or --as-new.")
    clock = SystemClock()
    progress = _PhotoProgress()
    try:
        spec, embeddings = load_exam_file(file, clock.now(), progress, roster=roster is not None)
    except ExamFileError as exc:
        progress.close()
        typer.echo(f"考试文件有 {len(exc.problems)} 处问题，未导入任何内容：", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1) from None
    progress.close()
    if roster is not None:
        embeddings = _roster_candidates(spec, roster, photos)
    starts = format_local(spec.starts_at, spec.utc_offset_minutes)
    db = Database(settings.sqlalchemy_url)
    try:
        with transaction(db) as session:
            same = twins(session, spec.title, spec.starts_at)
            if replace:
                if replace not in {e.id for e in same}:
                    _fail(
                        f"--replace {replace}：没有标题为「{spec.title}」、开考时间为 {starts} "
                        "的这场考试，未导入。 No exam with this id, title and start."
                    )
                if n := used(session, replace):
                    _fail(
                        f"考试 {replace} 已有 {n} 名考生登录或留下记录，不能替换（其记录是证据）；"
                        "如需另建，请用 --as-new。 Candidates have used that exam: it cannot "
                        "be replaced."
                    )
                remove_exam(session, blob_store(settings), replace, clock.now())
            elif same and not as_new:
                ids = "、".join(e.id for e in same)
                _fail(
                    f"已有同名同时间的考试「{spec.title}」（{starts}）：{ids}。未导入。\n"
                    f"  替换它：invigil exam import {file} --replace {same[-1].id}\n"
                    f"  另建一场：invigil exam import {file} --as-new\n"
                    "An exam with this title and start exists: choose --replace EXAM_ID or "
                    "--as-new."
                )
            exam = create_exam(session, blob_store(settings), spec, embeddings, clock.now())
            exam_id = exam.id
    finally:
        db.dispose()
    verb = f"已替换 {replace}" if replace else "已导入"
    typer.echo(
        f"{verb}：{spec.title}，开考 {starts}，{len(spec.rooms)} 个考场，"
        f"{len(spec.candidates)} 名考生（{len(embeddings)} 张报名照片），"
        f"{len(spec.staff)} 名工作人员。",
        err=True,
    )
    return exam_id


def _roster_candidates(spec: Any, roster: Path, photos: Path | None) -> dict[int, bytes]:
    """Fill the spec's candidates from a roster and its photo ZIP, through the same checks
    and messages as the web's 考生导入; every problem listed, nothing imported on one."""
    from invigil.exams import roster as rosters
    from invigil.exams.examfile import CandidateSpec

    try:
        roster_bytes = roster.read_bytes()
        zip_bytes = photos.read_bytes() if photos is not None else None
    except OSError as exc:
        _fail(f"无法读取文件：{exc}")
    progress = _PhotoProgress()
    checked = rosters.check_roster(
        roster.name, roster_bytes, zip_bytes, spec.rooms, practice=spec.practice, progress=progress
    )
    progress.close()
    warnings = [p for p in checked.problems if p.warning]
    if not checked.ok:
        errors = checked.errors
        typer.echo(f"考生名单有 {len(errors)} 处问题，未导入任何内容：", err=True)
        for problem in checked.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1)
    for problem in warnings:
        typer.echo(f"  - {problem}", err=True)
    archive = rosters.read_photos(zip_bytes)[0] if zip_bytes is not None else None
    embeddings: dict[int, bytes] = {}
    spec.candidates = []
    for i, c in enumerate(checked.candidates):
        data = archive.read(c.photo) if archive is not None and c.photo else None
        where = f"{roster.name} 第 {c.row} 行"
        spec.candidates.append(CandidateSpec(c.ticket, c.name, c.room, None, where, c.row, data))
        if c.embedding is not None:
            embeddings[i] = c.embedding
    return embeddings


def _check_keyword_model(model_dir: Path | None, named_by: str) -> None:
    """Stop at the start when the answer-marker model that was asked for cannot be loaded."""
    from invigil.analysis.audio import model_problem

    problem = model_problem(model_dir)
    if problem:
        _fail(
            f"关键词模型无法使用（{named_by}）：{problem}。请检查该目录（需要 tokens.txt 和 "
            f"encoder、decoder、joiner 的 .onnx 文件），或不指定它（答题按停顿分段）。"
            f" The keyword model ({named_by}) cannot be used: {problem}."
        )


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _stderr_console() -> Console:
    return Console(stderr=True)


@app.command()
def demo(
    starts_in: Annotated[str, typer.Option(help="Time until the demo exams start, e.g. 5m")] = "5m",
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="The demo's own folder (default ./invigil-demo); never INVIGIL_DATA_DIR"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="A database for the demo (default: SQLite in its folder)"),
    ] = None,
    lan: Annotated[
        bool, typer.Option("--lan", help="Serve HTTPS on this machine's LAN address (phones)")
    ] = False,
    lan_ip: Annotated[
        str | None, typer.Option(help="With --lan: the address to use instead of the detected one")
    ] = None,
    kws_model_dir: Annotated[
        Path | None,
        typer.Option(
            help="The keyword model that hears 「该题回答完毕」 (README); without it answers are "
            "split at pauses"
        ),
    ] = None,
) -> None:
    """Create practice exams starting soon in the demo's own folder, print every URL and
    login, and serve. Never uses an installation's INVIGIL_* settings."""
    from invigil.demo import DEFAULT_DIR, DemoRefused, create_demo_exams, demo_settings

    try:
        lead = parse_duration(starts_in)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    folder = data_dir or DEFAULT_DIR
    kws_model_dir = kws_model_dir.resolve() if kws_model_dir else None
    _check_keyword_model(kws_model_dir, "--kws-model-dir")
    cert = None
    scheme = "http"
    if lan:
        from invigil.demo_lan import certificate, lan_address

        try:
            host = lan_ip or lan_address()
        except OSError as exc:
            _fail(str(exc))
        cert = certificate(folder.resolve() / "tls", host)
        scheme = "https"
    # The port first: a second demo while the first still runs must change nothing.
    sock = _listen(host, port)
    settings = demo_settings(
        folder,
        database_url,
        host,
        port,
        public_url=f"{scheme}://{host}:{port}",
        kws_model_dir=kws_model_dir,
    )
    upgrade(settings.sqlalchemy_url)
    try:
        info = create_demo_exams(settings, timedelta(seconds=lead))
    except DemoRefused as exc:
        sock.close()
        _fail(str(exc))
    if cert is not None:
        from invigil.demo_lan import instructions

        info.notes += instructions(settings.base_url, cert)
    typer.echo(info.describe(settings.base_url))
    sys.stdout.flush()
    _serve(
        settings,
        sock=sock,
        ssl=(str(cert.cert_file), str(cert.key_file)) if cert else None,
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind the port now and hand the socket to the server later, so nothing else can take it
    between the check and the start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        _fail(
            f"端口 {host}:{port} 已被占用（可能另一个 invigil demo 正在运行）：未创建任何考试。"
            f"请先停止它，或用 --port 换一个端口。\n"
            f"Port {host}:{port} is busy ({exc.strerror}; another demo running?): nothing "
            "was created. Stop it or choose another --port."
        )
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
    """Remove chunk, snapshot, media and scratch files that a crash left without a database row
    (on the configured blob store: local disk or S3)."""
    from invigil.recordings import orphans

    settings = _settings()
    upgrade(settings.sqlalchemy_url)
    blobs = blob_store(settings)
    with transaction(Database(settings.sqlalchemy_url)) as session:
        found = orphans.find(
            session, blobs, settings.scratch_dir, timedelta(seconds=parse_duration(grace))
        )
    for key in found.keys:
        typer.echo(key)
    for path in found.files:
        typer.echo(path.resolve().relative_to(settings.data_dir.resolve()).as_posix())
    count = len(found.keys) + len(found.files)
    removed = 0 if dry_run else orphans.remove(blobs, found)
    verb = "可删除 would remove" if dry_run else "已删除 removed"
    typer.echo(f"{verb}: {count if dry_run else removed} 个文件, {found.bytes} 字节")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app()
