"""Settings from the environment (``INVIGIL_*``), shared by the server and the CLI."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# A key that ships in docs and demos; a real server must not run with it.
DEMO_SECRET_KEY = "invigil-demo-secret-do-not-use-in-production"

# Analysis flags (invigil.analysis.thresholds): what each flag needs before it raises an event,
# and the event's severity ("violation" alerts the console; "off" disables the flag). The first
# six come from snapshots, the last three from the audio of desk recordings.
# INVIGIL_FLAGS (JSON) overrides single parameters server-wide, an exam file's `exam.flags` per
# exam. Why these values: docs/accuracy.md.
FLAG_DEFAULTS: dict[str, dict[str, Any]] = {
    "no_face": {"seconds": 15, "severity": "violation"},
    # at_once: one frame this sure (flags.frame_confidence) is enough: a second face scoring
    # ≥ 0.86 (badges stay below 0.7); a face that scores ≥ 1.0 and lies ≥ 0.76 from the enrolled
    # one (one person's photos measured ≤ 0.51, different people 0.62–0.98). 1 disables it.
    "multiple_faces": {"of_last": 3, "at_least": 2, "at_once": 0.9, "severity": "violation"},
    # embed_every: the face is embedded at least every this many detected desk frames (and on
    # the first, when the face count changes or the face box jumps): docs/accuracy.md.
    "face_mismatch": {
        "distance": 0.52,
        "of_last": 3,
        "at_least": 2,
        "at_once": 0.9,
        "embed_every": 6,
        "severity": "violation",
    },
    # A face found with its nose and mouth covered (a mask), for this long.
    "face_covered": {"seconds": 10, "severity": "warning"},
    "camera_covered": {"seconds": 10, "brightness": 30, "contrast": 5, "severity": "violation"},
    "candidate_out_of_view": {"seconds": 30, "severity": "violation"},
    "second_person": {"of_last": 3, "at_least": 2, "at_once": 0.9, "severity": "violation"},
    "long_silence": {"seconds": 20, "severity": "info"},  # within the answering window
    # pause_seconds: without the keyword model, a pause after speech this long ends an answer;
    # kws_*: the spotter's settings as measured on the model (docs/accuracy.md).
    "answer_end": {
        "pause_seconds": 4.0,
        "kws_threshold": 0.1,
        "kws_score": 2.0,
        "severity": "info",
    },
    # A voice assistant's wake word (小爱同学, 小度小度, 天猫精灵, 嘿 Siri) in the desk audio,
    # heard in the same pass as the answer marker: a hint to look, not proof (docs/accuracy.md).
    "voice_assistant": {"kws_threshold": 0.1, "kws_score": 3.0, "severity": "warning"},
}


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
    # The embedded worker's snapshot face work in a child process, off the server's GIL
    # (analysis/offload.py); false runs it in the worker thread.
    analysis_process: bool = True
    worker_poll_seconds: float = 1.0
    # Longer than the longest job: the audio of a 20-minute recording takes up to about two
    # minutes on a loaded 2-core machine (docs/accuracy.md); a lease that runs out mid-job makes
    # another worker do it again (harmless, handlers are idempotent, but wasted).
    job_lease_seconds: float = 300.0

    # A session counts as alive while it was seen within this many seconds.
    session_alive_seconds: int = 20
    session_lifetime_hours: int = 12
    # Face-login attempts allowed per ticket within the window.
    login_attempts_per_window: int = 10
    login_window_seconds: int = 300

    # Where blobs live (docs/storage.md): "local" (blob_dir, the embedded default) or "s3", any
    # S3-compatible store (AWS S3, MinIO, Ceph RGW, Aliyun OSS, Tencent COS). Without keys the
    # S3 client takes boto3's usual credential chain (environment, instance role).
    blob_backend: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = None  # None: AWS itself
    s3_region: str = "us-east-1"
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_path_style: bool = False  # http://host/bucket/key (MinIO, Ceph) vs http://bucket.host/key
    # Files at or above the threshold go up as a multipart upload in parts of this size.
    s3_multipart_threshold_mb: int = Field(default=64, ge=5)
    s3_part_size_mb: int = Field(default=16, ge=5)

    max_upload_bytes: int = 16 * 1024 * 1024
    max_photo_bytes: int = 8 * 1024 * 1024
    # Bodies of the admin's exam-office routes (rosters, photo archives); docs/security.md.
    max_import_bytes: int = 256 * 1024 * 1024

    # Per-address limits do not apply to these addresses or networks (comma-separated, e.g.
    # "10.0.0.0/8,192.168.1.20"): rehearsals and load tests run many candidates from one host.
    rate_limit_exempt: str = ""
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or networks).
    # Empty: the socket peer is the client, and the header is ignored.
    trusted_proxies: str = ""
    # Who may read /metrics (comma-separated addresses or networks, seen through
    # trusted_proxies like the rate limits); everyone else gets a 404. Default: this machine.
    metrics_allow: str = "127.0.0.1,::1"

    # Backpressure (core/backpressure.py): past any of these, this process answers snapshots
    # 503 + Retry-After; past twice any of them, heartbeats and client events too. Chunk
    # uploads and finalize are never refused for load.
    backpressure: bool = True
    backpressure_inflight: int = 200  # requests inside the app at once
    backpressure_commit_queue: int = 256  # uploads waiting for the group commit
    # How late the event loop runs a timer. Under the 500 ms acknowledgement budget: at 200 ms,
    # single stalls shed snapshots at 1.3 of 2 cores busy (docs/benchmarks.md, ingest), while a
    # starved loop runs seconds late and still trips this at once.
    backpressure_loop_lag_ms: float = 400.0
    backpressure_retry_after: int = 5  # seconds; each answer adds 0..this much jitter
    backpressure_force: int = 0  # tests and drills: 1 busy, 2 overloaded, whatever the load
    # Chunk PUT and snapshot POST bypass the router (recordings/fastpath.py); off to compare.
    fast_upload_routes: bool = True
    # The access log's line for each upload answered 2xx (chunk PUT, snapshot POST): thousands a
    # second on an exam day, counted by /metrics anyway. Refusals and errors are always logged.
    access_log_uploads: bool = False

    # Audio of desk recordings (analysis/audio.py; its thresholds are flags above). The keyword
    # model is not shipped: without a directory (INVIGIL_KWS_MODEL_DIR) answer boundaries come
    # from pauses and the question order instead of the spoken marker.
    kws_model_dir: Path | None = None
    audio_vad_aggressiveness: int = 2  # webrtcvad 0..3: higher drops more noise as non-speech

    # Overrides of FLAG_DEFAULTS, e.g. INVIGIL_FLAGS='{"no_face": {"seconds": 20}}'.
    flags: dict[str, dict[str, Any]] = {}

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'invigil.sqlite3').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def scratch_dir(self) -> Path:
        """Local working files (uploads streaming in, joins, remuxes) on every blob backend.
        Beside blob_dir, so the local store moves a finished file into place by a rename."""
        return self.data_dir / "tmp"

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
