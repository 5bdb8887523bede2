"""What the client raises: the API's errors with their status, name and detail, and its own."""

from typing import Any


class CureClientError(Exception):
    """Anything that went wrong talking to CURE."""


class ApiError(CureClientError):
    """An error answer of the API: its status, error name (``error`` or ``type``) and detail."""

    def __init__(self, status_code: int, error: str, detail: Any) -> None:
        super().__init__(f"{status_code} {error}: {describe(detail)}")
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.retry_after: float | None = None  # seconds, from Retry-After on 429 and 503


def describe(detail: Any) -> str:
    """A 422's problems (each with loc, msg and type) as one line: ``query.bbox: too wide; ...``."""
    if not isinstance(detail, list):
        return str(detail)
    said = []
    for problem in detail:
        if isinstance(problem, dict) and "msg" in problem:
            where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
            said.append(f"{where}: {problem['msg']}" if where else str(problem["msg"]))
        else:
            said.append(str(problem))
    return "; ".join(said)


class ChecksumMismatch(CureClientError):
    """A download whose size or sha256 differs from what the order says (the file is removed)."""


class NotLoggedIn(CureClientError):
    """No credentials: run ``cure-client login`` or pass them to the client."""


class RegionError(CureClientError, ValueError):
    """A region that is not a polygon the API can take (from a file, a bbox or WKT)."""


class NotReady(CureClientError):
    """The order has no result (it is not SUCCESS)."""
