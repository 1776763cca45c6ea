"""The commands a newcomer runs: `invigil demo`, `invigil serve`, `invigil worker`."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from analysis.test_audio import model_dir
from argon2 import extract_parameters
from conftest import bearer, exam_doc, face, write_exam
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import create_engine, delete, func, select
from typer.testing import CliRunner

from invigil.analysis.audio import Params
from invigil.analysis.thresholds import resolve
from invigil.cli import app
from invigil.core import security
from invigil.demo import demo_settings
from invigil.demo_lan import certificate
from invigil.exams.models import Candidate, Exam
from invigil.recordings.models import RecordingAccess
from invigil.review.models import AuditEntry
from invigil.staff.models import StaffUser

INVIGIL = [sys.executable, "-m", "invigil"]
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVIGIL_")}
    # The demo runs in other working directories: a relative PYTHONPATH would lose the sources.
    if env.get("PYTHONPATH"):
        paths = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in paths if p)
    env.update(INVIGIL_DATA_DIR=str(tmp_path / "data"), INVIGIL_DATABASE_URL=database_url, **extra)
    return env


def _wait_healthy(base: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _start_demo(
    cwd: Path, port: int, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start `invigil demo` and read its output up to the last staff login."""
    proc = subprocess.Popen(
        [*INVIGIL, "demo", "--port", str(port), *args],
        cwd=cwd,
        env=env or _env(cwd, "sqlite://"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = ""
    assert proc.stdout is not None
    while "admin /" not in out:
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            raise AssertionError(f"demo ended early:\n{out}")
        out += line
    return proc, out


def _passwords(out: str) -> dict[str, str]:
    return dict(re.findall(r"^ {4}(\w+) / (\S+)  \(", out, flags=re.M))


def _exam_ids(out: str) -> list[str]:
    return re.findall(r"/desk/\?exam=([0-9a-f]{32})", out)


def _db_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            m.__tablename__: conn.scalar(select(func.count()).select_from(m)) or 0
            for m in (Exam, Candidate, StaffUser)
        }
    engine.dispose()
    return counts


def post_ok(http: httpx.Client, url: str, **kw: Any) -> Any:
    r = http.post(url, **kw)
    assert r.status_code in (200, 201), f"{url}: {r.status_code} {r.text}"
    return r.json()


def _log_rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {
            m.__tablename__: conn.scalar(select(func.count()).select_from(m)) or 0
            for m in (AuditEntry, RecordingAccess)
        }
    engine.dispose()
    return rows


def test_demo_prints_urls_and_logins_and_serves(
    tmp_path: Path, database_url: str, stop: list[subprocess.Popen[str]]
) -> None:
    """The default demo: its own folder under the working directory, whatever INVIGIL_DATA_DIR
    and INVIGIL_DATABASE_URL say; two practice exams, the second with the phone step."""
    port = _free_port()
    before = _db_counts(database_url)
    proc, out = _start_demo(tmp_path, port, "--starts-in", "5m", env=_env(tmp_path, database_url))
    stop.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(base, proc)
    desk_exam, phone_exam = _exam_ids(out)
    for path in ("/proctor/", "/review/", "/admin/", "/m/"):
        assert f"{base}{path}" in out
    for exam in (desk_exam, phone_exam):  # each exam's own score lookup
        assert f"{base}/results/?exam={exam}" in out
    assert "仅电脑 desk only" in out and "电脑 + 手机佐证摄像头" in out
    assert "2026000001" in out and "2026000005" in out
    # No keyword model asked for (INVIGIL_KWS_MODEL_DIR is not the demo's): answers by pauses.
    assert "答题分段 answers: 按停顿分段；加 --kws-model-dir" in out
    # The installation's database and data folder were not touched; the demo's folder was.
    assert _db_counts(database_url) == before
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "invigil-demo" / "invigil.sqlite3").is_file()
    assert str((tmp_path / "invigil-demo").resolve()) in out
    passwords = _passwords(out)
    assert set(passwords) == {
        "proctor1",
        "tech1",
        "reviewer1",
        "reviewer2",
        "examiner1",
        "examiner2",
        "admin",
    }
    assert len(set(passwords.values())) == 7  # random, none published
    assert all(len(p) >= 12 and not p.startswith("demo-") for p in passwords.values())
    # A server process hashes at the production cost (this test process hashes cheaply).
    demo_db = create_engine(f"sqlite:///{tmp_path / 'invigil-demo' / 'invigil.sqlite3'}")
    with demo_db.connect() as conn:
        stored = conn.scalars(select(StaffUser.password_hash)).all()
    demo_db.dispose()
    production = security.PASSWORD_PARAMETERS
    assert len(stored) == 7 and all(extract_parameters(h) == production for h in stored), stored

    with httpx.Client(base_url=base, timeout=30) as http:
        # A practice candidate logs in at once with any face: it becomes the reference.
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": desk_exam, "ticket": "2026000001"},
            files={"face": ("f.jpg", face("obama.jpg"), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        state = http.get("/api/v1/candidate/state", headers=bearer(r.json()["token"])).json()
        assert state["exam"]["practice"] is True
        assert state["exam"]["evidence_camera"] == "off"
        # The demo lets you enter at once and starts in five minutes.
        when = {k: datetime.fromisoformat(v) for k, v in state["schedule"].items()}
        now = datetime.fromisoformat(state["now"])
        assert when["entry_opens_at"] < now < when["lot_closes_at"] < when["starts_at"]
        assert timedelta(minutes=4) < when["starts_at"] - now <= timedelta(minutes=5)

        # The second exam has the phone step: its binding offer binds a phone.
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": phone_exam, "ticket": "2026000005"},
            files={"face": ("f.jpg", face("biden.jpg"), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        desk = bearer(r.json()["token"])
        assert (
            http.get("/api/v1/candidate/state", headers=desk).json()["exam"]["evidence_camera"]
            == "required"
        )
        offer = http.post("/api/v1/candidate/binding", headers=desk).json()
        assert offer["url"].startswith(f"{base}/m/#bind=")
        assert http.post("/api/v1/phone/bind", json={"code": offer["code"]}).status_code == 200

        r = http.post(
            "/api/v1/staff/login", json={"username": "proctor1", "password": passwords["proctor1"]}
        )
        assert r.status_code == 200
        r = http.post(
            "/api/v1/staff/login", json={"username": "proctor1", "password": "demo-proctor"}
        )
        assert r.status_code in (401, 403)


def test_a_second_demo_on_a_busy_port_changes_nothing_and_a_restart_replaces_the_first(
    tmp_path: Path, stop: list[subprocess.Popen[str]]
) -> None:
    port = _free_port()
    first, out = _start_demo(tmp_path, port)
    stop.append(first)
    _wait_healthy(f"http://127.0.0.1:{port}", first)
    db = f"sqlite:///{tmp_path / 'invigil-demo' / 'invigil.sqlite3'}"
    ids = _exam_ids(out)
    counts = _db_counts(db)
    assert counts["exams"] == 2

    busy = subprocess.run(
        [*INVIGIL, "demo", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path, "sqlite://"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert busy.returncode != 0
    assert "已被占用" in busy.stderr and "busy" in busy.stderr
    assert "/desk/" not in busy.stdout and "admin /" not in busy.stdout
    assert _db_counts(db) == counts
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
    old = _passwords(out)
    # Someone tried the first demo: its exams have a logged-in candidate and a stored photo.
    r = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/candidate/login",
        data={"exam_id": ids[0], "ticket": "2026000001"},
        files={"face": ("f.jpg", face("obama.jpg"), "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    desk = bearer(r.json()["token"])
    # ... entered and recorded, and a reviewer looked and watched: rows in the logs that the
    # database keeps append-only (it refuses to delete them, and so the exam's recordings).
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        post_ok(http, "/api/v1/candidate/lot", headers=desk)
        state = http.get("/api/v1/candidate/state", headers=desk).json()
        for a in state["attachments"]:
            post_ok(http, f"/api/v1/candidate/attachments/{a['id']}/read", headers=desk)
        post_ok(http, "/api/v1/candidate/enter", headers=desk)
        rec = post_ok(
            http, "/api/v1/recordings", json={"kind": "webcam", "mime": "video/webm"}, headers=desk
        )
        chunk = b"\x1a\x45\xdf\xa3 a webm chunk"
        sha = hashlib.sha256(chunk).hexdigest()
        r = http.put(
            f"/api/v1/recordings/{rec['recording_id']}/chunks/0",
            content=chunk,
            headers={**desk, "X-Chunk-SHA256": sha},
        )
        assert r.status_code == 201, r.text
        done = {"chunks": 1, "sha256": sha}
        post_ok(http, f"/api/v1/recordings/{rec['recording_id']}/finalize", json=done, headers=desk)
        login = {"username": "reviewer1", "password": old["reviewer1"]}
        staff = bearer(http.post("/api/v1/staff/login", json=login).json()["token"])
        r = http.get(f"/api/v1/review/attempts/{state['attempt_id']}", headers=staff)
        assert r.status_code == 200, r.text
        r = http.get(
            f"/api/v1/recordings/{rec['recording_id']}/media?original=1",
            headers={**staff, "Range": "bytes=0-3"},
        )
        assert r.content == chunk[:4], r.text
    assert _log_rows(db) == {"review_audit_log": 1, "recording_access_log": 1}

    first.send_signal(signal.SIGINT)
    first.wait(20)
    again, out2 = _start_demo(tmp_path, port)
    stop.append(again)
    _wait_healthy(f"http://127.0.0.1:{port}", again)
    assert "已替换上次演示的 2 场考试" in out2
    new_ids = _exam_ids(out2)
    assert len(new_ids) == 2 and not set(new_ids) & set(ids)
    assert _db_counts(db) == counts  # replaced, not piled up
    assert _log_rows(db) == {"review_audit_log": 0, "recording_access_log": 0}
    blobs = tmp_path / "invigil-demo" / "blobs" / "exams"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(new_ids)
    new = _passwords(out2)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for user, password, expected in (
            ("admin", new["admin"], 200),
            ("admin", old["admin"], 401),
        ):
            r = http.post("/api/v1/staff/login", json={"username": user, "password": password})
            assert r.status_code == expected, (user, r.text)


def test_demo_refuses_a_database_with_a_real_exam_or_staff(
    tmp_path: Path, database_url: str
) -> None:
    """Pointed (explicitly) at an installation's database, the demo changes nothing."""
    real = write_exam(tmp_path / "real", exam_doc())
    env = {"INVIGIL_DATA_DIR": str(tmp_path / "inst"), "INVIGIL_DATABASE_URL": database_url}
    assert runner.invoke(app, ["exam", "import", str(real)], env=env).exit_code == 0

    def snapshot() -> tuple[dict[str, int], dict[str, str]]:
        engine = create_engine(database_url)
        with engine.connect() as conn:
            hashes = dict(conn.execute(select(StaffUser.username, StaffUser.password_hash)).all())
        engine.dispose()
        return _db_counts(database_url), {str(k): str(v) for k, v in hashes.items()}

    before = snapshot()
    args = ["demo", "--database-url", database_url, "--data-dir", str(tmp_path / "demo")]
    result = runner.invoke(app, [*args, "--port", str(_free_port())])
    assert result.exit_code == 1
    assert "不是演示的考试" in result.stderr and "测试考试" in result.stderr
    assert "admin /" not in result.stdout
    assert snapshot() == before

    # Staff accounts alone (no exam yet) are an installation too: no admin login is added.
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(delete(Exam))
    engine.dispose()
    before = snapshot()
    result = runner.invoke(app, [*args, "--port", str(_free_port())])
    assert result.exit_code == 1 and "工作人员账号" in result.stderr
    assert snapshot() == before
    assert "admin" not in before[1]


def test_the_demo_hears_the_answer_marker_with_the_model_it_is_given(
    tmp_path: Path, stop: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_dir()
    port = _free_port()
    proc, out = _start_demo(tmp_path, port, "--kws-model-dir", str(model))
    stop.append(proc)
    assert f"识别考生所说的「该题回答完毕」（关键词模型 {model.resolve()}）" in out
    # What the demo's server runs the audio job with: that model, and only from the option.
    monkeypatch.setenv("INVIGIL_KWS_MODEL_DIR", str(tmp_path / "installation-model"))
    settings = demo_settings(tmp_path / "d1", kws_model_dir=model)
    assert Params.from_rules(settings, resolve(settings, {})).model_dir == model
    assert demo_settings(tmp_path / "d2").kws_model_dir is None


def test_a_keyword_model_that_cannot_load_stops_serve_worker_and_demo(tmp_path: Path) -> None:
    """A model directory that was asked for but lacks its files: each command stops at its
    start and says which file is missing, instead of every recording's analysis quietly
    falling back to pauses."""
    broken = tmp_path / "kws"
    broken.mkdir()
    (broken / "tokens.txt").write_text("a 1\n", encoding="utf-8")
    env = _env(
        tmp_path,
        f"sqlite:///{tmp_path / 'inst.sqlite3'}",
        INVIGIL_KWS_MODEL_DIR=str(broken),
        INVIGIL_SECRET_KEY="a-key-for-this-test-only-0123456789",
    )
    for command in (["serve", "--port", str(_free_port())], ["worker"]):
        # Were the check missing, serve and worker would run until the timeout.
        r = subprocess.run(
            [*INVIGIL, *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 1, (command, r.stdout, r.stderr)
        assert "关键词模型无法使用（INVIGIL_KWS_MODEL_DIR）" in r.stderr, r.stderr
        assert "encoder*.onnx" in r.stderr
    assert not (tmp_path / "inst.sqlite3").exists()  # stopped before the database was touched
    demo = tmp_path / "demo"
    args = ["demo", "--data-dir", str(demo), "--port", str(_free_port())]
    result = runner.invoke(app, [*args, "--kws-model-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "关键词模型无法使用（--kws-model-dir）" in result.stderr and "does not exist" in (
        result.stderr
    )
    assert not demo.exists()


def test_demo_lan_serves_https_with_a_certificate_for_the_address(
    tmp_path: Path, stop: list[subprocess.Popen[str]]
) -> None:
    port = _free_port()
    proc, out = _start_demo(tmp_path, port, "--lan", "--lan-ip", "127.0.0.1")
    stop.append(proc)
    base = f"https://127.0.0.1:{port}"
    assert f"{base}/m/" in out and f"{base}/desk/?exam=" in out
    printed = re.search(r"SHA-256 指纹 fingerprint: ([0-9A-F:]{95})", out)
    assert printed, out
    assert "继续前往" in out and "Proceed" in out
    deadline = time.monotonic() + 60
    while True:
        try:
            pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.3)
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256())) == printed.group(1)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    kept = tmp_path / "invigil-demo" / "tls" / "demo-cert.pem"
    assert kept.read_text(encoding="ascii").strip() == pem.strip()
    with httpx.Client(base_url=base, verify=False, timeout=30) as http:
        assert http.get("/api/v1/health").json() == {"status": "ok"}
        r = http.post(
            "/api/v1/candidate/login",
            data={"exam_id": _exam_ids(out)[1], "ticket": "2026000006"},
            files={"face": ("f.jpg", face("obama.jpg"), "image/jpeg")},
        )
        offer = http.post("/api/v1/candidate/binding", headers=bearer(r.json()["token"])).json()
        assert offer["url"].startswith(f"{base}/m/#bind=")  # the QR code is HTTPS too


def test_lan_certificate_is_reused_for_its_address_only(tmp_path: Path) -> None:
    first = certificate(tmp_path, "192.168.1.20")
    assert certificate(tmp_path, "192.168.1.20").fingerprint == first.fingerprint
    other = certificate(tmp_path, "10.0.0.7")
    assert other.fingerprint != first.fingerprint
    cert = x509.load_pem_x509_certificate(other.cert_file.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.0.0.7" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert oct(other.key_file.stat().st_mode & 0o777) == "0o600"


def test_serve_refuses_a_missing_or_default_secret(tmp_path: Path, database_url: str) -> None:
    for extra in (
        {},
        {"INVIGIL_SECRET_KEY": "invigil-demo-secret-do-not-use-in-production"},
        {"INVIGIL_SECRET_KEY": "short"},
    ):
        result = subprocess.run(
            [*INVIGIL, "serve", "--port", str(_free_port())],
            env=_env(tmp_path, database_url, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "INVIGIL_SECRET_KEY" in result.stderr


def test_serve_with_a_secret(
    tmp_path: Path, database_url: str, stop: list[subprocess.Popen[str]]
) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*INVIGIL, "serve", "--port", str(port)],
            env=_env(
                tmp_path, database_url, INVIGIL_SECRET_KEY="a-long-enough-secret-key-for-tests"
            ),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    stop.append(proc)
    _wait_healthy(f"http://127.0.0.1:{port}", proc)
    now = httpx.get(f"http://127.0.0.1:{port}/api/v1/time").json()["now"]
    assert now.endswith("Z")
    # SIGTERM (systemd's stop) is a graceful shutdown that ends like any exit: the analysis
    # child's pool is closed, nothing is reported leaked, and the status is 0 (as with
    # --workers N): a stop asked for is not a failure.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    text = log.read_text()
    assert "Application shutdown complete" in text
    assert "leaked" not in text, text[-2000:]
