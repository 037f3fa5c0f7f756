"""The REST side of ``opsloop login --oidc``: the CLI signs a person in through the server's
OpenID provider and leaves with an API key the server minted for them.

Three routes, open (the caller has no key yet), served only when OIDC is configured:

- ``GET /api/auth/oidc``: what the CLI needs to start: the provider, this server's client id and
  scopes, the authorization endpoint, whether the provider offers the device flow, and how long
  the key will last.
- ``POST /api/auth/oidc/device``: start a device authorization (RFC 8628) as this server's
  client (:mod:`.oidc_device`).
- ``POST /api/auth/oidc/token``: finish. Either the loopback flow's ``code``, ``code_verifier``,
  ``redirect_uri`` (``http://127.0.0.1:<port>/...``: the CLI's own listener, nothing else) and
  ``nonce``, redeemed by the server with its client secret (:meth:`OidcProvider.redeem`), or a
  ``device_code`` to poll (202 while the person has not approved yet). The ID token passes the
  web flow's checks, the user is found or created and their role set from the claims exactly as
  at a web sign-in (:func:`~opsloop.governance.oidc_users.sign_in`), and the answer holds a new
  key named ``cli sign-in via <provider>`` that expires in :data:`CLI_KEY_TTL_S`.

A refused exchange counts against the caller's failure limit (429 past it), as a wrong key does.
Every call that changes something is in the audit log (the server's audit middleware): a sign-in
as the user it signed in, a refusal as ``anonymous`` with its status.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi import Request
from fastapi import Response
from fastapi import status
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from opsloop.errors import InvalidInput
from opsloop.governance import oidc_device
from opsloop.governance import routes
from opsloop.governance.entities import NewApiKey
from opsloop.governance.oidc_provider import OidcProvider
from opsloop.governance.oidc_provider import SignInRefused
from opsloop.governance.oidc_users import SignedIn
from opsloop.governance.oidc_users import sign_in
from opsloop.web.deps import AppState
from opsloop.web.deps import State
from opsloop.web.deps import client_address

__all__ = ["CLI_KEY_TTL_S", "CliSignIn", "CliTokenRequest", "OidcSignInInfo", "router"]

CLI_KEY_TTL_S = 30 * 86400  # a CLI sign-in's key lasts 30 days; sign in again after
router = APIRouter(tags=["governance"])


class OidcSignInInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_name: str
    issuer: str
    client_id: str
    scopes: str
    authorization_endpoint: str
    device_flow: bool = Field(description="the provider offers RFC 8628 device sign-in")
    key_ttl_s: int = Field(description="how long the API key a sign-in mints lasts")


class CliTokenRequest(BaseModel):
    """The loopback flow's code (with its verifier, redirect URI and nonce), or a device code."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(None, max_length=4096)
    code_verifier: str | None = Field(None, min_length=43, max_length=128)
    redirect_uri: str | None = Field(None, max_length=300)
    nonce: str | None = Field(None, max_length=300)
    device_code: str | None = Field(None, max_length=4096)


class CliSignIn(BaseModel):
    """``signed_in`` with the user, their role and the new key (its secret shown this once), or
    ``authorization_pending`` / ``slow_down`` (poll again; ``slow_down``: 5 s later)."""

    model_config = ConfigDict(frozen=True)

    status: Literal["signed_in", "authorization_pending", "slow_down"]
    user: str | None = None
    role: str | None = None
    created: bool = Field(False, description="this sign-in created the user")
    key: NewApiKey | None = None


def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider = request.app.state.oidc
    return provider


@router.get(routes.OIDC_SIGN_IN.template)
async def sign_in_info(request: Request) -> OidcSignInInfo:
    """How to sign in through this server's OpenID provider from the CLI."""
    provider = _provider(request)
    metadata = await provider.metadata()
    config = provider.config
    return OidcSignInInfo(
        provider_name=config.provider_name, issuer=config.issuer, client_id=config.client_id,
        scopes=config.scopes, authorization_endpoint=metadata["authorization_endpoint"],
        device_flow=await provider.device_endpoint() is not None, key_ttl_s=CLI_KEY_TTL_S,
    )  # fmt: skip


@router.post(routes.OIDC_DEVICE.template)
async def start_device(request: Request) -> oidc_device.DeviceStart:
    """Start a device sign-in at the provider (400 when it offers none)."""
    return await oidc_device.start(_provider(request))


@router.post(routes.OIDC_TOKEN.template)
async def exchange(
    body: CliTokenRequest, request: Request, response: Response, state: State
) -> CliSignIn:
    """Finish a CLI sign-in: a new API key for the person the provider vouches for."""
    provider = _provider(request)
    client = client_address(request)
    state.failures.check(client)
    try:
        if body.device_code:
            found = await oidc_device.poll(provider, body.device_code)
            if isinstance(found, str):
                response.status_code = status.HTTP_202_ACCEPTED
                return CliSignIn(status=found)  # type: ignore[arg-type]  # one of PENDING
            claims = found
        else:
            redirect_uri = _loopback(body)
            claims = await provider.redeem(
                str(body.code), redirect_uri=redirect_uri, code_verifier=str(body.code_verifier),
                nonce=body.nonce,
            )  # fmt: skip
        signed = await run_in_threadpool(_sign_in, state, provider, claims, request)
    except SignInRefused:
        state.failures.fail(client)
        raise
    if state.authorizer is not None:
        state.authorizer.forget()  # the role may have changed
    return CliSignIn(status="signed_in", user=signed.user, role=signed.role,
                     created=signed.created, key=signed.key)  # fmt: skip


def _loopback(body: CliTokenRequest) -> str:
    """The request's redirect URI when it is the CLI's loopback listener (RFC 8252: http, a
    loopback address, a port); ``InvalidInput`` otherwise, or when a field is missing."""
    if not (body.code and body.code_verifier and body.redirect_uri):
        raise InvalidInput("give device_code, or code, code_verifier and redirect_uri")
    parts = urlsplit(body.redirect_uri)
    try:
        loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = parts.hostname == "localhost"
    if parts.scheme != "http" or not loopback or parts.port is None:
        raise InvalidInput(
            f"redirect_uri must be the CLI's loopback listener (http://127.0.0.1:<port>/...), "
            f"got {body.redirect_uri[:200]!r}"
        )
    return body.redirect_uri


def _sign_in(
    state: AppState, provider: OidcProvider, claims: dict[str, Any], request: Request
) -> SignedIn:
    config = provider.config
    with state.store.write() as session:
        signed = sign_in(session, config, claims, key_ttl_s=CLI_KEY_TTL_S,
                         key_name=f"cli sign-in via {config.provider_name}")  # fmt: skip
        request.state.actor = signed.user  # the audit event, written with this commit
    return signed
