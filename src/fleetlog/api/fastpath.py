"""The ingest hot path: the endpoints of DirectRoutes, called before FastAPI's routing.

`FastPath` is the app's innermost middleware. ServerErrorMiddleware, the metrics and the request
limits wrap it as they wrap every route; it skips what lies inside: the exception middleware,
the exit stacks, the router and FastAPI's per-route wrapping, a third of an ingest request's
CPU. For the method and exact path of a `DirectRoute`, it calls the endpoint FastAPI would call,
with a Request on the same scope, and renders a FleetlogError with the app's own handler;
anything else raised goes on out to ServerErrorMiddleware, as it would from the router. Every
other request (another method, a trailing slash, a root path) goes on unchanged. Placed outside
ServerErrorMiddleware it would save ~1 µs more, but need the metrics, limits and 500 handling
built a second time.

The routes stay declared, and working, in FastAPI: they are what OpenAPI describes, and what
answers when FastPath is not installed (see create_app). The endpoint code exists once.
"""

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from fleetlog.api.errors import on_fleetlog_error
from fleetlog.errors import FleetlogError

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    """An APIRoute whose endpoint is `endpoint(request) -> Response`, called as it is."""

    def get_route_handler(self) -> Endpoint:
        endpoint: Endpoint = self.endpoint
        return endpoint


class FastPath:
    """ASGI middleware serving the DirectRoutes among `routes` itself, by method and exact path."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.served: dict[tuple[str, str], tuple[DirectRoute, Endpoint]] = {
            (method, route.path): (route, route.get_route_handler())
            for route in routes
            if isinstance(route, DirectRoute)
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.served.get((scope.get("method", ""), scope.get("path", "")))
        if found is None:
            await self.app(scope, receive, send)
            return
        route, endpoint = found
        # As the router would: the metrics label the request with this route's template.
        scope["route"] = route
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except FleetlogError as exc:
            response = await on_fleetlog_error(request, exc)
        await response(scope, receive, send)
