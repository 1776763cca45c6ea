"""``invigil rehearse prepare | run | cleanup`` (docs/deploy.md, "Rehearse before the day")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from invigil.core.config import Settings

app = typer.Typer(help="Rehearse: simulate N candidates against a deployment before the exam day.")


def _settings() -> Settings:
    from invigil.core.migrate import upgrade

    settings = Settings()
    upgrade(settings.sqlalchemy_url)
    return settings


@app.command()
def prepare(
    candidates: Annotated[int, typer.Option(min=1, max=20000, help="Synthetic candidates")] = 100,
    hours: Annotated[int, typer.Option(min=1, max=24, help="How long the exam stays open")] = 4,
    out: Annotated[
        Path | None, typer.Option(help="Write the plan here (default rehearsal-EXAM_ID.json)")
    ] = None,
) -> None:
    """Create a practice exam with N synthetic candidates and a staff account to watch it (in
    this deployment's database, from the INVIGIL_* settings); prints the plan as JSON."""
    from invigil.rehearsal.prepare import prepare as do_prepare

    settings = _settings()
    made = do_prepare(settings, candidates, hours)
    plan = {**made.as_json(), "tickets": made.tickets}
    path = out or Path(f"rehearsal-{made.exam_id}.json")
    path.write_text(json.dumps(plan, ensure_ascii=False, indent=1), encoding="utf-8")
    typer.echo(
        f"演练计划 plan: {path}（含工作人员密码，用后删除 holds the staff password）", err=True
    )
    typer.echo(json.dumps(made.as_json(), ensure_ascii=False))


@app.command()
def run(
    url: Annotated[str, typer.Option(help="The deployment, e.g. https://exam.example")],
    plan: Annotated[Path, typer.Option(help="The file `rehearse prepare` wrote")],
    face: Annotated[
        Path, typer.Option(help="A JPEG photo of one face (e.g. of whoever runs the rehearsal)")
    ],
    candidates: Annotated[int | None, typer.Option(min=1, help="Use only the first N")] = None,
    minutes: Annotated[float, typer.Option(min=0.05, help="How long to record")] = 5.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Logins at once")] = 8,
    insecure: Annotated[bool, typer.Option(help="Accept a self-signed certificate")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Log the plan's candidates in and record three streams each for MINUTES, then finalize
    and check every recording on the server. Exit 1 when anything was lost or failed."""
    from invigil.rehearsal.run import run as do_run

    doc = json.loads(plan.read_text(encoding="utf-8"))
    tickets = list(doc["tickets"])[: candidates or None]
    report = do_run(
        url,
        doc["exam_id"],
        tickets,
        face,
        minutes=minutes,
        concurrency=concurrency,
        verify_tls=not insecure,
    )
    typer.echo(json.dumps(report.as_json(), ensure_ascii=False) if json_out else report.text())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def cleanup(
    exam: Annotated[str | None, typer.Option(help="The rehearsal exam's id")] = None,
    plan: Annotated[Path | None, typer.Option(help="Or the plan file")] = None,
) -> None:
    """Remove a rehearsal exam with everything it recorded, and its staff account."""
    from invigil.rehearsal.prepare import NotARehearsal
    from invigil.rehearsal.prepare import cleanup as do_cleanup

    if plan is not None:
        exam = json.loads(plan.read_text(encoding="utf-8"))["exam_id"]
    if not exam:
        typer.echo("请给出 --exam 或 --plan。 Give --exam or --plan.", err=True)
        raise typer.Exit(2)
    try:
        title = do_cleanup(_settings(), exam)
    except NotARehearsal as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已删除 removed: {title} ({exam})")
