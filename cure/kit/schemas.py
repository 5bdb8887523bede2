"""Base schemas: every schema derives from one of these."""

from pydantic import BaseModel, ConfigDict


class BaseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseSchema):
    """Request bodies: unknown fields are an error, so a client cannot set what it must not."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class ErrorRead(BaseSchema):
    error: str
    detail: object


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI ``responses=`` entry for the errors an endpoint can return."""
    return {code: {"model": ErrorRead} for code in codes}
