from cure.kit.errors import InvalidInput, NotFound


class AppNotFound(NotFound):
    pass


class InvalidParameters(InvalidInput):
    """The order's parameters do not meet the app's JSON Schema: one problem per failed rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), loc=("body", "params"), problems=problems)
