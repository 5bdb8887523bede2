from cure.kit.errors import Conflict, CureError, Forbidden, InvalidInput, NotFound


class OrderNotFound(NotFound):
    pass


class ResultNotReady(Conflict):
    pass


class OrderFinished(Conflict):
    pass


class IdempotencyKeyReused(InvalidInput):
    pass


class InvalidFilter(InvalidInput):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter

    def body(self) -> dict[str, object]:
        return {
            "error": self.name,
            "detail": [{"loc": ["query", self.parameter], "msg": self.message}],
        }


class FilterForbidden(Forbidden):
    pass


class CallbackRefused(InvalidInput):
    pass


class TooManyOrders(CureError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after))}
