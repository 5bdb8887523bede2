"""Database trouble maps to a clear 503 (unavailable) or 422 (bad value), never a 500."""

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, InterfaceError

from cure.kit.error_handlers import install_error_handlers


def app_raising(exc: BaseException) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def call(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients"),
    ],
)
async def test_server_starting_or_stopping_is_503(error) -> None:
    for raised in (error, DBAPIError("SELECT 1", {}, error)):
        response = await call(app_raising(raised))
        assert response.status_code == 503, type(raised)
        assert response.json()["error"] == "ServiceUnavailable"
        assert response.headers["retry-after"] == "5"


async def test_a_connection_the_server_ended_under_the_driver_is_503() -> None:
    # How ``driver_connection`` raises asyncpg's report of a statement sent after the server's
    # "terminating connection" arrived on the idle connection but before the driver saw it close.
    ended = asyncpg.InternalClientError(
        "cannot switch to state 11; another operation (2) is in progress"
    )
    raised = InterfaceError(None, None, ended, connection_invalidated=True)
    response = await call(app_raising(raised))
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailable"


async def test_refused_connection_is_503() -> None:
    response = await call(app_raising(ConnectionRefusedError(111, "Connection refused")))
    assert response.status_code == 503


async def test_data_exception_is_422_and_other_errors_stay_500() -> None:
    not_in_repertoire = asyncpg.exceptions.CharacterNotInRepertoireError("NUL")
    unencodable = asyncpg.exceptions.DataError("invalid input for query argument $1")
    duplicate = asyncpg.exceptions.UniqueViolationError("dup")
    # Wrapped by SQLAlchemy (an ORM session) or raw (a read on the driver's own connection).
    for bad_value in (not_in_repertoire, unencodable):
        for raised in (DBAPIError("INSERT", {}, bad_value), bad_value):
            assert (await call(app_raising(raised))).status_code == 422, raised
    for raised in (DBAPIError("INSERT", {}, duplicate), duplicate):
        assert (await call(app_raising(raised))).status_code == 500


async def test_a_local_file_error_is_not_reported_as_an_outage() -> None:
    response = await call(app_raising(PermissionError(13, "Permission denied")))
    assert response.status_code == 500


def test_every_429_is_the_one_too_many_requests_error_with_retry_after() -> None:
    """One 429 error: every CureError answering 429 is a TooManyRequests, which always says
    when to ask again (at least in a second)."""
    import cure.main  # noqa: F401  (every domain's errors)
    from cure.kit.errors import CureError, TooManyRequests

    def subclasses(kind: type) -> set[type]:
        found = set(kind.__subclasses__())
        return found.union(*(subclasses(k) for k in found)) if found else found

    too_many = {k for k in subclasses(CureError) if k.status_code == 429}
    assert {k.__name__ for k in too_many} >= {"TooManyAttempts", "TooManyOrders"}
    for kind in too_many:
        assert issubclass(kind, TooManyRequests), kind
        refused = kind("slow down", retry_after=0)
        assert refused.headers["Retry-After"] == "1" and refused.retry_after == 1


def test_every_invalid_input_lists_its_problems_in_one_shape() -> None:
    """One invalid-input error: every CureError answering 422 is an InvalidInput, whose detail
    lists each problem as FastAPI lists a validation error's (loc, msg, type)."""
    import inspect

    import cure.main  # noqa: F401  (every domain's errors)
    from cure.kit.errors import CureError, InvalidInput

    def subclasses(kind: type) -> set[type]:
        found = set(kind.__subclasses__())
        return found.union(*(subclasses(k) for k in found)) if found else found

    invalid = {k for k in subclasses(CureError) if k.status_code == 422}
    assert {k.__name__ for k in invalid} >= {"InvalidParameters", "InputsMissing", "InvalidCursor"}
    for kind in invalid:
        assert issubclass(kind, InvalidInput), kind
        takes_list = list(inspect.signature(kind.__init__).parameters)[1] == "problems"
        refused = kind(["one problem", "another"] if takes_list else "one problem")
        body = refused.body()
        assert body["error"] == kind.__name__
        assert isinstance(body["detail"], list) and body["detail"]
        for problem in body["detail"]:
            assert set(problem) == {"loc", "msg", "type"}, (kind, problem)
            assert isinstance(problem["loc"], list) and problem["msg"] in ("one problem", "another")


async def test_a_validation_error_and_an_invalid_input_answer_alike() -> None:
    from fastapi.exceptions import RequestValidationError

    from cure.kit.errors import InvalidInput

    ours = (await call(app_raising(InvalidInput("bbox: too wide", loc=("query", "bbox"))))).json()
    theirs = await call(
        app_raising(RequestValidationError([{"loc": ("query", "bbox"), "msg": "bad", "type": "x"}]))
    )
    assert ours == {
        "error": "InvalidInput",
        "detail": [{"loc": ["query", "bbox"], "msg": "bbox: too wide", "type": "InvalidInput"}],
    }
    assert theirs.status_code == 422
    assert theirs.json()["detail"] == [{"loc": ["query", "bbox"], "msg": "bad", "type": "x"}]


def test_the_api_document_declares_every_422_of_cures_routes_in_its_shape(settings) -> None:  # type: ignore[no-untyped-def]
    """The OpenAPI document says what a 422 is (InvalidInputRead: error and the problems),
    not FastAPI's own HTTPValidationError, except on the OGC and STAC APIs (their standards'
    shapes)."""
    from cure.main import create_app

    document = create_app(settings).openapi()
    shapes: dict[str, set[str]] = {}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer is None:
                continue
            if path.startswith(("/ogc", "/stac")):
                continue
            ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            shapes.setdefault(path, set()).add(ref)
    assert len(shapes) > 40  # every route that takes input
    assert set().union(*shapes.values()) == {"InvalidInputRead"}
    problem = document["components"]["schemas"]["ProblemRead"]
    assert set(problem["properties"]) == {"loc", "msg", "type"}
