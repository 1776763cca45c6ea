"""Where a candidate is in the exam day, derived from what they did and the server clock.

Nothing stores the stage: it follows from the attempt's facts and the time, so a reload, a
crash or a second server always sees the same answer.
"""

from __future__ import annotations

from datetime import datetime

from invigil.attempts.models import Attempt
from invigil.exams.models import Exam

NOT_LOGGED_IN = "not_logged_in"
LOT = "lot"
ATTACHMENTS = "attachments"
ENTER = "enter"
WAITING = "waiting"
ANSWERING = "answering"
FINISHED = "finished"
ABSENT = "absent"


def stage_of(exam: Exam, attempt: Attempt, now: datetime, unread_attachments: int) -> str:
    if attempt.finished_at is not None:
        return FINISHED
    if attempt.entered_at is not None:
        if now >= attempt.deadline:  # extra time moves it (attempts.arrangements)
            return FINISHED
        return ANSWERING if now >= exam.starts_at else WAITING
    if now >= attempt.entry_closes_at:  # a late entry moves it
        return ABSENT
    if attempt.face_verified_at is None:
        return NOT_LOGGED_IN
    if attempt.lot_number is None and now < exam.lot_closes_at:
        return LOT
    if unread_attachments:
        return ATTACHMENTS
    return ENTER
