"""RFC 3339 instants and intervals as OGC API and STAC write them: ``a``, ``a/b``, ``../b``, ``a/..``."""

import re
from datetime import UTC, date, datetime, time

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_LENGTH = 100


def parse_instant(value: str, *, end: bool = False) -> datetime:
    """An RFC 3339 date-time (naive means UTC); a date alone is the start of that day, or its end
    when ``end``. ValueError when it is neither."""
    value = value.strip()
    if _DATE_ONLY.match(value):
        return datetime.combine(date.fromisoformat(value), time.max if end else time.min, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value[:40]!r} is out of range") from None


def parse_interval(value: str) -> tuple[datetime | None, datetime | None]:
    """(start, end) of an instant or a closed or half-open interval; None is an open end.
    A single instant is the interval from it to itself (a date alone: that whole day)."""
    if len(value) > MAX_LENGTH:
        raise ValueError("the datetime is too long")
    if "/" not in value:
        return parse_instant(value), parse_instant(value, end=True)
    first, _, second = value.partition("/")
    start = None if first in ("", "..") else parse_instant(first)
    end = None if second in ("", "..") else parse_instant(second, end=True)
    if start is None and end is None:
        raise ValueError("an interval needs at least one end")
    if start is not None and end is not None and end < start:
        raise ValueError("the interval ends before it starts")
    return start, end
