"""The OpenID provider as this server sees it: discovery, the authorization-code flow with PKCE,
and the ID token checks, with authlib's client and joserfc (authlib's own JOSE layer).

:class:`OidcProvider` reads the provider's discovery document
(``<issuer>/.well-known/openid-configuration``) and its JWKS, keeps both for
:data:`METADATA_TTL_S` (a JWKS is fetched again at once when a token names a key id it lacks: the
provider rotated its keys), builds the authorization URL (``state``, ``nonce`` and an S256 code
challenge) and redeems the code for tokens. The ID token must carry a valid signature by a key of
the JWKS (with an algorithm the provider announces), ``iss`` equal to the configured issuer (the
discovery document must say the same issuer, as OpenID Connect Discovery requires), ``aud``
holding this server's client id (``azp`` too when there are several audiences), an ``exp`` in the
future (:data:`LEEWAY_S` of clock skew allowed), and the ``nonce`` this browser was given.

Two errors, each one line: :class:`ProviderUnavailable` (503: the provider cannot be reached,
or answers with something that is not a usable discovery document, JWKS or token response:
an operator's problem) and :class:`SignInRefused` (401: the sign-in itself is not valid).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from opsloop.errors import OpsloopError
from opsloop.governance.oidc_config import OidcConfig

__all__ = ["LEEWAY_S", "METADATA_TTL_S", "OidcProvider", "ProviderUnavailable", "SignInRefused"]

METADATA_TTL_S = 300.0
LEEWAY_S = 60  # clock skew allowed on exp / iat
_TIMEOUT_S = 10.0
_NEEDED = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnavailable(OpsloopError):
    """The identity provider cannot be reached or answers with something unusable."""

    code = "IDP_UNAVAILABLE"
    http_status = 503
    exit_code = 10


class SignInRefused(OpsloopError):
    """The provider's answer does not prove who signs in (or the user may not sign in)."""

    code = "SIGN_IN_REFUSED"
    http_status = 401
    exit_code = 5


class OidcProvider:
    """One provider, shared by every request of a server process (its caches are per process).

    ``transport`` lets tests hand httpx a transport; production uses the default."""

    def __init__(self, config: OidcConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._fetched_at = 0.0

    # -- discovery ----------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=_TIMEOUT_S, transport=self._transport)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        where = self.config.issuer
        try:
            async with self._http() as http:
                answer = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider {where} cannot be reached for its {what} "
                f"({type(exc).__name__}): check --oidc-issuer and that the provider is up"
            ) from None
        if answer.status_code != 200:
            raise ProviderUnavailable(
                f"the identity provider {where} answered {answer.status_code} for its {what} "
                f"({url[:200]}): check --oidc-issuer"
            )
        try:
            found = answer.json()
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise ProviderUnavailable(f"the identity provider's {what} at {url[:200]} is not JSON")
        return found

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (cached :data:`METADATA_TTL_S`)."""
        if self._metadata is not None and time.monotonic() - self._fetched_at < METADATA_TTL_S:
            return self._metadata
        url = f"{self.config.issuer}/.well-known/openid-configuration"
        found = await self._get_json(url, "discovery document")
        missing = [name for name in _NEEDED if not isinstance(found.get(name), str)]
        if missing:
            raise ProviderUnavailable(
                f"the discovery document at {url[:200]} lacks {', '.join(missing)}"
            )
        if str(found.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise ProviderUnavailable(
                f"the provider at {self.config.issuer} says its issuer is "
                f"{str(found.get('issuer'))[:200]!r}: set --oidc-issuer to exactly that"
            )
        self._metadata, self._jwks, self._fetched_at = found, None, time.monotonic()
        return found

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys (fetched again with ``refresh``: a key id it lacked)."""
        if self._jwks is not None and not refresh:
            return self._jwks
        metadata = await self.metadata()
        found = await self._get_json(metadata["jwks_uri"], "JWKS")
        try:
            self._jwks = KeySet.import_key_set(found)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable(f"the provider's JWKS holds no usable key ({exc})") from None
        return self._jwks

    async def device_endpoint(self) -> str | None:
        """The device authorization endpoint (RFC 8628), if the provider has one."""
        found = (await self.metadata()).get("device_authorization_endpoint")
        return found if isinstance(found, str) else None

    # -- the code flow ------------------------------------------------------------------------
    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method=(
                "client_secret_basic" if self.config.client_secret else "none"
            ),
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=_TIMEOUT_S,
            transport=self._transport,
        )

    def oauth_client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        """authlib's client for this provider, as this server (its client id and secret)."""
        return self._client(redirect_uri)

    async def authorization_url(
        self, redirect_uri: str, *, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: the provider's authorization endpoint with this request."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, code_verifier=code_verifier, nonce=nonce
            )
        return str(url)

    async def redeem(
        self, code: str, *, redirect_uri: str, code_verifier: str, nonce: str | None
    ) -> dict[str, Any]:
        """Exchange ``code`` for tokens and return the checked ID token's claims.

        Raises:
            ProviderUnavailable: The token endpoint cannot be reached or answers no JSON.
            SignInRefused: The provider refused the code, or the ID token fails a check.
        """
        token_endpoint = (await self.metadata())["token_endpoint"]
        try:
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token(
                    token_endpoint, code=code, code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                )  # fmt: skip
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider's token endpoint cannot be reached ({type(exc).__name__})"
            ) from None
        except AuthlibBaseError as exc:  # the httpx client raises OAuthError, not OAuth2Error
            raise SignInRefused(f"the identity provider refused the sign-in: {exc.error}") from None
        except ValueError:
            raise ProviderUnavailable("the identity provider's token answer is not JSON") from None
        return await self.check_id_token(token, nonce=nonce)

    async def check_id_token(self, token: dict[str, Any], *, nonce: str | None) -> dict[str, Any]:
        """The claims of ``token["id_token"]`` after every check in the module docstring
        (``nonce`` None: the flow had none, e.g. the device flow)."""
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("the identity provider sent no ID token: is 'openid' a scope?")
        algorithms = (await self.metadata()).get("id_token_signing_alg_values_supported")
        registry = JWSRegistry(
            algorithms=[a for a in algorithms or ["RS256"] if a != "none"],
            strict_check_header=False,
        )
        try:
            try:
                decoded = jwt.decode(id_token, await self.key_set(), registry=registry)
            except InvalidKeyIdError:
                decoded = jwt.decode(id_token, await self.key_set(refresh=True), registry=registry)
        except JoseError as exc:
            raise SignInRefused(f"the ID token's signature does not verify ({exc.error})") from None
        except ValueError:
            raise SignInRefused("the ID token is not a signed JWT") from None
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
            "exp": {"essential": True},
        }
        params = {"client_id": self.config.client_id, "nonce": nonce}
        if isinstance(token.get("access_token"), str):
            params["access_token"] = token["access_token"]
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        try:
            claims.validate(leeway=LEEWAY_S)
        except JoseError as exc:
            raise SignInRefused(
                self._claim_problem(getattr(exc, "claim", "") or exc.error)
            ) from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignInRefused("the ID token's 'nonce' is not the one this sign-in sent")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInRefused("the ID token has no subject ('sub')")
        return dict(claims)

    def _claim_problem(self, name: str) -> str:
        if name == "exp":
            return (f"the ID token has expired ('exp' is past, {LEEWAY_S} s of clock skew "
                    "allowed): sign in again, and check this server's clock")  # fmt: skip
        if name == "iss":
            return f"the ID token's issuer ('iss') is not {self.config.issuer}"
        if name in ("aud", "azp"):
            return (f"the ID token is not for this server: its audience ('{name}') is not "
                    f"the client id {self.config.client_id}")  # fmt: skip
        return f"the ID token's '{name}' is not valid for this sign-in"
