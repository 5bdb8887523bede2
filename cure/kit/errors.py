"""One error hierarchy: every expected condition is a CureError with a status code and a reason.

The HTTP handlers that turn these (and validation and database errors) into one JSON shape live in
``cure.kit.error_handlers``; this module has no web framework in it, so workers can use it too.
"""


class CureError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    @property
    def name(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, object]:
        return error_body(self.name, self.message)


class BadRequest(CureError):
    """A request that cannot be understood as sent (a header that is no valid value, say)."""

    status_code = 400


class NotFound(CureError):
    status_code = 404


class Conflict(CureError):
    status_code = 409


class InvalidInput(CureError):
    """Input CURE cannot use: a 422 whose ``detail`` lists each problem the way FastAPI lists a
    request's validation errors (``loc``: where, ``msg``: what, ``type``: the error's name), so a
    client reads every 422 one way, whichever check refused the input."""

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        loc: tuple[str | int, ...] = (),
        problems: list[str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.loc = loc
        self.problems = problems if problems is not None else [message]

    def body(self) -> dict[str, object]:
        listed = [{"loc": list(self.loc), "msg": p, "type": self.name} for p in self.problems]
        return error_body(self.name, listed)


class Unauthorized(CureError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(CureError):
    status_code = 403


class ServiceUnavailable(CureError):
    status_code = 503
    headers = {"Retry-After": "5"}


class TooManyRequests(CureError):
    """A client asked more often than it may; ``retry_after`` says in how many seconds to ask."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)  # "now" would only bring the next refusal
        self.headers = {"Retry-After": str(self.retry_after)}


def error_body(name: str, detail: object) -> dict[str, object]:
    return {"error": name, "detail": detail}
