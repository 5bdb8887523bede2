from cure.kit.errors import (
    CureError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)


class OAuthError(CureError):
    """A token-endpoint error, shaped as RFC 6749 section 5.2 requires."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status_code: int = 400,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description, status_code=status_code)
        self.error = error
        self.headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status_code == 401:
            self.headers["WWW-Authenticate"] = 'Basic realm="cure"'
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)

    def body(self) -> dict[str, object]:
        return {"error": self.error, "error_description": self.message}


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "client authentication failed", status_code=401)


class InvalidToken(Unauthorized):
    pass


class InsufficientScope(Forbidden):
    def __init__(self, scope: str) -> None:
        super().__init__(f"this request needs the scope '{scope}'")
        self.headers = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}

    @property
    def name(self) -> str:
        return "insufficient_scope"


class AdminOnly(Forbidden):
    pass


class TooManyAttempts(TooManyRequests):
    """Too many failed sign-ins or cheap credentials from a client or address."""


class WeakPassword(InvalidInput):
    def __init__(self, problems: list[str], *, field: str = "password") -> None:
        super().__init__("; ".join(problems), loc=("body", field), problems=problems)


class InvalidResetToken(CureError):
    status_code = 400


class InvalidVerificationToken(CureError):
    status_code = 400


class EmailNotVerified(Forbidden):
    pass


class WrongPassword(CureError):
    status_code = 400


class ClientNotFound(NotFound):
    pass


class ScopeNotHeld(InvalidInput):
    pass
