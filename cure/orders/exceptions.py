from cure.kit.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)


class OrderNotFound(NotFound):
    pass


class ResultNotReady(Conflict):
    pass


class AssetNotFound(NotFound):
    pass


class OrderFinished(Conflict):
    pass


class IdempotencyKeyReused(InvalidInput):
    pass


class FilterForbidden(Forbidden):
    pass


class CallbackRefused(InvalidInput):
    pass


class InputsMissing(InvalidInput):
    """The catalogue has no product for an input the app needs over the region and dates."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), problems=problems)


class InputSourcesUnavailable(ServiceUnavailable):
    """A catalogue source needed to decide whether the inputs exist gave no answer: try again."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after))}


class TooManyOrders(TooManyRequests):
    """The customer's limit of active orders, or of orders in the window, is reached."""
