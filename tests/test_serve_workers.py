"""`invigil serve --workers N` refuses what cannot work with several processes (the processes
themselves are tested in tests/multiprocess, on PostgreSQL and Redis)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from invigil.cli import app

runner = CliRunner()
SECRET = "serve-workers-secret-0123456789"


def serve(tmp_path: Path, database_url: str, redis_url: str | None, *args: str) -> tuple[int, str]:
    env = {
        "INVIGIL_DATA_DIR": str(tmp_path / "data"),
        "INVIGIL_DATABASE_URL": database_url,
        "INVIGIL_SECRET_KEY": SECRET,
        "INVIGIL_REDIS_URL": redis_url,
        "INVIGIL_PORT": "1",  # never reached: each case is refused before it listens
    }
    result = runner.invoke(app, ["serve", *args], env=env)
    return result.exit_code, result.output + result.stderr


def test_sqlite_is_one_process(tmp_path: Path) -> None:
    code, out = serve(
        tmp_path,
        f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "redis://127.0.0.1:6379/0",
        "--workers",
        "2",
    )
    assert code == 1
    assert "SQLite" in out and "PostgreSQL" in out
    assert not (tmp_path / "x.sqlite3").exists()  # refused before anything was migrated


def test_several_processes_need_a_reachable_redis(tmp_path: Path, database_url: str) -> None:
    code, out = serve(tmp_path, database_url, None, "--workers", "3")
    assert code == 1
    assert ("INVIGIL_REDIS_URL" if database_url.startswith("postgresql") else "SQLite") in out
    if database_url.startswith("postgresql"):
        code, out = serve(tmp_path, database_url, "redis://127.0.0.1:1/0", "--workers", "2")
        assert code == 1
        assert "Redis" in out


def test_workers_must_be_positive(tmp_path: Path, database_url: str) -> None:
    code, out = serve(tmp_path, database_url, None, "--workers", "0")
    assert code == 1
    assert "--workers" in out
