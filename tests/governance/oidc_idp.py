"""A real OpenID provider on loopback, built from authlib's server side, for the OIDC tests.

Authorization-code grant with PKCE (S256, required) and the OpenID code flow (nonce required),
ID tokens signed RS256 with an RSA key generated here and published as a JWKS, a discovery
document, and a consent form (pick a user, press Allow) that a test posts with httpx or a
browser clicks. Served by uvicorn on 127.0.0.1 in a thread.

The knobs make it misbehave on purpose: sign tokens for another issuer or audience, expire
them at once, forge the nonce, or announce another issuer in its discovery document.
"""

from __future__ import annotations

import html
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

CLIENT_ID = "opsloop-test"
CLIENT_SECRET = secrets.token_urlsafe(24)


@dataclass
class IdpUser:
    sub: str
    username: str
    email: str
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True


@dataclass
class _Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "email", "profile", "groups"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: IdpUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Request(OAuth2Request):
    def __init__(self, request: Request, form: dict[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args, self._form = dict(request.query_params), form
        self.payload = BasicOAuth2Payload({**self._args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TestProvider:
    """The provider: its users, its knobs, and the uvicorn server that serves it."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.users: dict[str, IdpUser] = {}
        self.client = _Client(CLIENT_ID, CLIENT_SECRET, [])
        self.codes: dict[str, _Code] = {}
        # knobs: what goes wrong on purpose
        self.token_issuer: str | None = None  # the ID token's iss (default: the issuer)
        self.token_audience: str | None = None  # the ID token's aud (default: the client id)
        self.token_ttl_s = 300  # negative: already expired
        self.forge_nonce = False
        self.discovery_issuer: str | None = None  # what discovery says the issuer is
        self.server = _build_server(self)
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize, methods=["GET", "POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/favicon.ico", lambda request: Response(status_code=204)),  # browsers ask
        ])  # fmt: skip
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._uvicorn = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._uvicorn.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def add_user(self, username: str, groups: list[str], **extra: Any) -> IdpUser:
        user = IdpUser(sub=secrets.token_hex(8), username=username,
                       email=f"{username}@example.com", groups=groups, **extra)  # fmt: skip
        self.users[username] = user
        return user

    def __enter__(self) -> TestProvider:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._uvicorn.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test identity provider did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(10)
        self.socket.close()

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.stop()

    # -- endpoints ----------------------------------------------------------------------------
    async def _discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.discovery_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })  # fmt: skip

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def _authorize(self, request: Request) -> Response:
        form = await _form(request)
        oauth_request = _Request(request, form)
        if request.method == "GET":
            try:
                self.server.get_consent_grant(oauth_request)
            except Exception as exc:  # authlib's OAuth2Error: show it, as a provider would
                return HTMLResponse(f"<p id='error'>{html.escape(str(exc))}</p>", 400)
            query = html.escape(urlencode(dict(request.query_params)))
            return HTMLResponse(
                "<!doctype html><title>Test IdP</title><h1>Sign in to the test IdP</h1>"
                f"<form method='post' action='/authorize?{query}'>"
                "<label>User <input name='username' id='username'></label>"
                "<button type='submit' name='confirm' value='yes' id='allow'>Allow</button>"
                "</form>"
            )
        user = self.users.get(form.get("username", ""))
        if user is None:
            return HTMLResponse("<p id='error'>no such user</p>", 401)
        return self.server.create_authorization_response(oauth_request, grant_user=user)  # type: ignore[no-any-return]

    async def _token(self, request: Request) -> Response:
        form = await _form(request)
        return self.server.create_token_response(_Request(request, form))  # type: ignore[no-any-return]


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form (no python-multipart here: the server parses forms itself too)."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}


def _build_server(idp: TestProvider) -> AuthorizationServer:
    class Server(AuthorizationServer):
        def query_client(self, client_id: str) -> _Client | None:
            return idp.client if client_id == idp.client.client_id else None

        def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
            pass  # the test provider serves no resources with its access tokens

        def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
            return request

        def handle_response(self, status: int, body: Any, headers: Any) -> Response:
            if isinstance(body, dict):
                return JSONResponse(body, status, headers=dict(headers))
            return Response(body or b"", status, headers=dict(headers))

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

        def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
            data = request.payload.data
            idp.codes[code] = _Code(
                code=code, client_id=request.client.client_id,
                redirect_uri=request.payload.redirect_uri, scope=request.scope,
                user=request.user, nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )  # fmt: skip

        def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
            found = idp.codes.get(code)
            return found if found is not None and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: _Code) -> None:
            idp.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: _Code) -> IdpUser:
            return authorization_code.user

    class OpenID(OpenIDCode):
        def resolve_client_private_key(self, client: _Client) -> RSAKey:
            return idp.key

        def get_client_algorithm(self, client: _Client) -> str:
            return "RS256"

        def get_encode_header(self, client: _Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": str(idp.key.kid)}

        def get_client_claims(self, client: _Client) -> dict[str, Any]:
            now = int(time.time())
            return {
                "iss": idp.token_issuer or idp.issuer,
                "aud": [idp.token_audience or client.client_id],
                "iat": now - (600 if idp.token_ttl_s < 0 else 0),
                "exp": now + idp.token_ttl_s,
            }

        def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
            return any(code.nonce == nonce for code in idp.codes.values())

        def get_authorization_code_claims(self, authorization_code: _Code) -> dict[str, Any]:
            claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
            if idp.forge_nonce:
                claims["nonce"] = "forged-" + secrets.token_hex(4)
            return claims

        def generate_user_info(self, user: IdpUser, scope: str) -> UserInfo:
            return UserInfo(
                sub=user.sub, preferred_username=user.username, email=user.email,
                email_verified=user.email_verified, groups=list(user.groups),
            )  # fmt: skip

    server = Server()
    server.register_token_generator("default", _bearer_tokens)
    server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
    return server


def _bearer_tokens(grant_type: str, client: _Client, user: Any = None, scope: str | None = None,
                   expires_in: int | None = None, include_refresh_token: bool = True
                   ) -> dict[str, Any]:  # fmt: skip
    return {"token_type": "Bearer", "access_token": secrets.token_urlsafe(32),
            "expires_in": 3600, "scope": scope or ""}  # fmt: skip
