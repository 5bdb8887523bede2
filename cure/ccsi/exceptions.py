from cure.kit.errors import Conflict, CureError, NotFound


class InvalidParameter(CureError):
    """An OpenSearch parameter the catalogue cannot use: a 400 that names it."""

    status_code = 400

    def __init__(self, parameter: str, message: str, *, location: str = "query") -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.location = location
        self.reason = message

    def body(self) -> dict[str, object]:
        return {
            "error": self.name,
            "detail": [{"loc": [self.location, self.parameter], "msg": self.reason}],
        }


class ProductNotFound(NotFound):
    pass


class ProductExists(Conflict):
    pass


class AssetNotFound(NotFound):
    """The product has no asset by that key."""
