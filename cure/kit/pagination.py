"""Keyset pagination: a page of rows in a stable order and an opaque cursor to the next one.

A cursor names the sort it was made for, the last row's sort value and its id; it is only valid
with that sort. Used by every paginated list (orders, customers).
"""

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from cure.kit.errors import InvalidInput

Row = TypeVar("Row")
Query = TypeVar("Query", bound=Select[Any])
KeyColumn = ColumnElement[Any] | InstrumentedAttribute[Any]


class InvalidCursor(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(f"cursor: {message}", loc=("query", "cursor"), problems=[message])
        self.reason = message


def encode_cursor(sort: str, value: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([sort, value.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, row_id = json.loads(base64.urlsafe_b64decode(padded))
        decoded = (datetime.fromisoformat(value), uuid.UUID(row_id))
        if decoded[0].tzinfo is None:
            raise ValueError("a cursor's time has a zone")
    except Exception as exc:  # whatever a forged cursor holds, it is the client's mistake
        raise InvalidCursor("not a cursor this API gave out") from exc
    if cursor_sort != sort:
        raise InvalidCursor(f"the cursor belongs to sort={cursor_sort}, not sort={sort}")
    return decoded


def keyset(
    query: Query,
    *,
    column: KeyColumn,
    id_column: KeyColumn,
    descending: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Query:
    """``query`` ordered by (column, id) in one direction, after the cursor's row, one row more
    than ``limit`` (so the caller knows whether another page follows)."""
    if after is not None:
        key = tuple_(column, id_column)
        query = query.where(key < tuple_(*after) if descending else key > tuple_(*after))
    order_by = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    return query.order_by(*order_by).limit(limit + 1)


def page_of(
    rows: Sequence[Row],
    *,
    limit: int,
    sort: str,
    key: Callable[[Row], tuple[datetime, uuid.UUID]],
) -> tuple[list[Row], str | None]:
    """The page (at most ``limit`` rows) and the cursor to the next one, None at the end."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    value, row_id = key(page[-1])
    return page, encode_cursor(sort, value, row_id)
