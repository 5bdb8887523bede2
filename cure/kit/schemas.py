"""Base schemas: every schema derives from one of these."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class BaseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseSchema):
    """Request bodies: unknown fields are an error, so a client cannot set what it must not."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here, with a reason, rather than fail later.
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set):
        return any(has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


class ErrorRead(BaseSchema):
    error: str
    detail: object


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI ``responses=`` entry for the errors an endpoint can return."""
    return {code: {"model": ErrorRead} for code in codes}
