"""A loopback stand-in for the two comment APIs the CI report posts to: GitHub's issue
comments (``/repos/O/R/issues/N/comments``, ``PATCH /repos/O/R/issues/comments/ID``) and
GitLab's merge request notes (``/projects/P/merge_requests/N/notes[/ID]``).

A real HTTP server in a thread on 127.0.0.1, answering as the hosts document: paged listings
(``per_page``, ``page``), 201 on create, 200 on update, 401 without a token and 403 on a write
with a read-only token. It records every request, so a test can say exactly what was sent.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

GOOD_TOKEN = "good-token"
READ_ONLY_TOKEN = "read-only-token"
_LIST = re.compile(r"^(?P<thread>.*/(?:issues/\d+/comments|merge_requests/\d+/notes))$")
_ITEM = re.compile(r"^(?:.*/issues/comments|.*/merge_requests/\d+/notes)/(?P<id>\d+)$")


@dataclass
class Recorded:
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeHost:
    """The server's state: comments per thread (list path), and every request."""

    url: str = ""
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    next_id: int = 1000

    def add(self, thread: str, body: str) -> dict[str, Any]:
        self.next_id += 1
        item = {"id": self.next_id, "body": body, "html_url": f"{self.url}{thread}#{self.next_id}"}
        self.threads.setdefault(thread, []).append(item)
        return item

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.method != "GET"]


def _token(headers: Any) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return str(auth[7:])
    return headers.get("PRIVATE-TOKEN")


def _handler(host: FakeHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            host.requests.append(
                Recorded(self.command, parts.path, parse_qs(parts.query), body, dict(self.headers))
            )
            token = _token(self.headers)
            if token not in (GOOD_TOKEN, READ_ONLY_TOKEN):
                return self._answer(401, {"message": "Bad credentials"})
            if self.command != "GET" and token == READ_ONLY_TOKEN:
                return self._answer(403, {"message": "Resource not accessible by integration"})
            if listed := _LIST.match(parts.path):
                thread = listed["thread"]
                if self.command == "GET":
                    query = parse_qs(parts.query)
                    size = int(query.get("per_page", ["30"])[0])
                    page = int(query.get("page", ["1"])[0])
                    items = host.threads.get(thread, [])
                    return self._answer(200, items[(page - 1) * size : page * size])
                if self.command == "POST":
                    return self._answer(201, host.add(thread, body["body"]))
            if (item := _ITEM.match(parts.path)) and self.command in ("PATCH", "PUT"):
                for items in host.threads.values():
                    for comment in items:
                        if comment["id"] == int(item["id"]):
                            comment["body"] = body["body"]
                            return self._answer(200, comment)
            return self._answer(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = do_PUT = _handle

    return Handler


def serve() -> tuple[FakeHost, ThreadingHTTPServer]:
    host = FakeHost()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(host))
    host.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return host, server
