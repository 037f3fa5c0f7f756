"""The loopback test provider (``oidc_idp``) as a CLI meets it: native-app redirects to
``http://127.0.0.1:<any port>/callback`` (RFC 8252 7.3), and, with ``device=True``, the device
authorization grant (RFC 8628) from authlib's server side: a device authorization endpoint, the
device-code grant at the token endpoint (its ID token signed with the provider's key), and a
verification page where a test (the person) enters the user code and approves or denies.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant
from authlib.oauth2.rfc8628 import DeviceCredentialMixin
from joserfc import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from tests.governance.oidc_idp import IdpUser
from tests.governance.oidc_idp import TestProvider
from tests.governance.oidc_idp import _Client
from tests.governance.oidc_idp import _form
from tests.governance.oidc_idp import _Request


@dataclass
class _NativeClient(_Client):
    """The same client, also accepting any loopback port and the device-code grant."""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        parts = urlsplit(redirect_uri)
        if parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.path == "/callback":
            return True
        return super().check_redirect_uri(redirect_uri)

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", DEVICE_CODE_GRANT_TYPE)


@dataclass
class _DeviceCredential(DeviceCredentialMixin):
    client_id: str
    scope: str
    user_code: str
    expires_at: float
    polls: int = 0

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class _Approvals:
    credentials: dict[str, _DeviceCredential] = field(default_factory=dict)  # by device code
    grants: dict[str, tuple[IdpUser, bool]] = field(default_factory=dict)  # by user code


class CliProvider(TestProvider):
    """A :class:`TestProvider` for native clients; ``device=True`` adds the device flow."""

    __test__ = False

    def __init__(self, *, device: bool = False) -> None:
        super().__init__()
        self.client = _NativeClient(self.client.client_id, self.client.client_secret, [])
        self.device = device
        self.approvals = _Approvals()
        if device:
            _add_device_flow(self)

    async def _discovery(self, request: Request) -> Response:
        found = await super()._discovery(request)
        if not self.device:
            return found
        document = json.loads(bytes(found.body))
        document["device_authorization_endpoint"] = f"{self.issuer}/device_authorization"
        return JSONResponse(document)


def _add_device_flow(idp: CliProvider) -> None:
    class Endpoint(DeviceAuthorizationEndpoint):
        CLIENT_AUTH_METHODS = ["client_secret_basic"]
        INTERVAL = 1  # the CLI polls every second: the test waits little
        EXPIRES_IN = 300

        def get_verification_uri(self) -> str:
            return f"{idp.issuer}/device"

        def save_device_credential(self, client_id: str, scope: str, data: dict) -> None:
            idp.approvals.credentials[data["device_code"]] = _DeviceCredential(
                client_id, scope, data["user_code"], time.time() + self.EXPIRES_IN
            )

    class Grant(DeviceCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

        def query_device_credential(self, device_code: str) -> _DeviceCredential | None:
            return idp.approvals.credentials.get(device_code)

        def query_user_grant(self, user_code: str) -> tuple[IdpUser, bool] | None:
            return idp.approvals.grants.get(user_code)

        def should_slow_down(self, credential: _DeviceCredential) -> bool:
            return False

        def generate_token(self, user: IdpUser | None = None, **kwargs: Any) -> dict[str, Any]:
            token: dict[str, Any] = super().generate_token(user=user, **kwargs)
            assert user is not None
            now = int(time.time())
            claims = {
                "iss": idp.token_issuer or idp.issuer, "aud": idp.client.client_id,
                "iat": now, "exp": now + idp.token_ttl_s, "sub": user.sub,
                "preferred_username": user.username, "email": user.email,
                "email_verified": user.email_verified, "groups": list(user.groups),
            }  # fmt: skip
            header = {"alg": "RS256", "kid": str(idp.key.kid)}
            token["id_token"] = jwt.encode(header, claims, idp.key)
            return token

    idp.server.register_endpoint(Endpoint)
    idp.server.register_grant(Grant)

    async def device_authorization(request: Request) -> Response:
        form = await _form(request)
        return idp.server.create_endpoint_response(  # type: ignore[no-any-return]
            "device_authorization", _Request(request, form)
        )

    async def verification(request: Request) -> Response:
        """The page the person opens: enter the code, sign in, allow (or deny)."""
        if request.method == "GET":
            code = html.escape(request.query_params.get("user_code", ""))
            return HTMLResponse(f"<form method='post'><input name='user_code' value='{code}'>"
                                "<input name='username'><button name='allow' value='yes'>Allow"
                                "</button></form>")  # fmt: skip
        form = await _form(request)
        code, user = form.get("user_code", ""), idp.users.get(form.get("username", ""))
        if user is None or not any(c.user_code == code for c in idp.approvals.credentials.values()):
            return HTMLResponse("<p id='error'>no such code or user</p>", 400)
        idp.approvals.grants[code] = (user, form.get("allow") == "yes")
        return HTMLResponse("<p id='done'>You can go back to your device.</p>")

    idp.app.router.routes.extend([
        Route("/device_authorization", device_authorization, methods=["POST"]),
        Route("/device", verification, methods=["GET", "POST"]),
    ])  # fmt: skip
