"""The embedded worker's face work in a child process (analysis/offload.py): the same facts as
in the worker thread, and a child that dies fails only the job it was doing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest
from identity import synth

from invigil.analysis import frames, offload
from invigil.identity import faces

ARGS = {
    "taken_at": datetime(2030, 6, 1, tzinfo=UTC),
    "previous": None,
    "embed": True,
    "embed_every": 6,
    "dark_below": 40.0,
    "flat_below": 12.0,
}


@pytest.fixture
def offloaded() -> Iterator[None]:
    offload.enable()
    try:
        yield
    finally:
        offload.disable()


def frame() -> bytes:
    return synth.jpeg(synth.camera_frame(synth.load("obama2.jpg")), 80)


def test_the_child_finds_what_the_thread_finds(offloaded: None) -> None:
    enrolled = faces.embed_single_face((synth.FACES / "obama.jpg").read_bytes())
    image = frame()
    here = frames.analyse_frame(image, enrolled=enrolled, **ARGS)  # type: ignore[arg-type]
    there = offload.analyse(image, enrolled=enrolled, **ARGS)
    pool = offload._pool
    assert pool is not None  # it ran in the child
    children = [p.pid for p in pool._processes.values()]  # type: ignore[union-attr]
    assert children and os.getpid() not in children
    # Named for top and ps, and for the benchmarks' CPU split (bench/cpu.py).
    for pid in children:
        assert Path(f"/proc/{pid}/comm").read_text().strip() == offload.ANALYSIS_PROCESS_NAME
    assert there.method == here.method == "embedded" and there.faces == 1
    assert there.boxes == here.boxes and there.thumb == here.thumb
    assert there.distance == pytest.approx(here.distance, abs=1e-6)


def test_a_dead_child_fails_its_job_and_the_next_job_gets_a_new_one(offloaded: None) -> None:
    image = frame()
    first = offload.analyse(image, enrolled=None, **ARGS)
    pool = offload._pool
    assert pool is not None
    for pid in [p.pid for p in pool._processes.values()]:  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)  # as a native crash on a hostile JPEG would
    with pytest.raises(BrokenProcessPool):
        offload.analyse(image, enrolled=None, **ARGS)
    again = offload.analyse(image, enrolled=None, **ARGS)
    assert offload._pool is not None and offload._pool is not pool
    assert again.faces == first.faces == 1


def test_without_a_server_the_face_work_runs_in_the_caller() -> None:
    # `invigil worker`, and tests that run jobs by hand: no child is used (one started by an
    # earlier server in this process stays idle).
    assert offload._users == 0 and offload._executor() is None
    facts = offload.analyse(frame(), enrolled=None, **ARGS)
    assert facts.faces == 1


def test_the_child_ends_with_a_server_killed_outright(tmp_path: Path) -> None:
    """A server process killed with SIGKILL cannot shut its pool down: its child notices and
    ends by itself instead of staying up with nobody to answer."""
    script = (
        "import time\n"
        "from invigil.analysis import offload\n"
        "offload.enable()\n"
        "offload._pool.submit(int).result(timeout=60)\n"
        "print(*(p.pid for p in offload._pool._processes.values()), flush=True)\n"
        "time.sleep(600)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        (child,) = map(int, server.stdout.readline().split())
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        server.kill()


def _alive(pid: int) -> bool:
    # A child of a dead parent is reaped by init; until then /proc shows it as a zombie.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
