"""Authentication and authorization as route dependencies: `Writer`, `Reader`, `Admin`.

A credential comes as `Authorization: Bearer <API key or access token>` or `X-API-Key: <key>`.
The two schemes are declared to OpenAPI, so Swagger UI's Authorize button offers both.
"""

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.datastructures import Headers

from fleetlog.api.errors import documented
from fleetlog.auth.credentials import Credentials
from fleetlog.auth.gatekeeper import Gatekeeper, Policy
from fleetlog.auth.principals import Principal, Scope
from fleetlog.auth.tokens import TokenIssuer, load_or_create_secret
from fleetlog.config import Settings
from fleetlog.keys import Keys
from fleetlog.ratelimit import Limit, RateLimiter
from fleetlog.ratelimit.memory import MemoryRateLimiter
from fleetlog.ratelimit.redis_gcra import RedisRateLimiter
from fleetlog.store.engine import create_store_engine

log = logging.getLogger(__name__)

TOKEN_URL = "/api/auth/token"

bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    scheme_name="bearer",
    description="A user's access token (from /api/auth/token) or an API key.",
)
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="An API key."
)

AUTH_RESPONSES = documented(
    {
        401: "No credential, or one that is unknown, revoked or expired (see WWW-Authenticate)",
        403: "The credential is valid but lacks the right for this route",
        429: "Over the rate limit; retry after Retry-After seconds (RateLimit-* headers)",
    }
)

BearerToken = Annotated[str | None, Depends(bearer)]
ApiKeyHeader = Annotated[str | None, Depends(api_key_header)]


def get_gatekeeper(request: Request) -> Gatekeeper:
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return gatekeeper


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


# Where RequestLimits keeps the principal it admitted before reading a body: the route checks
# its own scope against it, and neither identifies nor counts the request a second time.
ADMITTED = "fleetlog.admitted"


def require(scope: Scope | None) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only principals granted `scope` (any identity when None)."""

    async def admitted(request: Request, token: BearerToken, key: ApiKeyHeader) -> Principal:
        gatekeeper = get_gatekeeper(request)
        principal = admitted_before(request, scope) or await gatekeeper.admit(
            token or key, scope, client_address(request)
        )
        # The access log names who asked (api/middleware.py).
        request.scope[ADMITTED] = principal
        return principal

    return admitted


def admitted_before(request: Request, scope: Scope | None) -> Principal | None:
    """The principal RequestLimits admitted before the body, checked for `scope`; else None."""
    principal: Principal | None = request.scope.get(ADMITTED)
    return None if principal is None else get_gatekeeper(request).authorize(principal, scope)


def presented_credential(headers: Headers) -> str | None:
    """A Bearer credential, else the password of Basic auth (an API key, as Promtail, Vector
    and Beats send one), else X-API-Key."""
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and credential:
        return credential
    if scheme == "basic" and credential:
        return basic_password(credential)
    return headers.get("x-api-key")


def basic_password(credential: str) -> str | None:
    """The password of `Authorization: Basic base64(user:password)`; None if it is not one."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


async def admit(request: Request, scope: Scope) -> Principal:
    """`require(scope)` without FastAPI's dependency resolution, for the ingest hot path."""
    return admitted_before(request, scope) or await get_gatekeeper(request).admit(
        presented_credential(request.headers), scope, client_address(request)
    )


Identity = Annotated[Principal, Depends(require(None))]
Writer = Annotated[Principal, Depends(require(Scope.INGEST))]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]


def rate_limiter(settings: Settings) -> RateLimiter:
    """Shared budgets in Redis whenever Redis is configured; in-process otherwise."""
    if settings.rate_limit_redis is not None:
        return RedisRateLimiter(settings.rate_limit_redis, keys=Keys(settings.redis_namespace))
    return MemoryRateLimiter()


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if not settings.embedded:
        log.warning(
            "FLEETLOG_JWT_SECRET is not set: using %s; API processes on other machines "
            "will not accept this one's tokens",
            settings.jwt_secret_path,
        )
    return load_or_create_secret(settings.jwt_secret_path)


@asynccontextmanager
async def open_gatekeeper(settings: Settings, *, secret: str) -> AsyncIterator[Gatekeeper]:
    engine = create_store_engine(settings)
    tokens = TokenIssuer(
        secret,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )
    policy = Policy(
        open_allowed=settings.open_allowed,
        insecure=settings.insecure,
        cache_ttl=settings.auth_cache_ttl.total_seconds(),
        default_limit=Limit(settings.key_rate, settings.key_burst),
        address_limit=Limit(settings.address_rate, settings.address_burst),
    )
    gatekeeper = Gatekeeper(Credentials(engine), tokens, rate_limiter(settings), policy=policy)
    try:
        yield gatekeeper
    finally:
        await gatekeeper.close()
        await engine.dispose()
