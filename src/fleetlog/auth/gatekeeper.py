"""The Gatekeeper: who is asking (key, token or nobody), may they, and are they within their rate.

Verified credentials are cached in-process for `auth_cache_ttl`, so the hot path costs a dict
lookup; a revoked key, a deleted user, a changed password or an ended session takes effect
within that bound.
"""

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from functools import lru_cache

from fleetlog.auth.api_keys import KEY_PREFIX
from fleetlog.auth.credentials import Credentials
from fleetlog.auth.principals import OPEN, Principal, Scope
from fleetlog.auth.tokens import TokenIssuer, TokenPair
from fleetlog.errors import RateLimited, StoreUnavailable, Unauthorized
from fleetlog.metrics import AUTH_REFUSED, RATE_LIMITED
from fleetlog.ratelimit import Limit, RateLimiter

MAX_CACHED = 10_000


@lru_cache(maxsize=1024)
def is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Policy:
    """What the Gatekeeper enforces, from the settings."""

    open_allowed: bool
    insecure: bool
    cache_ttl: float
    default_limit: Limit
    address_limit: Limit


class Gatekeeper:
    def __init__(
        self,
        credentials: Credentials,
        tokens: TokenIssuer,
        limiter: RateLimiter,
        *,
        policy: Policy,
    ) -> None:
        self.credentials = credentials
        self.tokens = tokens
        self.limiter = limiter
        self.policy = policy
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._open = False
        self._open_until = 0.0
        self._open_lock = asyncio.Lock()

    async def admit(
        self, credential: str | None, scope: Scope | None, client: str | None
    ) -> Principal:
        """The principal of this request, checked for `scope` and counted against its rate."""
        principal = self.authorize(await self.identify(credential, client), scope)
        if principal is not OPEN:
            limit = principal.limit or self.policy.default_limit
            await self.throttle(principal.subject, limit, kind=principal.kind)
        return principal

    @staticmethod
    def authorize(principal: Principal, scope: Scope | None) -> Principal:
        """`principal`, if it is granted `scope` (any identity when None)."""
        if principal is not OPEN and scope is not None and scope not in principal.grants:
            AUTH_REFUSED.labels("scope").inc()
            raise principal.forbidden(scope)
        return principal

    async def identify(self, credential: str | None, client: str | None) -> Principal:
        if credential is None:
            if await self.is_open() and (self.policy.insecure or is_loopback(client)):
                return OPEN
            await self.refuse(client, "missing")
            raise Unauthorized("send an API key or a token: Authorization: Bearer <credential>")
        now = time.monotonic()
        cached = self._cache.get(credential)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            try:
                principal, expires = await self._verify(credential, now)
            except StoreUnavailable:
                # While the store is down, a credential verified before keeps its answer:
                # the API goes on accepting (docs/security.md states the bound).
                if cached is None:
                    raise
                principal, expires = cached[1], cached[0]
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[credential] = (expires, principal)
        if principal is None:
            await self.refuse(client, "invalid")
            raise Unauthorized("the credential is unknown, revoked or expired", invalid=True)
        return principal

    async def _verify(self, credential: str, now: float) -> tuple[Principal | None, float]:
        """The principal of a credential (None if refused), and until when to trust that."""
        expires = now + self.policy.cache_ttl
        if credential.startswith(KEY_PREFIX):
            key = await self.credentials.keys.active(credential)
            return (None if key is None else key.principal()), expires
        try:
            claims = self.tokens.verify(credential, kind="access")
        except Unauthorized:
            return None, expires
        user = await self.credentials.sessions.holder(claims.session, claims.user_id)
        if user is None or user.token_version != claims.token_version:
            return None, expires
        # Never trust a token past its own expiry, whatever the cache's bound.
        return user.principal(), min(expires, now + claims.expires_at - time.time())

    async def is_open(self) -> bool:
        """Open when allowed and no credential was ever created; re-checked every cache bound."""
        if not self.policy.open_allowed:
            return False
        if time.monotonic() < self._open_until:
            return self._open
        async with self._open_lock:
            if time.monotonic() >= self._open_until:
                try:
                    self._open = not await self.credentials.exist()
                except StoreUnavailable:
                    if self._open_until == 0.0:
                        raise
                    return self._open
                self._open_until = time.monotonic() + self.policy.cache_ttl
        return self._open

    async def refuse(self, client: str | None, reason: str) -> None:
        """Count a refused request against its address, so guessing is slowed down."""
        AUTH_REFUSED.labels(reason).inc()
        await self.throttle_address(client)

    async def throttle_address(self, client: str | None) -> None:
        await self.throttle(f"address:{client}", self.policy.address_limit, kind="address")

    async def throttle(self, subject: str, limit: Limit, *, kind: str) -> None:
        decision = await self.limiter.hit(subject, limit)
        if not decision.allowed:
            RATE_LIMITED.labels(kind).inc()
            raise RateLimited(
                f"over the rate limit of {limit.rate:g} requests/s (burst {limit.burst})",
                retry_after=decision.retry_after,
                limit=limit.burst,
                reset_after=decision.reset_after,
            )

    async def sign_in(self, name: str, password: str) -> TokenPair:
        """Tokens of a new session of the user with this name and password."""
        user = await self.credentials.sign_in(name, password)
        session = await self.credentials.sessions.open(user.id, until=self.tokens.session_end())
        return self.tokens.issue(user, session=session, generation=0)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """The next tokens of a live session, for its current refresh token (used up by this).

        A refresh token presented again ends its session: every token issued from it is
        refused, by this process at once and by the others within the cache bound.
        """
        claims = self.tokens.verify(refresh_token, kind="refresh")
        sessions = self.credentials.sessions
        user = await sessions.holder(claims.session, claims.user_id)
        if user is None or user.token_version != claims.token_version:
            raise Unauthorized("the refresh token is no longer valid", invalid=True)
        generation = await sessions.rotate(
            claims.session,
            user_id=user.id,
            generation=claims.generation,
            until=self.tokens.session_end(),
        )
        if generation is None:
            # The session has ended: its access tokens cached here must go now, not at expiry.
            self.forget()
            raise Unauthorized(
                "the refresh token was used before: its sign-in has ended", invalid=True
            )
        return self.tokens.issue(user, session=claims.session, generation=generation)

    def forget(self) -> None:
        """Credentials changed through this process: stop trusting what was cached, at once."""
        self._cache.clear()
        self._open_until = 0.0

    async def close(self) -> None:
        await self.limiter.close()
