"""The OAuth 2.0 device authorization grant (RFC 8628), with this server as the OAuth client.

``opsloop login --oidc`` on a machine without a browser (or any machine, when the provider
offers it) asks the server to start a device authorization (:func:`start`): the server calls
the provider's ``device_authorization_endpoint`` with its own client id and secret, and hands the
CLI the user code and the page to enter it on. The CLI then asks the server to poll
(:func:`poll`) at the interval the provider set; the server redeems the device code at the token
endpoint, again as itself, and checks the ID token exactly as the web flow's (no nonce: the
device flow has none). The client secret never leaves the server, and the CLI never holds a
provider token, only the API key the server mints at the end.
"""

from __future__ import annotations

from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from pydantic import BaseModel
from pydantic import ConfigDict

from opsloop.errors import InvalidInput
from opsloop.governance.oidc_provider import OidcProvider
from opsloop.governance.oidc_provider import ProviderUnavailable
from opsloop.governance.oidc_provider import SignInRefused

__all__ = ["DEVICE_GRANT", "DeviceStart", "poll", "start"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PENDING = ("authorization_pending", "slow_down")  # poll again (slow_down: 5 s later)


class DeviceStart(BaseModel):
    """What the person needs (``user_code`` entered at ``verification_uri``) and what the CLI
    polls with (``device_code``, every ``interval`` seconds, for ``expires_in`` seconds)."""

    model_config = ConfigDict(frozen=True)

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = 5


async def start(provider: OidcProvider) -> DeviceStart:
    """Start a device authorization at the provider, as this server's client.

    Raises:
        InvalidInput: The provider has no device authorization endpoint.
        ProviderUnavailable: It cannot be reached or answers something unusable.
        SignInRefused: It refuses this client the grant.
    """
    endpoint = await provider.device_endpoint()
    if endpoint is None:
        raise InvalidInput(
            "the identity provider offers no device sign-in: use the browser flow "
            "(opsloop login --oidc on a machine with a browser)"
        )
    client = provider.oauth_client()
    data = {"scope": provider.config.scopes}  # the client id goes as its auth sends it
    try:
        async with client:
            auth = client.client_auth(client.token_endpoint_auth_method)  # as the token call
            answer = await client.request("POST", endpoint, data=data, auth=auth)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            f"the identity provider's device endpoint cannot be reached ({type(exc).__name__})"
        ) from None
    found = _json(answer)
    if answer.status_code != 200:
        problem = str(found.get("error") or answer.status_code)[:100]
        raise SignInRefused(f"the identity provider refused a device sign-in: {problem}")
    try:
        return DeviceStart.model_validate(found)
    except ValueError:
        raise ProviderUnavailable(
            "the identity provider's device answer lacks device_code, user_code, "
            "verification_uri or expires_in"
        ) from None


async def poll(provider: OidcProvider, device_code: str) -> dict[str, Any] | str:
    """The checked ID token's claims once the person approved; else ``"authorization_pending"``
    or ``"slow_down"`` (ask again later).

    Raises:
        SignInRefused: The person denied it, the code expired, or the ID token fails a check.
        ProviderUnavailable: The token endpoint cannot be reached or answers no JSON.
    """
    token_endpoint = (await provider.metadata())["token_endpoint"]
    try:
        async with provider.oauth_client() as client:
            token = await client.fetch_token(token_endpoint, grant_type=DEVICE_GRANT,
                                             device_code=device_code)  # fmt: skip
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            f"the identity provider's token endpoint cannot be reached ({type(exc).__name__})"
        ) from None
    except AuthlibBaseError as exc:  # authlib's httpx client raises its OAuthError
        if exc.error in PENDING:
            return str(exc.error)
        if exc.error == "expired_token":
            raise SignInRefused("the device sign-in expired: run opsloop login again") from None
        if exc.error == "access_denied":
            raise SignInRefused("the device sign-in was denied at the identity provider") from None
        raise SignInRefused(f"the identity provider refused the sign-in: {exc.error}") from None
    except ValueError:
        raise ProviderUnavailable("the identity provider's token answer is not JSON") from None
    return await provider.check_id_token(token, nonce=None)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        raise ProviderUnavailable("the identity provider's device answer is not JSON") from None
    if not isinstance(found, dict):
        raise ProviderUnavailable("the identity provider's device answer is not a JSON object")
    return found
