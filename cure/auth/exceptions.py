from cure.kit.errors import CureError, Forbidden, Unauthorized


class OAuthError(CureError):
    """A token-endpoint error, shaped as RFC 6749 section 5.2 requires."""

    def __init__(self, error: str, description: str, *, status_code: int = 400) -> None:
        super().__init__(description, status_code=status_code)
        self.error = error
        self.headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status_code == 401:
            self.headers["WWW-Authenticate"] = 'Basic realm="cure"'

    def body(self) -> dict[str, object]:
        return {"error": self.error, "error_description": self.message}


class InvalidToken(Unauthorized):
    pass


class InsufficientScope(Forbidden):
    def __init__(self, scope: str) -> None:
        super().__init__(f"this request needs the scope '{scope}'")
        self.headers = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}

    @property
    def name(self) -> str:
        return "insufficient_scope"
