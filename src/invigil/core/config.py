"""Settings from the environment (``INVIGIL_*``), shared by the server and the CLI."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# A key that ships in docs and demos; a real server must not run with it.
DEMO_SECRET_KEY = "invigil-demo-secret-do-not-use-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVIGIL_", extra="ignore")

    data_dir: Path = Path("invigil-data")
    database_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # The address candidates' browsers and phones use to reach the server (QR codes, printed URLs).
    public_url: str | None = None
    redis_url: str | None = None

    # Run the job worker inside the server process (the embedded default).
    embedded_worker: bool = True
    worker_poll_seconds: float = 1.0
    job_lease_seconds: float = 120.0

    # A session counts as alive while it was seen within this many seconds.
    session_alive_seconds: int = 20
    session_lifetime_hours: int = 12
    # Face-login attempts allowed per ticket within the window.
    login_attempts_per_window: int = 10
    login_window_seconds: int = 300

    max_upload_bytes: int = 16 * 1024 * 1024
    max_photo_bytes: int = 8 * 1024 * 1024

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'invigil.sqlite3').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def effective_secret(self) -> str:
        return self.secret_key or DEMO_SECRET_KEY

    def check_production_secret(self) -> None:
        """Refuse to serve real exams with a missing or publicly known key."""
        if not self.secret_key or self.secret_key == DEMO_SECRET_KEY or len(self.secret_key) < 16:
            raise SystemExit(
                "INVIGIL_SECRET_KEY 未设置或不安全：请设置至少 16 个字符的随机密钥。\n"
                "INVIGIL_SECRET_KEY is missing or insecure: set a random key of 16+ characters "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))").'
            )
