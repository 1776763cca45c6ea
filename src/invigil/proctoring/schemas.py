"""Request bodies of the proctoring endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field

from invigil.core.limits import MAX_INT


class TextBody(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class AckBody(BaseModel):
    attempt_id: str = Field(min_length=1, max_length=32)
    seq: int = Field(ge=1, le=MAX_INT)


class DismissBody(BaseModel):
    seq: int = Field(ge=1, le=2**31 - 1)  # the candidate's help message being closed


class DecisionBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
