"""Base schemas: every schema derives from one of these."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BaseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# How deep a request's JSON values may nest (objects and arrays). GeoJSON needs 4 (a
# MultiPolygon's positions); app parameters have no use for more than a few. Deeper values would
# exhaust the recursion of whatever walks them next (validation, hashing, the database).
MAX_NESTING = 32


class InputSchema(BaseSchema):
    """Request bodies: unknown fields are an error, so a client cannot set what it must not."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @field_validator("*", mode="before")
    @classmethod
    def _not_too_deep(cls, value: Any) -> Any:
        if nesting(value, limit=MAX_NESTING) > MAX_NESTING:
            raise ValueError(f"must not be nested more than {MAX_NESTING} levels deep")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here, with a reason, rather than fail later.
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return []


def nesting(value: Any, *, limit: int) -> int:
    """How deep ``value`` nests (0 for a scalar), walked without recursion; stops counting once
    past ``limit``."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple | set | frozenset):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in _children(item))
    return deepest


def has_nul(value: Any) -> bool:
    """Whether a NUL character is in ``value`` or anything in it (walked without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        else:
            stack.extend(_children(item))
    return False


class ErrorRead(BaseSchema):
    error: str
    detail: object


class ProblemRead(BaseSchema):
    loc: list[str | int] = Field(description="Where: body, query, path or header, then the field")
    msg: str
    type: str


class InvalidInputRead(BaseSchema):
    """Every 422: each problem with the input, where it was found (``cure.kit.errors``)."""

    error: str
    detail: list[ProblemRead]


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI ``responses=`` entry for the errors an endpoint can return."""
    return {code: {"model": InvalidInputRead if code == 422 else ErrorRead} for code in codes}
