"""Signing in: OAuth2 password flow and refresh (RFC 6749), and who the caller is."""

from typing import Annotated

from fastapi import APIRouter, Form, Response

from fleetlog.api.errors import documented
from fleetlog.api.security import (
    AUTH_RESPONSES,
    TOKEN_URL,
    GatekeeperDep,
    Identity,
)
from fleetlog.auth.schemas import IdentityOut, TokenForm, TokenOut
from fleetlog.errors import InvalidPayload

router = APIRouter(tags=["auth"])

TOKEN_RESPONSES = documented(
    {
        401: "Wrong user name or password, or a refresh token used before or no longer valid",
        413: "The form is over 16 KiB, all the sign-in form may hold",
        422: "A form field is missing or breaks its rule",
        429: "Too many sign-in attempts from this address; retry after Retry-After seconds",
    }
)


@router.post(
    TOKEN_URL,
    response_model=TokenOut,
    responses=TOKEN_RESPONSES,
)
async def token(
    form: Annotated[TokenForm, Form()], gatekeeper: GatekeeperDep, response: Response
) -> TokenOut:
    """Trade a user name and password (or a refresh token) for an access and a refresh token.

    A refresh token works once: the answer holds the next pair. Using one again ends the
    sign-in it came from, refusing every token of that sign-in; sign in again then.
    """
    response.headers["Cache-Control"] = "no-store"
    if form.grant_type == "refresh_token":
        pair = await gatekeeper.refresh(form.refresh_token)
    elif form.username and form.password:
        pair = await gatekeeper.sign_in(form.username, form.password)
    else:
        raise InvalidPayload(
            "the password grant needs a username and a password",
            detail=[{"field": "username", "rule": "missing", "message": "required"}],
        )
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.get("/api/auth/me", response_model=IdentityOut, responses=AUTH_RESPONSES)
async def me(principal: Identity) -> IdentityOut:
    """Who this request is authenticated as, and what it may do."""
    return IdentityOut.of(principal)
