"""The handlers that give every error the same JSON shape: ``{"error": name, "detail": ...}``."""

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cure.kit.db import means_unavailable
from cure.kit.dependencies import DATABASE_DEPENDENCIES
from cure.kit.errors import CureError, InvalidInput, error_body
from cure.kit.schemas import InvalidInputRead, ProblemRead

log = logging.getLogger(__name__)


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    # Never echo submitted values back (they may be passwords); location, message and type suffice.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CureError)
    async def _cure_error(_: Request, exc: CureError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("ValidationError", _clean_validation_errors(exc)), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = {404: "NotFound", 405: "MethodNotAllowed", 413: "BodyTooLarge"}.get(
            exc.status_code, "HTTPError"
        )
        return JSONResponse(
            error_body(name, exc.detail), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _db_unavailable(_: Request, exc: DBAPIError) -> JSONResponse:
        cause = getattr(exc.orig, "__cause__", None)
        if isinstance(exc.orig, asyncpg.exceptions.DataError) or isinstance(
            cause, asyncpg.exceptions.DataError
        ):
            # asyncpg's client-side check of a parameter (a value it cannot encode): bad input.
            return _bad_value()
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return _unavailable("the database is unavailable; try again shortly")

    @app.exception_handler(DBAPIError)
    async def _database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", ""))
        return _by_sqlstate(sqlstate, exc)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed in use for the pool timeout: busy, not broken.
        log.warning("no database connection free within the pool timeout")
        return _unavailable("the server is busy; try again shortly")

    @app.exception_handler(asyncpg.PostgresError)
    async def _raw_postgres_error(_: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        # Raised unwrapped by a statement on the driver's own connection (``driver_connection``),
        # or by asyncpg itself outside SQLAlchemy: the same rules as for the wrapped errors.
        return _by_sqlstate(str(getattr(exc, "sqlstate", "") or ""), exc)

    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        if isinstance(exc, _LOCAL_FILE_ERRORS):  # a fault here, not a service that is away
            raise exc
        # asyncpg raises plain OSError (connection refused) before SQLAlchemy can wrap it.
        log.warning("backing service unavailable: %s", type(exc).__name__)
        return _unavailable("a backing service is unavailable; try again shortly")


_LOCAL_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _by_sqlstate(sqlstate: str, exc: Exception) -> JSONResponse:
    """A database error by its SQLSTATE, wrapped by SQLAlchemy or raw: unavailable is a 503;
    class 22 (data exception: a NUL byte, a value out of range, ...) is the client's input that
    no validation caught, a 422; anything else stays a 500."""
    if means_unavailable(sqlstate):
        log.warning("database unavailable: SQLSTATE %s", sqlstate)
        return _unavailable("the database is unavailable; try again shortly")
    if not sqlstate.startswith("22"):
        raise exc
    log.warning("data exception from the database: %s", sqlstate)
    return _bad_value()


def _bad_value() -> JSONResponse:
    return JSONResponse(
        InvalidInput("a value in the request cannot be stored or compared").body(),
        status_code=422,
    )


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        error_body("ServiceUnavailable", detail), status_code=503, headers={"Retry-After": "5"}
    )


def _uses_database(dependant: Any) -> bool:
    return dependant.call in DATABASE_DEPENDENCIES or any(
        _uses_database(d) for d in dependant.dependencies
    )


def declare_unavailable(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Declare in the OpenAPI document the 503 that every route using the database can answer
    (the handlers above turn an unreachable database into one); ``routers`` are those included
    in ``app`` without a prefix."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for route in [r for router in (app.router, *routers) for r in router.routes]:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            if route.path_format not in schema["paths"]:
                continue
            if not _uses_database(route.dependant):
                continue
            for method in route.methods or ():
                operation = schema["paths"][route.path_format].get(method.lower())
                if operation is None:
                    continue
                declared = operation["responses"].setdefault("503", dict(_UNAVAILABLE_RESPONSE))
                declared.setdefault("headers", _UNAVAILABLE_RESPONSE["headers"])
        _declare_invalid_input(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# The APIs that answer in their standard's error shape, not CURE's (OGC API, STAC API).
_STANDARD_SHAPES = ("/ogc", "/stac")
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _declare_invalid_input(schema: dict[str, Any]) -> None:
    """Every 422 of CURE's own routes is an InvalidInputRead (the validation errors' handler
    above answers them so), where FastAPI would declare its own HTTPValidationError."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ProblemRead, InvalidInputRead):
        if model.__name__ not in components:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(_STANDARD_SHAPES):
            continue
        for operation in operations.values():
            content = operation.get("responses", {}).get("422", {}).get("content", {})
            body = content.get("application/json", {}).get("schema", {})
            if body.get("$ref") == _FASTAPI_422:
                body["$ref"] = "#/components/schemas/InvalidInputRead"


_UNAVAILABLE_RESPONSE = {
    "description": "A backing service (the database) is unavailable; try again after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}},
}
