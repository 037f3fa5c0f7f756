"""The CLI's half of a browser sign-in (RFC 8252, OAuth for native apps): a one-shot listener on
``http://127.0.0.1:<random port>/callback``, the authorization URL with a fresh ``state``,
``nonce`` and PKCE (S256) challenge, and the wait for the provider's redirect back.

The CLI holds the PKCE verifier and never the client secret: it hands the code and the verifier
to its opsloop server (``POST /api/auth/oidc/token``), which redeems them with its own
credentials. A redirect whose ``state`` is not this flow's is refused and the wait goes on (a
page elsewhere cannot finish a sign-in it did not start).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import HTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from opsloop.errors import InvalidInput

__all__ = ["LoopbackFlow"]

_PAGE = ("<!doctype html><meta charset='utf-8'><title>opsloop</title>"
         "<p>{}</p>")  # fmt: skip


@dataclass
class LoopbackFlow:
    """One sign-in: start the listener, send the browser to :meth:`authorization_url`, then
    :meth:`wait` for the code. ``with`` closes the listener."""

    state: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    code: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self._done = threading.Event()
        self._server = HTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callback"

    def authorization_url(self, endpoint: str, client_id: str, scopes: str) -> str:
        """The provider's authorization URL for this flow."""
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        query = urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": self.redirect_uri,
            "scope": scopes, "state": self.state, "nonce": self.nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })  # fmt: skip
        return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{query}"

    def wait(self, timeout_s: float) -> str:
        """The authorization code once the browser comes back.

        Raises:
            InvalidInput: No answer within ``timeout_s``, or the provider answered an error.
        """
        if not self._done.wait(timeout_s):
            raise InvalidInput(
                f"no sign-in came back within {timeout_s:.0f} s: run opsloop login --oidc again"
            )
        if self.error is not None or self.code is None:
            raise InvalidInput(f"the identity provider refused the sign-in: {self.error}")
        return self.code

    def answer(self, query: dict[str, list[str]]) -> tuple[int, str]:
        """Take the redirect's query; the status and line the browser is shown."""
        given = query.get("state", [""])[0]
        if not given or not hmac.compare_digest(given, self.state):
            return 400, "This sign-in is not the one the opsloop CLI started: start it again."
        if "error" in query:
            detail = query.get("error_description", [""])[0]
            self.error = (query["error"][0] + (f" ({detail})" if detail else ""))[:300]
            self._done.set()
            return 400, "The identity provider refused the sign-in: see the terminal."
        self.code = query.get("code", [""])[0] or None
        self.error = None if self.code else "no authorization code"
        self._done.set()
        return 200, "Signed in: you can close this tab and go back to the terminal."

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackFlow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(flow: LoopbackFlow) -> type[BaseHTTPRequestHandler]:
    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                status, line = 404, "Not found."
            else:
                status, line = flow.answer(parse_qs(parts.query))
            body = _PAGE.format(html.escape(line)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the terminal shows the CLI's own lines, not an access log

    return Callback
