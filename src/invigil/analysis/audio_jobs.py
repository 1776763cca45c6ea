"""The ``recording.audio`` job: analyse a desk recording's audio once it is assembled, and log
what it found on the attempt's event log.

Events (all ``info`` unless the exam's flags say otherwise), at server time = recording start +
offset: ``answer_end`` (one per answer boundary, numbered in question order), ``long_silence``
(a pause of the flag's ``seconds`` or more in the answering window), ``voice_assistant``
(``warning`` by default: a voice assistant's wake word, one per call), ``audio_summary``
(speech seconds per question; written last, it marks the recording as done) or
``audio_unavailable`` (no audio track, nothing decodable) instead of the others.

Answers are numbered on across an attempt's desk recordings (a reload starts a new one), so a
recording's job waits (re-queues itself, a bounded number of times) while an earlier recording
of the same attempt is still being assembled or analysed.

Idempotent: a rerun that finds this recording's summary (or unavailable event) does nothing,
and the check runs under the attempt's row lock with the writes, so two runs cannot both write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from invigil.analysis import thresholds
from invigil.analysis.audio import (
    Analysis,
    AudioUnavailable,
    Params,
    Span,
    analyse,
    decode_pcm,
)
from invigil.attempts import events
from invigil.attempts.locking import locked_attempt
from invigil.attempts.models import Attempt, Event
from invigil.core import jobs
from invigil.core.storage import blob_store, seekable_source
from invigil.recordings.assembly import AUDIO_JOB
from invigil.recordings.models import FINALIZED, Recording

log = logging.getLogger(__name__)

DONE_KINDS = ("audio_summary", "audio_unavailable")
# The recording's timeline and the server's clock differ by the upload latency; a marker said
# just as the candidate pressed 结束考试 still belongs to the answer.
WINDOW_SLACK = timedelta(seconds=5)
DEFER = timedelta(seconds=15)
MAX_DEFERRALS = 40


@dataclass(frozen=True)
class Work:
    recording_id: str
    attempt_id: str
    started_at: datetime  # server time of the recording's creation: its offset 0
    exam_flags: dict[str, Any] | None
    key: str
    window_start: datetime
    window_end: datetime
    questions: int
    first_question: int
    # An earlier desk recording of the attempt is still being assembled or analysed.
    waiting: bool


def progress(webcam_ids: list[str], done: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Where the search for answer markers stands, so that a page without markers says why.
    ``webcam_ids``: the attempt's webcam recordings; ``done``: its (kind, data) events of
    ``DONE_KINDS``. ``state`` is ``none`` (nothing recorded), ``waiting`` (not analysed yet),
    ``unavailable`` (no audio could be analysed; ``reason`` the first one's), ``partial`` (some
    recordings still wait) or ``done``; ``waiting`` counts the recordings not analysed yet."""
    analysed = {(data or {}).get("recording_id") for _, data in done}
    waiting = sum(1 for rid in webcam_ids if rid not in analysed)
    reason = None
    if not webcam_ids:
        state = "none"
    elif any(kind == "audio_summary" for kind, _ in done):
        state = "partial" if waiting else "done"
    elif waiting or not done:
        state = "waiting"
    else:
        state, reason = "unavailable", (done[0][1] or {}).get("reason")
    return {"state": state, "waiting": waiting, "reason": reason}


def _done(session: Session, attempt_id: str, recording_id: str) -> bool:
    rows = session.scalars(
        select(Event.data).where(Event.attempt_id == attempt_id, Event.kind.in_(DONE_KINDS))
    )
    return any(d.get("recording_id") == recording_id for d in rows)


def _prepare(ctx: jobs.JobContext, recording_id: str) -> Work | None:
    with ctx.db.session() as session, session.begin():
        rec = session.get(Recording, recording_id)
        if rec is None or rec.kind != "webcam" or rec.state != FINALIZED:
            return None
        key = rec.media_key or rec.original_key
        if key is None or _done(session, rec.attempt_id, rec.id):
            return None
        attempt = session.get(Attempt, rec.attempt_id)
        assert attempt is not None
        exam = attempt.exam
        end = min(attempt.deadline, attempt.finished_at or attempt.deadline) + WINDOW_SLACK
        # Answers closed in earlier recordings of this attempt (reconnects) come first.
        earlier = session.scalars(
            select(Event.at).where(
                Event.attempt_id == attempt.id,
                Event.kind == "answer_end",
                Event.at < rec.created_at,
            )
        ).all()
        before = session.scalars(
            select(Recording.id).where(
                Recording.attempt_id == attempt.id,
                Recording.kind == "webcam",
                Recording.created_at < rec.created_at,
                Recording.id != rec.id,
            )
        ).all()
        keys = [f"{step}:{rid}" for rid in before for step in ("assemble", "audio")]
        waiting = bool(keys) and (
            session.scalar(
                select(jobs.Job.id)
                .where(
                    jobs.Job.dedupe_key.in_(keys),
                    jobs.Job.state.in_([jobs.PENDING, jobs.RUNNING]),
                )
                .limit(1)
            )
            is not None
        )
        return Work(
            recording_id=rec.id,
            attempt_id=attempt.id,
            started_at=rec.created_at,
            exam_flags=exam.flags,
            key=key,
            window_start=exam.starts_at,
            window_end=end,
            questions=len(exam.questions),
            first_question=len(earlier) + 1,
            waiting=waiting,
        )


def _offset(job: Work, at: datetime) -> float:
    return (at - job.started_at).total_seconds()


def _at(job: Work, offset: float) -> datetime:
    return job.started_at + timedelta(seconds=offset)


def _events(
    job: Work, result: Analysis, rules: thresholds.Thresholds
) -> list[tuple[datetime, str, dict[str, Any], str | None]]:
    out: list[tuple[datetime, str, dict[str, Any], str | None]] = []
    base = {"recording_id": job.recording_id}
    boundary, silence = rules["answer_end"], rules["long_silence"]
    wake = rules["voice_assistant"]
    for i, t in enumerate(result.boundaries if boundary.enabled else []):
        number = job.first_question + i
        data = {
            **base,
            "source": "audio",  # review lists answer boundaries by source
            "offset_s": round(t, 2),
            "question": number,
            "method": result.method,
        }
        if number > job.questions:
            data["extra"] = True  # more markers than questions: the reviewer decides
        out.append((_at(job, t), "answer_end", data, boundary.severity))
    for gap in result.long_silences if silence.enabled else []:
        data = {**base, "offset_s": round(gap.start, 2), "seconds": round(gap.seconds, 1)}
        out.append((_at(job, gap.start), "long_silence", data, silence.severity))
    for hit in result.wake_words if wake.enabled else []:
        data = {
            **base,
            "offset_s": round(hit.offset, 2),
            "word": hit.word,
            "score": hit.score,
            **wake.as_data(),  # the settings it was heard with
        }
        out.append((_at(job, hit.offset), "voice_assistant", data, wake.severity))
    out.sort(key=lambda e: e[0])
    return out


def _summary(job: Work, result: Analysis, error: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "recording_id": job.recording_id,
        "method": result.method,
        "duration_s": round(result.duration_s, 2),
        "speech_s": round(result.speech_s, 2),
        "silence_s": round(result.duration_s - result.speech_s, 2),
        "questions": [
            {
                "question": q.question,
                "from_s": round(q.span.start, 2),
                "to_s": round(q.span.end, 2),
                "speech_s": round(q.speech_s, 2),
                "silence_s": round(q.span.seconds - q.speech_s, 2),
                "ended_by": q.boundary,
            }
            for q in result.questions
        ],
    }
    if error:
        data["decode_error"] = error  # truncated or damaged: analysed up to where it broke
    if result.method == "keyword":
        data["wake_words"] = len(result.wake_words)
    if result.kws_error:
        data["kws_error"] = result.kws_error
    return data


@jobs.handler(AUDIO_JOB)
def audio_job(session: Session, payload: dict[str, Any], ctx: jobs.JobContext) -> None:
    # Decoding and spotting take seconds per minute of audio: they run before the job's own
    # session is touched, so on SQLite the writer lock is not held meanwhile.
    job = _prepare(ctx, str(payload["recording_id"]))
    if job is None:
        return
    deferred = int(payload.get("deferred", 0))
    if job.waiting and deferred < MAX_DEFERRALS:
        # Answers are numbered on from the earlier recordings' boundaries: let those land
        # first. Bounded, so a recording whose assembly keeps failing holds nobody up for long.
        jobs.enqueue(
            session,
            AUDIO_JOB,
            {"recording_id": job.recording_id, "deferred": deferred + 1},
            now=ctx.clock.now(),
            run_at=ctx.clock.now() + DEFER,
        )
        return
    rules = thresholds.resolve(ctx.settings, job.exam_flags)
    params = Params.from_rules(ctx.settings, rules)
    written: list[tuple[datetime, str, dict[str, Any], str | None]]
    try:
        with seekable_source(
            blob_store(ctx.settings), job.key, ctx.settings.scratch_dir, "audio-"
        ) as source:
            decoded = decode_pcm(source)
        window = Span(_offset(job, job.window_start), _offset(job, job.window_end))
        result = analyse(decoded, params, window, job.first_question, job.questions)
        summary_at = _at(job, decoded.start_s + decoded.duration_s)
        written = [
            *_events(job, result, rules),
            (summary_at, "audio_summary", _summary(job, result, decoded.error), None),
        ]
    except AudioUnavailable as exc:
        log.info("recording %s: no audio to analyse (%s)", job.recording_id, exc)
        data = {"recording_id": job.recording_id, "reason": exc.reason}
        if exc.detail:
            data["detail"] = exc.detail[:500]
        written = [(ctx.clock.now(), "audio_unavailable", data, None)]

    session.scalars(locked_attempt(job.attempt_id)).one()
    if _done(session, job.attempt_id, job.recording_id):
        return  # a concurrent run finished first
    for at, kind, data, severity in written:
        events.append(session, job.attempt_id, kind, at=at, data=data, severity=severity)
