from cure.kit.errors import InvalidInput, NotFound


class AppNotFound(NotFound):
    pass


class InvalidParameters(InvalidInput):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def body(self) -> dict[str, object]:
        return {"error": self.name, "detail": self.problems}
