"""The commands a newcomer runs: `invigil demo`, `invigil serve`, `invigil worker`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import face

INVIGIL = [sys.executable, "-m", "invigil"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVIGIL_")}
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


def test_demo_prints_urls_and_logins_and_serves(
    tmp_path: Path, database_url: str, stop: list[subprocess.Popen[str]]
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*INVIGIL, "demo", "--port", str(port), "--starts-in", "5m"],
        env=_env(tmp_path, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop.append(proc)
    base = f"http://127.0.0.1:{port}"
    out = ""
    assert proc.stdout is not None
    while "admin /" not in out:
        line = proc.stdout.readline()
        assert line, f"demo ended early:\n{out}"
        out += line
    _wait_healthy(base, proc)
    exam_id = re.search(r"/desk/\?exam=([0-9a-f]{32})", out)
    assert exam_id, out
    for path in ("/proctor/", "/review/", "/admin/", "/m/"):
        assert f"{base}{path}" in out
    assert "proctor1 / demo-proctor" in out and "2026000001" in out

    # A practice candidate logs in at once with any face: it becomes the reference.
    r = httpx.post(
        f"{base}/api/v1/candidate/login",
        data={"exam_id": exam_id.group(1), "ticket": "2026000001"},
        files={"face": ("f.jpg", face("obama.jpg"), "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    state = httpx.get(
        f"{base}/api/v1/candidate/state", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert state["exam"]["practice"] is True
    # The demo lets you enter at once and starts in five minutes.
    when = {k: datetime.fromisoformat(v) for k, v in state["schedule"].items()}
    now = datetime.fromisoformat(state["now"])
    assert when["entry_opens_at"] < now < when["lot_closes_at"] < when["starts_at"]
    assert timedelta(minutes=4) < when["starts_at"] - now <= timedelta(minutes=5)
    r = httpx.post(
        f"{base}/api/v1/staff/login", json={"username": "proctor1", "password": "demo-proctor"}
    )
    assert r.status_code == 200


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
    proc = subprocess.Popen(
        [*INVIGIL, "serve", "--port", str(port)],
        env=_env(tmp_path, database_url, INVIGIL_SECRET_KEY="a-long-enough-secret-key-for-tests"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    stop.append(proc)
    _wait_healthy(f"http://127.0.0.1:{port}", proc)
    now = httpx.get(f"http://127.0.0.1:{port}/api/v1/time").json()["now"]
    assert now.endswith("Z")
