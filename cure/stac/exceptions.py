"""STAC API errors: ``{"code", "description"}`` as the STAC API's OpenAPI document gives them,
with the same statuses as the rest of CURE (400 for a bad parameter, 404, 401, ...)."""

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cure.ccsi.exceptions import InvalidParameter
from cure.kit.errors import CureError, NotFound, ServiceUnavailable
from cure.kit.routes import shaped_errors


class InvalidSearch(InvalidParameter):
    """A STAC query parameter or search body member the API cannot use (a 400 naming it)."""


class ItemNotFound(NotFound):
    pass


class CollectionNotFound(NotFound):
    pass


class ItemSourcesUnavailable(ServiceUnavailable):
    """An item the local catalogue does not hold, asked of sources not all of which answered."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": "30"}


def _error(code: str, description: object, status: int, headers: object = None) -> JSONResponse:
    return JSONResponse(
        {"code": code, "description": description},
        status_code=status,
        headers=dict(headers) if isinstance(headers, dict) else None,
    )


def render(_: Request, exc: Exception) -> Response | None:
    if isinstance(exc, CureError):
        return _error(exc.name, exc.message, exc.status_code, exc.headers)
    if isinstance(exc, RequestValidationError):
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', '')}")
        return _error("InvalidParameter", "; ".join(problems), 400)
    if isinstance(exc, StarletteHTTPException):
        return _error("HTTPError", exc.detail, exc.status_code, exc.headers)
    return None


StacRoute = shaped_errors(render)
