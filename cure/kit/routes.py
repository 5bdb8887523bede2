"""Route classes for facades whose standard fixes the error shape, and for deprecated aliases.

A facade (OGC API - Processes, STAC) renders the errors of its own routes in its standard's shape;
the rest of the API keeps one shape. The route class catches what the endpoint and its dependencies
raise and asks the facade's renderer; what the renderer declines goes on to the app's handlers.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

ErrorRenderer = Callable[[Request, Exception], Response | None]


def shaped_errors(render: ErrorRenderer) -> type[APIRoute]:
    """An APIRoute class whose errors ``render`` turns into responses (None: not its kind)."""

    class ShapedErrorRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def shaped(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    response = render(request, exc)
                    if response is None:
                        raise
                    return response

            return shaped

    return ShapedErrorRoute


def deprecated_alias(successor: str) -> type[APIRoute]:
    """An APIRoute class for an old path kept for old clients: each answer says it is deprecated
    (RFC 9745 ``Deprecation``) and names the path to use instead (``Link``, successor-version)."""

    class DeprecatedAliasRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def marked(request: Request) -> Response:
                response = await handler(request)
                response.headers["Deprecation"] = "true"
                response.headers["Link"] = f'<{successor}>; rel="successor-version"'
                return response

            return marked

    return DeprecatedAliasRoute
