"""OGC API - Processes exceptions: ``application/problem+json`` (RFC 7807) with OGC's types.

Every error of an OGC route is rendered here, CURE's own errors included (an unknown app is
``no-such-process``, an unknown or foreign order ``no-such-job``, ...); the rest of the API keeps
CURE's ``{"error", "detail"}`` shape.
"""

import logging
from collections.abc import Mapping

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cure.apps.exceptions import AppNotFound, InvalidParameters
from cure.kit.errors import CureError, InvalidInput
from cure.kit.routes import shaped_errors
from cure.orders.exceptions import InputsMissing, OrderNotFound, ResultNotReady

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
_OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
NO_SUCH_PROCESS = _OGC + "no-such-process"
NO_SUCH_JOB = _OGC + "no-such-job"
RESULT_NOT_READY = _OGC + "result-not-ready"
# OGC API - Processes names no type for these; the Standard points to the OGC Web Service
# exception codes (OWS Common), e.g. InvalidParameterValue for invalid input data.
INVALID_PARAMETER_VALUE = "InvalidParameterValue"
MISSING_PARAMETER_VALUE = "MissingParameterValue"
OPTION_NOT_SUPPORTED = "OptionNotSupported"
NO_APPLICABLE_CODE = "NoApplicableCode"
ABOUT_BLANK = "about:blank"


class OgcException(CureError):
    """An error of an OGC route with its OGC exception type."""

    type_uri = ABOUT_BLANK
    title = "Error"

    def body(self) -> dict[str, object]:
        return {"error": self.name, "detail": self.message}


class NoSuchProcess(OgcException):
    status_code = 404
    type_uri = NO_SUCH_PROCESS
    title = "No such process"


class NoSuchJob(OgcException):
    status_code = 404
    type_uri = NO_SUCH_JOB
    title = "No such job"


class JobResultNotReady(OgcException):
    status_code = 404
    type_uri = RESULT_NOT_READY
    title = "Result not ready"


class NothingHere(OgcException):
    status_code = 404
    title = "Not found"


class InvalidParameterValue(OgcException):
    status_code = 400
    type_uri = INVALID_PARAMETER_VALUE
    title = "Invalid parameter value"


class MissingParameterValue(OgcException):
    status_code = 400
    type_uri = MISSING_PARAMETER_VALUE
    title = "Missing parameter value"


class OptionNotSupported(OgcException):
    status_code = 400
    type_uri = OPTION_NOT_SUPPORTED
    title = "Option not supported"


class JobFailed(OgcException):
    """The results of a job that failed: the reason of the failure, with a status to match."""

    status_code = 500
    type_uri = NO_APPLICABLE_CODE
    title = "The job failed"


def problem(
    request: Request,
    *,
    type_uri: str,
    title: str,
    status: int,
    detail: object,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_TYPE
    )


def _validation_detail(exc: RequestValidationError) -> str:
    # Never echo submitted values back; where and what is enough.
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg")))
    return "; ".join(problems)


def render(request: Request, exc: Exception) -> Response | None:
    """The OGC exception for an error of an OGC route; None leaves it to the app's handlers
    (database outages and the like keep CURE's shape and status)."""
    if isinstance(exc, OgcException):
        typed: tuple[str, str] = (exc.type_uri, exc.title)
    elif isinstance(exc, AppNotFound):
        typed = (NO_SUCH_PROCESS, "No such process")
    elif isinstance(exc, OrderNotFound):
        typed = (NO_SUCH_JOB, "No such job")
    elif isinstance(exc, ResultNotReady):
        typed = (RESULT_NOT_READY, "Result not ready")
    elif isinstance(exc, InvalidInput):
        typed = (INVALID_PARAMETER_VALUE, "Invalid parameter value")
    elif isinstance(exc, RequestValidationError):
        return problem(
            request,
            type_uri=INVALID_PARAMETER_VALUE,
            title="Invalid parameter value",
            status=400,
            detail=_validation_detail(exc),
        )
    elif isinstance(exc, StarletteHTTPException):
        return problem(
            request,
            type_uri=ABOUT_BLANK,
            title="Error",
            status=exc.status_code,
            detail=exc.detail,
            headers=exc.headers,
        )
    elif isinstance(exc, CureError):
        typed = (ABOUT_BLANK, exc.name)
    else:
        return None
    detail: object = exc.message
    status = exc.status_code
    if isinstance(exc, InputsMissing):
        detail = "; ".join(exc.problems)  # a valid request the catalogue cannot serve: 422
    elif isinstance(exc, InvalidParameters):
        # The app's parameters are the process's inputs, named without CURE's "params." prefix.
        detail = "; ".join(problem.removeprefix("params.") for problem in exc.problems)
        status = 400
    elif isinstance(exc, ResultNotReady):
        status = 404
    return problem(
        request,
        type_uri=typed[0],
        title=typed[1],
        status=status,
        detail=detail,
        headers=exc.headers,
    )


OgcRoute = shaped_errors(render)
