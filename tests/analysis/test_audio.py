"""Audio of desk recordings, end to end: synthetic Mandarin speech (espeak-ng) encoded as a real
WebM/Opus recording, uploaded through the recording API, finalized, assembled, analysed by the
``recording.audio`` job, read back from the staff event list.

The keyword model is not part of the repository: it comes from ``INVIGIL_KWS_MODEL_DIR`` or from
``shared/models/kws-zh-wenetspeech-3.3M`` in a parent directory of the repository (where CI
keeps it). Without it these tests fail rather than skip: the marker test is the acceptance test.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
import wave
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from conftest import T, bearer, exam_doc, import_exam, staff_token
from fastapi.testclient import TestClient
from recordings.conftest import entered, new_recording, put, sha, split
from sqlalchemy import select

from invigil.analysis import audio_jobs
from invigil.analysis.audio import MARKER as MARKER_WORD
from invigil.analysis.audio import RATE, Hit, dedupe
from invigil.core import jobs
from invigil.core.clock import FrozenClock
from invigil.core.config import Settings
from invigil.core.context import AppContext
from invigil.core.db import transaction
from invigil.core.jobs import Job, run_due_jobs
from invigil.recordings import assembly
from invigil.recordings.assembly import AUDIO_JOB

MODEL_NAME = "kws-zh-wenetspeech-3.3M"
VOICE = "cmn-latn-pinyin"
MARKER = "该题回答完毕"
ANSWER_1 = "我认为这个岗位需要很强的责任心和沟通能力，我会认真做好每一项工作。"
ANSWER_2 = "在以前的工作中，我负责过群众来信的整理，积累了一些经验。"
# Says 回答 but not 回答完毕: must not end an answer.
NEAR_MISS = "下面我来回答这个问题，我的回答分为三点。"
# A voice assistant called at the desk, and what it is asked.
WAKE = "小爱同学"
REQUEST = "明天会下雨吗"
# Recording starts this long after T (questions released at T).
REC_AFTER_T = timedelta(seconds=5)

Audio = npt.NDArray[np.float32]


def model_dir() -> Path:
    configured = os.environ.get("INVIGIL_KWS_MODEL_DIR")
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[2]
    for parent in repo.parents:
        candidate = parent / "shared" / "models" / MODEL_NAME
        if candidate.is_dir():
            return candidate
    pytest.fail(
        f"keyword model {MODEL_NAME} not found: set INVIGIL_KWS_MODEL_DIR or put it at "
        f"../shared/models/{MODEL_NAME} beside the repository"
    )


@pytest.fixture
def kws_dir() -> Path | None:
    return model_dir()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, kws_dir: Path | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        embedded_worker=False,
        kws_model_dir=kws_dir,
    )


# --- synthetic speech -------------------------------------------------------------------------


@cache
def say(text: str, speed: int = 150, voice: str = VOICE) -> Audio:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: apt-get install espeak-ng (.ci/run installs it)")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        raw = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    n = int(len(raw) * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(len(raw)), raw).astype(np.float32)


def pause(seconds: float) -> Audio:
    return np.zeros(int(seconds * RATE), np.float32)


class Script:
    """Speech and pauses laid end to end, remembering where each marker ends."""

    def __init__(self) -> None:
        self.parts: list[Audio] = []
        self.marker_ends: list[float] = []
        self.speech_ends: list[float] = []
        self.wake_ends: list[float] = []

    @property
    def seconds(self) -> float:
        return sum(len(p) for p in self.parts) / RATE

    def speak(self, text: str) -> Script:
        self.parts.append(say(text))
        self.speech_ends.append(self.seconds)
        return self

    def wake(self, word: str = WAKE) -> Script:
        # Said slowly, as one calls an assistant (espeak at its usual pace is heard as 条爱…).
        self.parts.append(say(word, speed=120))
        self.wake_ends.append(self.seconds)
        return self

    def marker(self) -> Script:
        self.speak(MARKER)
        self.marker_ends.append(self.seconds)
        return self

    def pause(self, seconds: float) -> Script:
        self.parts.append(pause(seconds))
        return self

    def audio(self) -> Audio:
        # A quiet noise floor, as a real microphone has: silence is not digital zero.
        noise = np.random.default_rng(7).normal(0, 0.002, int(self.seconds * RATE))
        return (np.concatenate(self.parts) + noise).astype(np.float32)


def webm(audio: Audio | None, seconds: float, video: bool = True) -> bytes:
    """A WebM as Chrome's MediaRecorder writes it (live: no duration, no cues): Opus at 48 kHz
    and, optionally, a tiny VP8 track."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm", options={"live": "1"}) as out:
        # Every stream before the first packet: the header is written then.
        v = out.add_stream("libvpx", rate=5) if video else None
        a = out.add_stream("libopus", rate=48000) if audio is not None else None
        if a is not None:
            a.layout = "mono"
        if v is not None:
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            v.options = {"deadline": "realtime", "cpu-used": "8"}
            for i in range(int(seconds * 5)):
                frame = av.VideoFrame.from_ndarray(
                    np.full((48, 64, 3), (i * 9) % 255, np.uint8), format="rgb24"
                )
                frame.pts = i
                for p in v.encode(frame):
                    out.mux(p)
            for p in v.encode():
                out.mux(p)
        if a is not None and audio is not None:
            n = len(audio) * 3
            pcm = np.interp(np.arange(n) / 3, np.arange(len(audio)), audio).astype(np.float32)
            for t in range(0, n, 960):
                block = pcm[t : t + 960]
                if len(block) < 960:
                    block = np.pad(block, (0, 960 - len(block)))
                af = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
                af.sample_rate, af.pts = 48000, t
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return buf.getvalue()


# --- the path through the API -----------------------------------------------------------------


def record(
    client: TestClient, clock: FrozenClock, token: str, data: bytes, started: datetime
) -> str:
    """A desk recording created at server time ``started``, uploaded in pieces, finalized."""
    clock.set(started)
    rec = new_recording(client, token)
    chunks = split(data, 5, random.Random(len(data)))
    for seq, chunk in enumerate(chunks):
        assert put(client, token, rec, seq, chunk).status_code == 201
    clock.set(started + timedelta(minutes=2))
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": len(chunks), "sha256": sha(data)},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return rec


def upload(
    client: TestClient, clock: FrozenClock, exam_id: str, data: bytes
) -> tuple[str, str, datetime]:
    """Enter, record from T + 5 s; (attempt_id, recording_id, server start time)."""
    token, attempt_id = entered(client, clock, exam_id)
    started = T + REC_AFTER_T
    return attempt_id, record(client, clock, token, data, started), started


def run_jobs(ctx: AppContext) -> None:
    run_due_jobs(ctx.job_context())
    with ctx.db.session() as s:
        mine = select(Job).where(Job.kind.in_(["recording.assemble", AUDIO_JOB]))
        states = {(j.kind, j.state, j.last_error) for j in s.scalars(mine)}
    assert states and all(state == "done" for _, state, _ in states), states


def audio_events(client: TestClient, attempt_id: str) -> list[dict[str, Any]]:
    token = staff_token(client, "p1", "pw-p1")
    r = client.get(f"/api/v1/staff/attempts/{attempt_id}/events", headers=bearer(token))
    assert r.status_code == 200, r.text
    kinds = {"answer_end", "long_silence", "voice_assistant", "audio_summary", "audio_unavailable"}
    return [e for e in r.json()["events"] if e["kind"] in kinds]


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind]


# --- tests ------------------------------------------------------------------------------------


def test_marker_in_a_synthetic_answer_ends_the_answer_at_its_time(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.2).marker().pause(4.0)
    attempt_id, rec, started = upload(client, clock, exam_id, webm(script.audio(), script.seconds))
    with app_ctx.db.session() as s:
        queued = list(s.scalars(select(Job).where(Job.kind == AUDIO_JOB)))
    assert queued == []  # not before assembly: it analyses the assembled file
    run_jobs(app_ctx)
    with app_ctx.db.session() as s:
        queued = list(s.scalars(select(Job).where(Job.kind == AUDIO_JOB)))
    assert [j.payload for j in queued] == [{"recording_id": rec}]

    events = audio_events(client, attempt_id)
    ends = of(events, "answer_end")
    assert len(ends) == 1, events
    expected = started + timedelta(seconds=script.marker_ends[0])
    assert abs((at(ends[0]) - expected).total_seconds()) <= 1.5, (ends[0], expected)
    assert ends[0]["severity"] == "info"
    assert ends[0]["data"]["question"] == 1 and ends[0]["data"]["method"] == "keyword"
    assert ends[0]["data"]["recording_id"] == rec

    [summary] = of(events, "audio_summary")
    data = summary["data"]
    assert data["method"] == "keyword" and data["recording_id"] == rec
    spoken = len(say(ANSWER_1)) / RATE + len(say(MARKER)) / RATE
    assert abs(data["speech_s"] - spoken) < 1.5, data
    assert abs(data["duration_s"] - script.seconds) < 0.5, data
    first = data["questions"][0]
    assert first["question"] == 1 and first["ended_by"] == "keyword"
    assert first["speech_s"] > 0.8 * spoken
    assert of(events, "long_silence") == []
    assert of(events, "voice_assistant") == [] and data["wake_words"] == 0


def test_sentences_without_the_marker_end_no_answer(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(NEAR_MISS).pause(1.0).speak(ANSWER_1).pause(1.0)
    script.speak(ANSWER_2).pause(3.0)
    attempt_id, _, _ = upload(client, clock, exam_id, webm(script.audio(), script.seconds))
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    assert of(events, "answer_end") == [], events
    assert of(events, "voice_assistant") == [], events  # an ordinary answer calls no assistant
    [summary] = of(events, "audio_summary")
    assert summary["data"]["method"] == "keyword"
    [only] = summary["data"]["questions"]
    assert only["question"] == 1 and only["ended_by"] is None and only["speech_s"] > 5


def test_two_answers_give_two_boundaries_in_question_order(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.0).marker().pause(2.0)
    script.speak(ANSWER_2).pause(1.0).marker().pause(3.0)
    attempt_id, _, started = upload(
        client, clock, exam_id, webm(script.audio(), script.seconds, video=False)
    )
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    ends = of(events, "answer_end")
    assert [e["data"]["question"] for e in ends] == [1, 2], events
    for event, marker_end in zip(ends, script.marker_ends, strict=True):
        expected = started + timedelta(seconds=marker_end)
        assert abs((at(event) - expected).total_seconds()) <= 1.5, (event, expected)
    assert of(events, "voice_assistant") == [], events
    questions = of(events, "audio_summary")[0]["data"]["questions"]
    assert [(q["question"], q["ended_by"]) for q in questions] == [(1, "keyword"), (2, "keyword")]
    assert questions[0]["to_s"] == questions[1]["from_s"]


@pytest.mark.parametrize("kws_dir", [None])
def test_without_a_model_pauses_and_question_order_give_the_boundaries(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    assert app_ctx.settings.kws_model_dir is None
    # Two answers with short pauses inside; a 6 s pause after the first, 21 s after the second.
    script = Script().pause(1.0).speak(ANSWER_1).pause(0.8).speak(ANSWER_2).pause(6.0)
    script.speak(ANSWER_2).pause(0.8).speak(ANSWER_1).pause(21.0)
    attempt_id, _, started = upload(client, clock, exam_id, webm(script.audio(), script.seconds))
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    ends = of(events, "answer_end")
    assert [(e["data"]["question"], e["data"]["method"]) for e in ends] == [
        (1, "pause"),
        (2, "pause"),
    ], events
    # Each boundary is where the answer's speech stopped (the 2nd and 4th sentences).
    for event, end in zip(ends, [script.speech_ends[1], script.speech_ends[3]], strict=True):
        expected = started + timedelta(seconds=end)
        assert abs((at(event) - expected).total_seconds()) <= 1.0, (event, expected)
    [silence] = of(events, "long_silence")
    assert 20 <= silence["data"]["seconds"] <= 22.5 and silence["severity"] == "info"
    assert abs((at(silence) - at(ends[1])).total_seconds()) < 0.5
    assert of(events, "audio_summary")[0]["data"]["method"] == "pause"


@pytest.mark.parametrize("kws_dir", [None])
def test_exam_flags_override_the_audio_thresholds(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    doc = exam_doc()
    doc["exam"]["flags"] = {
        "answer_end": {"pause_seconds": 8},  # the 6 s pause no longer ends an answer
        "long_silence": {"seconds": "5s", "severity": "warning"},
    }
    exam = import_exam(app_ctx, tmp_path / "exam", doc)
    script = Script().pause(1.0).speak(ANSWER_1).pause(6.0).speak(ANSWER_2).pause(21.0)
    attempt_id, _, _ = upload(client, clock, exam, webm(script.audio(), script.seconds))
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    ends = of(events, "answer_end")
    assert [e["data"]["question"] for e in ends] == [1], events
    silences = of(events, "long_silence")
    assert [round(e["data"]["seconds"]) for e in silences] in ([6, 21], [6, 22]), silences
    assert {e["severity"] for e in silences} == {"warning"}


def test_a_wake_word_raises_voice_assistant_and_the_marker_still_ends_the_answer(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.5).wake().pause(0.3).speak(REQUEST)
    script.pause(1.5).marker().pause(3.0)
    attempt_id, rec, started = upload(client, clock, exam_id, webm(script.audio(), script.seconds))
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    [wake] = of(events, "voice_assistant")
    assert wake["severity"] == "warning"
    data = wake["data"]
    assert data["word"] == WAKE and data["recording_id"] == rec
    assert data["kws_threshold"] == 0.1 and data["kws_score"] == 3.0
    assert 0.1 <= data["score"] <= 0.9
    expected = started + timedelta(seconds=script.wake_ends[0])
    assert abs((at(wake) - expected).total_seconds()) <= 1.5, (wake, expected)
    assert abs(data["offset_s"] - script.wake_ends[0]) <= 1.5
    # The marker, heard in the same pass, still ends the answer where it was said.
    [end] = of(events, "answer_end")
    expected = started + timedelta(seconds=script.marker_ends[0])
    assert abs((at(end) - expected).total_seconds()) <= 1.5, (end, expected)
    assert of(events, "audio_summary")[0]["data"]["wake_words"] == 1


def test_exam_flags_turn_voice_assistant_off_or_up(
    client: TestClient, clock: FrozenClock, app_ctx: AppContext, tmp_path: Path
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.5).wake().pause(0.3).speak(REQUEST)
    script.pause(1.5).marker().pause(3.0)
    data = webm(script.audio(), script.seconds, video=False)
    exams = {}
    for name, flag in (("off", {"severity": "off"}), ("up", {"severity": "violation"})):
        doc = exam_doc()
        doc["exam"]["flags"] = {"voice_assistant": flag}
        exams[name] = import_exam(app_ctx, tmp_path / name, doc)
    found: dict[str, list[str]] = {}
    for name, exam in exams.items():
        attempt_id, _, _ = upload(client, clock, exam, data)
        run_jobs(app_ctx)
        events = audio_events(client, attempt_id)
        found[name] = [e["severity"] for e in of(events, "voice_assistant")]
        assert len(of(events, "answer_end")) == 1, events  # the marker is heard either way
    assert found == {"off": [], "up": ["violation"]}


def test_a_wake_word_repeated_within_seconds_is_one_call() -> None:
    hits = [
        Hit("小度小度", 10.0),
        Hit("小度小度", 12.5),  # 小度小度… 小度小度: one call
        Hit(MARKER_WORD, 13.0),  # other words are counted apart
        Hit("天猫精灵", 13.2),
        Hit(MARKER_WORD, 14.0),  # the marker's own, shorter gap
        Hit("小度小度", 16.0),  # a new call
        Hit(MARKER_WORD, 16.5),
    ]
    kept = dedupe(list(reversed(hits)))
    assert [(h.word, h.at) for h in kept] == [
        ("小度小度", 10.0),
        (MARKER_WORD, 13.0),
        ("天猫精灵", 13.2),
        ("小度小度", 16.0),
        (MARKER_WORD, 16.5),
    ]


def test_a_recording_without_audio_gives_an_info_event_not_a_failed_job(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    attempt_id, rec, _ = upload(client, clock, exam_id, webm(None, 4.0))
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    assert [e["kind"] for e in events] == ["audio_unavailable"], events
    assert events[0]["data"] == {"recording_id": rec, "reason": "no_audio_track"}
    assert events[0]["severity"] == "info"


def test_a_truncated_recording_is_analysed_up_to_where_it_ends(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.0).marker().pause(2.0)
    script.speak(ANSWER_2).pause(1.0).speak(ANSWER_1).pause(3.0)
    whole = webm(script.audio(), script.seconds)
    cut = whole[: int(len(whole) * 0.6)]  # the browser crashed: the last chunks never came
    attempt_id, _, started = upload(client, clock, exam_id, cut)
    run_jobs(app_ctx)
    events = audio_events(client, attempt_id)
    [summary] = of(events, "audio_summary")
    assert 0.3 * script.seconds < summary["data"]["duration_s"] < 0.8 * script.seconds
    [end] = of(events, "answer_end")  # the marker lies in the part that arrived
    expected = started + timedelta(seconds=script.marker_ends[0])
    assert abs((at(end) - expected).total_seconds()) <= 1.5


def test_garbage_instead_of_media_gives_an_info_event(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    attempt_id, rec, _ = upload(client, clock, exam_id, b"not a recording" * 100)
    # Assembly cannot remux it and retries; the audio job is queued by hand here to show that
    # it copes with the original bytes too.
    with transaction(app_ctx.db) as s:
        jobs.enqueue(s, AUDIO_JOB, {"recording_id": rec}, now=app_ctx.clock.now())
    run_due_jobs(app_ctx.job_context())
    with app_ctx.db.session() as s:
        audio = s.scalars(select(Job).where(Job.kind == AUDIO_JOB)).one()
        assert audio.state == "done", audio.last_error
    [event] = audio_events(client, attempt_id)
    assert event["kind"] == "audio_unavailable" and event["data"]["reason"] == "unreadable"
    assert "/" not in event["data"].get("detail", "")  # no server paths in the event log


def test_rerunning_the_job_adds_no_events(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    script = Script().pause(1.0).speak(ANSWER_1).pause(1.0).marker().pause(25.0)
    attempt_id, rec, _ = upload(
        client, clock, exam_id, webm(script.audio(), script.seconds, video=False)
    )
    run_jobs(app_ctx)
    first = audio_events(client, attempt_id)
    assert sorted(e["kind"] for e in first) == ["answer_end", "audio_summary", "long_silence"]
    # Again, as after an expired lease: a new job for the same recording, and a direct call.
    with transaction(app_ctx.db) as s:
        jobs.enqueue(s, AUDIO_JOB, {"recording_id": rec}, now=app_ctx.clock.now())
    run_jobs(app_ctx)
    with transaction(app_ctx.db) as s:
        audio_jobs.audio_job(s, {"recording_id": rec}, app_ctx.job_context())
    assert audio_events(client, attempt_id) == first


def test_only_desk_recordings_are_analysed(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, _ = entered(client, clock, exam_id)
    clock.set(T + REC_AFTER_T)
    data = webm(Script().speak(ANSWER_1).audio(), 5.0)
    rec = new_recording(client, token, kind="screen")
    assert put(client, token, rec, 0, data).status_code == 201
    r = client.post(
        f"/api/v1/recordings/{rec}/finalize",
        json={"chunks": 1, "sha256": hashlib.sha256(data).hexdigest()},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    run_jobs(app_ctx)
    with app_ctx.db.session() as s:
        assert s.scalars(select(Job).where(Job.kind == AUDIO_JOB)).all() == []


def test_answers_count_on_across_the_recordings_of_a_reconnect(
    client: TestClient, clock: FrozenClock, exam_id: str, app_ctx: AppContext
) -> None:
    token, attempt_id = entered(client, clock, exam_id)
    one = Script().pause(1.0).speak(ANSWER_1).pause(1.0).marker().pause(3.0)
    two = Script().pause(1.0).speak(ANSWER_2).pause(1.0).marker().pause(3.0)
    first = record(client, clock, token, webm(one.audio(), one.seconds, video=False), T)
    second_start = T + timedelta(minutes=3)  # the page reloaded: a new recording
    second = record(client, clock, token, webm(two.audio(), two.seconds, video=False), second_start)
    ctx = app_ctx.job_context()
    for rec in (second, first):  # assembled (as on demand): both audio jobs are queued
        assembly.ensure_media(
            app_ctx.db, app_ctx.blobs, app_ctx.clock, rec, app_ctx.settings.scratch_dir
        )
    # The later recording's analysis comes first: it must wait for the earlier one's.
    with app_ctx.db.session() as s, s.begin():
        for job in s.scalars(select(Job).where(Job.kind == AUDIO_JOB)):
            if job.payload["recording_id"] == first:
                job.run_at = ctx.clock.now() + timedelta(seconds=1)
    run_due_jobs(ctx)
    with app_ctx.db.session() as s:
        waiting = [j.payload for j in s.scalars(select(Job).where(Job.kind == AUDIO_JOB))]
    assert {"recording_id": second, "deferred": 1} in waiting
    assert of(audio_events(client, attempt_id), "answer_end") == []
    clock.set(clock.now() + timedelta(seconds=30))
    run_jobs(app_ctx)
    ends = of(audio_events(client, attempt_id), "answer_end")
    assert [(e["data"]["recording_id"], e["data"]["question"]) for e in ends] == [
        (first, 1),
        (second, 2),
    ], ends
    expected = second_start + timedelta(seconds=two.marker_ends[0])
    assert abs((at(ends[1]) - expected).total_seconds()) <= 1.5
