"""Request and response bodies of the messaging face (eSputnik's field names)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tessera import errors

MAX_STEPS = 50
M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], body: Any) -> M:
    """A pydantic model, or a 400 naming the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise errors.BadRequest(f"{field}: {first['msg']}", field=field) from None


class WorkflowStep(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    type: Literal["issue_promocode", "send", "add_tag", "wait"]
    group: str | None = Field(None, min_length=1, max_length=128)
    as_: str | None = Field(None, alias="as", min_length=1, max_length=64)
    message_id: int | None = None
    to_param: str | None = Field(None, min_length=1, max_length=100)
    tag: str | None = Field(None, min_length=1, max_length=255)
    seconds: float | None = Field(None, ge=0, le=366 * 86400)

    @model_validator(mode="after")
    def _required_for_type(self) -> WorkflowStep:
        needs = {"issue_promocode": "group", "send": "message_id", "add_tag": "tag", "wait": "seconds"}[
            self.type
        ]
        if getattr(self, needs) is None:
            raise ValueError(f"a {self.type} step needs {needs!r}")
        return self

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class WorkflowTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(None, min_length=1, max_length=100)
    tag: str | None = Field(None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowTrigger:
        if (self.event is None) == (self.tag is None):
            raise ValueError('a trigger is {"event": KEY} or {"tag": NAME}')
        return self


class WorkflowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    enabled: bool = True
    trigger: WorkflowTrigger
    steps: list[WorkflowStep] = Field(min_length=1, max_length=MAX_STEPS)


def parse_steps(raw: Sequence[dict[str, Any]]) -> list[WorkflowStep]:
    return [WorkflowStep.model_validate(step) for step in raw]


class EmailMessageIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    sender: str = Field(alias="from", min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=1000)
    htmlText: str = Field(min_length=1)
    plainText: str | None = None


class SmsMessageIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    sender: str = Field(alias="from", min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=10_000)


class Recipient(BaseModel):
    model_config = ConfigDict(extra="ignore")

    locator: str | None = None
    jsonParam: Any = None
    contactId: int | None = None


class SmartsendIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    recipients: list[Recipient] = Field(min_length=1, max_length=1000)
    email: bool | None = None
    fromName: str | None = Field(None, max_length=255)
    externalRequestId: str | None = Field(None, max_length=255)
