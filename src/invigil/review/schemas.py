"""Request bodies of the review, scoring and publication endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from invigil.core.limits import MAX_INT


class RulingBody(BaseModel):
    event_seq: int = Field(ge=1, le=MAX_INT)
    violation: bool
    rule: str | None = Field(default=None, max_length=300)
    reason: str = Field(min_length=1, max_length=4000)


class VerdictBody(BaseModel):
    violation: bool
    rule: str | None = Field(default=None, max_length=300)
    reason: str = Field(min_length=1, max_length=4000)


class ConfirmBody(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class ScoresBody(BaseModel):
    scores: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(max_length=200)


class PublishBody(BaseModel):
    force: bool = False


class ReopenBody(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class LookupBody(BaseModel):
    exam_id: str = Field(min_length=1, max_length=64)
    ticket: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
